#!/usr/bin/env python3
"""Whole commands, start to finish, beside the official emulator (RIE) doing the same, in one run.

    python bench/startup.py              # 12 runs of each, interleaved
    python bench/startup.py --runs 20

Two things a user waits for, each timed from just before the spawn:

  one-shot   `workbench invoke <echo function>` to its exit, beside RIE started, invoked once
             (its port polled until it answers) and stopped (SIGTERM, which kills its runtime)
             to its exit
  serve      `workbench serve <echo function>` to the first answer of an invoke (polled from
             the spawn on, so the cold start is in it), beside RIE to its first answer

The same runtime process under both: the plain http.client runtime loop (bench/functions/
echo-loop: a custom runtime for workbench, the bootstrap command for RIE), awslambdaric with an
echo handler and workbench's own Python client (bench/functions/echo-py). For the last two RIE
is given the very command line workbench runs (the interpreter the venv was made from, -s -u,
the same PYTHONPATH), so that the emulators are compared and not two interpreters; one more RIE
case runs awslambdaric the way a user of RIE would, on the venv's python, for reference (no
ratio is taken against it). `python -c pass` is the floor any Python process starts from.
Every case runs once unmeasured first (disk cache, .pyc files), then the runs are interleaved
with the order rotating, so the machine's noise hits all alike. PYTHONDONTWRITEBYTECODE is
dropped for every timed process (bench/rie.py says why).

The targets (issue 12): each workbench median at most 2x RIE's with the same client. Results are
printed and written to bench/results/startup.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from rie import (  # noqa: E402 - the benchmarks' own helpers, beside this file
    INVOKE_PATH,
    child_env,
    find_rie,
    free_port,
    loop_bootstrap,
    ric_bootstrap,
    rie_argv,
    rie_env,
    workbench_runtime,
)

REPO = HERE.parent
PY = sys.executable
RESULTS = HERE / "results" / "startup.json"
TARGET_RATIO = 2.0
EVENT = b'{"data": "' + b"x" * 88 + b'"}'  # 100 bytes
TIMEOUT_S = 60.0


def say(text: str = "") -> None:
    print(text, flush=True)


def workbench_cmd() -> list[str]:
    """The entry point beside the interpreter (a pyenv shim alone would add tens of ms)."""
    script = Path(PY).with_name("workbench")
    return [str(script)] if script.is_file() else [PY, "-m", "workbench"]


def _tree(pid: int) -> list[int]:
    """pid and every process below it (from /proc/<pid>/task/*/children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except (OSError, ValueError):
            pass
    return out


def kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """The process and everything below it, by pid: RIE's runtime runs in a process group of
    its own, workbench's runtime and janitor in sessions of their own."""
    for pid in reversed(_tree(proc.pid)) if proc.poll() is None else ():
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        pass


def poll_invoke(port: int, path: str, proc: subprocess.Popen[bytes], deadline: float) -> bytes:
    """POST the event until the server answers 200 (a refused connection: not listening
    yet, try again at once); the answer's body."""
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode} before answering")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_S)
        try:
            conn.request("POST", path, body=EVENT, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            body = resp.read()
        except (ConnectionRefusedError, ConnectionResetError, http.client.RemoteDisconnected):
            if time.monotonic() > deadline:
                raise RuntimeError("never answered") from None
            time.sleep(0.001)
            continue
        finally:
            conn.close()
        if resp.status != 200:
            raise RuntimeError(f"answered {resp.status}: {body[:300]!r}")
        return body


def check_echo(body: bytes) -> None:
    if json.loads(body) != json.loads(EVENT):
        raise RuntimeError(f"the echo came back different: {body[:200]!r}")


@dataclass
class Case:
    key: str
    label: str
    group: str  # "oneshot" or "serve"
    run: Callable[[], float]  # one timed run, in ms
    versus: str | None = None  # the RIE case its ratio is taken against
    times: list[float] = field(default_factory=list)
    error: str | None = None


def rie_oneshot(
    exe: str, bootstrap: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None
) -> Callable[[], float]:
    def run() -> float:
        api, port = free_port(), free_port()
        with open(log, "ab") as out:
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                rie_argv(exe, api, port, bootstrap),
                cwd=cwd,
                env={**rie_env(), **(env or {})},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
            try:
                body = poll_invoke(port, INVOKE_PATH, proc, time.monotonic() + TIMEOUT_S)
                proc.send_signal(signal.SIGTERM)
                proc.wait(TIMEOUT_S)
                ms = (time.perf_counter() - t0) * 1000
            finally:
                kill_tree(proc)
        check_echo(body)
        return ms

    return run


def rie_first_answer(
    exe: str, bootstrap: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None
) -> Callable[[], float]:
    def run() -> float:
        api, port = free_port(), free_port()
        with open(log, "ab") as out:
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                rie_argv(exe, api, port, bootstrap),
                cwd=cwd,
                env={**rie_env(), **(env or {})},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
            try:
                body = poll_invoke(port, INVOKE_PATH, proc, time.monotonic() + TIMEOUT_S)
                ms = (time.perf_counter() - t0) * 1000
            finally:
                kill_tree(proc)
        check_echo(body)
        return ms

    return run


def wb_oneshot(argv: list[str], log: Path) -> Callable[[], float]:
    def run() -> float:
        t0 = time.perf_counter()
        proc = subprocess.run(
            argv,
            cwd=REPO,
            env=child_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=TIMEOUT_S,
            start_new_session=True,
        )
        ms = (time.perf_counter() - t0) * 1000
        with open(log, "ab") as out:
            out.write(proc.stderr)
        if proc.returncode != 0:
            raise RuntimeError(f"exit {proc.returncode}: {proc.stderr[-500:]!r}")
        check_echo(proc.stdout)
        return ms

    return run


def wb_first_answer(argv: list[str], name: str, log: Path) -> Callable[[], float]:
    def run() -> float:
        port = free_port()
        with open(log, "ab") as out:
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                [*argv, "--port", str(port)],
                cwd=REPO,
                env=child_env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
            try:
                path = f"/2015-03-31/functions/{name}/invocations"
                body = poll_invoke(port, path, proc, time.monotonic() + TIMEOUT_S)
                ms = (time.perf_counter() - t0) * 1000
                proc.send_signal(signal.SIGINT)  # serve stops its runtime and its janitor
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    pass
            finally:
                kill_tree(proc)
        check_echo(body)
        return ms

    return run


def spawn_exit(argv: list[str]) -> Callable[[], float]:
    def run() -> float:
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, env=child_env(), stdin=subprocess.DEVNULL)
        return (time.perf_counter() - t0) * 1000

    return run


def build_cases(
    rie: str | None, functions: Path, logs: Path, baseline: Path | None = None
) -> list[Case]:
    loop, echo = functions / "echo-loop", functions / "echo-py"
    wb = workbench_cmd()
    event = functions / "event.json"
    event.write_bytes(EVENT)
    loop_env = ["--env", f"BENCH_PYTHON={PY}"]
    ric = ["--runtime-client", "awslambdaric"]
    ric_argv, ric_env = workbench_runtime(echo, "awslambdaric")
    builtin_argv, builtin_env = workbench_runtime(echo)
    # RIE runs each runtime with the very command line workbench runs (same interpreter, same
    # flags, same PYTHONPATH); "venv" is awslambdaric as a user of RIE would start it, with
    # the venv's own python, for reference
    rie_runtimes = {
        "loop": (loop_bootstrap(loop, PY), loop, None),
        "ric": (ric_argv, echo, ric_env),
        "builtin": (builtin_argv, echo, builtin_env),
        "ric_venv": (ric_bootstrap(PY), echo, None),
    }
    what = {
        "loop": "loop",
        "ric": "awslambdaric",
        "builtin": "workbench's client",
        "ric_venv": "awslambdaric, venv python",
    }
    cases = [Case("python_pass", "python -c pass", "oneshot", spawn_exit([PY, "-c", "pass"]))]
    if rie is not None:
        cases += [
            Case(
                f"rie_oneshot_{k}",
                f"RIE start+invoke+stop, {what[k]}",
                "oneshot",
                retried(rie_oneshot(rie, argv, cwd, logs / "rie.log", env)),
            )
            for k, (argv, cwd, env) in rie_runtimes.items()
        ]
    cases += [
        Case(
            "wb_invoke_loop",
            "workbench invoke, loop",
            "oneshot",
            wb_oneshot([*wb, "invoke", str(loop), "-e", str(event), *loop_env], logs / "wb.log"),
            "rie_oneshot_loop",
        ),
        Case(
            "wb_invoke_ric",
            "workbench invoke, awslambdaric",
            "oneshot",
            wb_oneshot([*wb, "invoke", str(echo), "-e", str(event), *ric], logs / "wb.log"),
            "rie_oneshot_ric",
        ),
        Case(
            "wb_invoke_builtin",
            "workbench invoke, builtin client",
            "oneshot",
            wb_oneshot([*wb, "invoke", str(echo), "-e", str(event)], logs / "wb.log"),
            "rie_oneshot_builtin",
        ),
    ]
    if rie is not None:
        cases += [
            Case(
                f"rie_first_{k}",
                f"RIE start to first answer, {what[k]}",
                "serve",
                retried(rie_first_answer(rie, argv, cwd, logs / "rie.log", env)),
            )
            for k, (argv, cwd, env) in rie_runtimes.items()
        ]
    cases += [
        Case(
            "wb_serve_loop",
            "workbench serve to first answer, loop",
            "serve",
            wb_first_answer([*wb, "serve", str(loop), *loop_env], loop.name, logs / "serve.log"),
            "rie_first_loop",
        ),
        Case(
            "wb_serve_ric",
            "workbench serve to first answer, awslambdaric",
            "serve",
            wb_first_answer([*wb, "serve", str(echo), *ric], echo.name, logs / "serve.log"),
            "rie_first_ric",
        ),
        Case(
            "wb_serve_builtin",
            "workbench serve to first answer, builtin",
            "serve",
            wb_first_answer([*wb, "serve", str(echo)], echo.name, logs / "serve.log"),
            "rie_first_builtin",
        ),
    ]
    if baseline is not None:  # another checkout's workbench, in the same run: before / after
        base = [str(baseline / ".venv" / "bin" / "workbench")]
        for key, label, group, versus in (
            ("invoke_loop", "invoke, loop", "oneshot", "rie_oneshot_loop"),
            ("invoke_ric", "invoke, awslambdaric", "oneshot", "rie_oneshot_ric"),
            ("invoke_builtin", "invoke, builtin client", "oneshot", "rie_oneshot_builtin"),
            ("serve_loop", "serve to first answer, loop", "serve", "rie_first_loop"),
            ("serve_ric", "serve to first answer, awslambdaric", "serve", "rie_first_ric"),
            ("serve_builtin", "serve to first answer, builtin", "serve", "rie_first_builtin"),
        ):
            command, _, client = key.partition("_")
            target = loop if client == "loop" else echo
            extra = {"loop": loop_env, "ric": ric, "builtin": []}[client]
            if command == "invoke":
                run = wb_oneshot(
                    [*base, "invoke", str(target), "-e", str(event), *extra], logs / "base.log"
                )
            else:
                run = wb_first_answer(
                    [*base, "serve", str(target), *extra], target.name, logs / "base.log"
                )
            cases.append(Case(f"base_{key}", f"baseline {label}", group, run, versus))
    return cases


def retried(run: Callable[[], float]) -> Callable[[], float]:
    """RIE picks up the ports it is given; one taken meanwhile by another process (the free
    port was closed before RIE bound it) makes it exit at once: try again with new ones."""

    def again() -> float:
        for attempt in range(3):
            try:
                return run()
            except RuntimeError as exc:
                if "before answering" not in str(exc) or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    return again


def run_all(cases: list[Case], runs: int) -> None:
    for case in cases:  # unmeasured: disk cache, .pyc files, the history stores made
        try:
            case.run()
        except Exception as exc:
            case.error = f"{type(exc).__name__}: {exc}"
    live = [c for c in cases if c.error is None]
    for i in range(runs):
        shift = i % len(live)
        for case in live[shift:] + live[:shift]:
            if case.error is not None:
                continue
            try:
                case.times.append(case.run())
            except Exception as exc:
                case.error = f"run {i}: {type(exc).__name__}: {exc}"


def summary(case: Case) -> dict[str, Any]:
    t = sorted(case.times)
    if not t:
        return {"n": 0}
    return {
        "n": len(t),
        "median_ms": statistics.median(t),
        "p90_ms": t[min(len(t) - 1, round(0.9 * (len(t) - 1)))],
        "min_ms": t[0],
        "max_ms": t[-1],
    }


def report(cases: list[Case], loads: tuple[float, float]) -> tuple[list[dict[str, Any]], bool]:
    by_key = {c.key: c for c in cases}
    rows, met = [], True
    head = f"{'case':<52} {'n':>3} {'median':>8} {'p90':>8} {'min':>8} {'max':>8} {'/RIE':>6}"
    for group, title in (
        ("oneshot", "one-shot: process start to exit (RIE: start, one invoke, stop)"),
        ("serve", "serve: process start to the first answer (the cold start included)"),
    ):
        say(f"\n{title}, ms")
        say(head)
        say("-" * len(head))
        for c in (c for c in cases if c.group == group):
            s = summary(c)
            ref = by_key.get(c.versus or "")
            ratio = None
            if s.get("n") and ref is not None and ref.times:
                ratio = s["median_ms"] / statistics.median(ref.times)
            row = {"key": c.key, "label": c.label, **s, "versus": c.versus, "ratio": ratio}
            if c.error:
                row["error"] = c.error
            rows.append(row)
            if not s.get("n"):
                say(f"{c.label:<52}  NOT RUN: {c.error}")
                continue
            say(
                f"{c.label:<52} {s['n']:>3} {s['median_ms']:>8.1f} {s['p90_ms']:>8.1f} "
                f"{s['min_ms']:>8.1f} {s['max_ms']:>8.1f} "
                f"{'-' if ratio is None else format(ratio, '.2f'):>6}"
            )
            if c.error:
                say(f"   stopped early: {c.error}")
    say(f"\nload average {loads[0]:.2f} at the start, {loads[1]:.2f} at the end")
    say(f"Targets: each workbench median <= {TARGET_RATIO}x RIE's with the same runtime client")
    for row in rows:
        if row["versus"] is None or row["key"].startswith("base_"):
            continue
        if row["ratio"] is None:
            say(f"NOT RUN  {row['label']}: {row.get('error') or 'no RIE to compare with'}")
            met = False
            continue
        ok = row["ratio"] <= TARGET_RATIO
        met &= ok
        say(
            f"{'PASS' if ok else 'FAIL'}  {row['label']}: {row['median_ms']:.0f} ms = "
            f"{row['ratio']:.2f}x {by_key[row['versus']].label} "
            f"({statistics.median(by_key[row['versus']].times):.0f} ms)"
        )
    baselines = [r for r in rows if r["key"].startswith("base_") and r.get("n")]
    if baselines:
        say("\nThis checkout against the baseline's, same run (median over median):")
    for row in baselines:
        mine = by_key.get("wb_" + row["key"].removeprefix("base_"))
        if mine is not None and mine.times:
            ratio = statistics.median(mine.times) / row["median_ms"]
            row["this_over_baseline"] = ratio
            say(
                f"  {mine.label:<52} {statistics.median(mine.times):7.0f} ms vs "
                f"{row['median_ms']:7.0f} ms = {ratio:.2f}"
            )
    return rows, met


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=12, help="timed runs of each case (12)")
    ap.add_argument("--rie", help="the RIE binary (default: shared/anchors/rie-classic)")
    ap.add_argument("--only", help="run only the cases whose key contains this")
    ap.add_argument(
        "--baseline",
        type=Path,
        help="another checkout with its own .venv (e.g. ../main): its workbench is timed in "
        "the same run, as 'baseline ...' rows",
    )
    ap.add_argument("--json", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    rie, where = find_rie(args.rie)
    if rie is None:
        say(f"NOT RUN  every RIE case: {where}")
    with tempfile.TemporaryDirectory(prefix="wb-startup-bench-") as tmp:
        root = Path(tmp)
        functions = root / "functions"  # fresh: no history left big by earlier runs
        shutil.copytree(
            HERE / "functions",
            functions,
            ignore=shutil.ignore_patterns(".workbench", "__pycache__"),
        )
        logs = root / "logs"
        logs.mkdir()
        cases = build_cases(rie, functions, logs, args.baseline)
        if args.only:  # those cases, and the RIE cases they are compared with
            chosen = [c for c in cases if args.only in c.key]
            refs = {c.versus for c in chosen}
            cases = [c for c in cases if c in chosen or c.key in refs]
        load0 = os.getloadavg()[0]
        say(
            f"# whole commands: python {platform.python_version()}, {os.cpu_count()} CPUs, "
            f"load {load0:.2f}; {args.runs} runs of each, interleaved; RIE: {where}"
        )
        run_all(cases, args.runs)
        rows, met = report(cases, (load0, os.getloadavg()[0]))
    doc = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "runs": args.runs,
        "rie": where,
        "load_avg_start": load0,
        "load_avg_end": os.getloadavg(),
        "target_ratio": TARGET_RATIO,
        "cases": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=2) + "\n")
    say(f"\nresults written to {args.json}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
