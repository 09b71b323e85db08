#!/usr/bin/env python3
"""Warm invoke overhead through `workbench serve`, side by side with its baselines, in one run.

    python bench/invoke_overhead.py            # full run (a few minutes)
    python bench/invoke_overhead.py --quick    # smaller counts, for a smoke test

Every case is a keep-alive http.client connection posting to an address on 127.0.0.1, one call
at a time, timed with perf_counter_ns from request to the last byte of the answer:

  floor            two sequential POST round trips to a minimal echo server (bench/floor_server.py,
                   a separate process) count as one sample: the least an invoke can cost, since an
                   invoke is two HTTP exchanges (client <-> emulator, runtime <-> emulator)
  workbench ...    POST /2015-03-31/functions/{name}/invocations to `workbench serve`, with
                   (1) a plain http.client custom runtime (bench/functions/echo-loop/bootstrap),
                   (2) awslambdaric with an echo handler, (3) workbench's own Python client
  cargo-lambda     `cargo lambda watch --only-lambda-apis` serving the same plain runtime loop
  references       a one-route aiohttp echo server (2 round trips, like the floor) and a lean
                   asyncio emulator (floor_server.py --mode relay) with the same runtime loop

The cases run in interleaved rounds (the order rotates every round) so that a noisy neighbour
hits them all alike. Warm-up calls come first and are not counted. Results are printed as a
table and written to bench/results/invoke_overhead.json.
"""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import math
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from rie import (  # noqa: E402 - the benchmarks' own helpers, beside this file
    INVOKE_PATH as RIE_PATH,
)
from rie import (  # noqa: E402
    find_rie,
    loop_bootstrap,
    rie_argv,
    rie_env,
    workbench_runtime,
)


def _fresh_functions() -> Path:
    """The bench functions copied to a new temp folder: workbench records history in each
    function's .workbench/, and a store left big by earlier runs would skew this one."""
    import atexit
    import shutil
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="wb-bench-"))
    atexit.register(shutil.rmtree, tmp, True)
    shutil.copytree(
        HERE / "functions",
        tmp / "functions",
        ignore=shutil.ignore_patterns(".workbench", "__pycache__"),
    )
    return tmp / "functions"


FUNCTIONS = _fresh_functions()
ECHO_LOOP = FUNCTIONS / "echo-loop"
ECHO_PY = FUNCTIONS / "echo-py"
FLOOR_SERVER = HERE / "floor_server.py"
RESULTS = HERE / "results" / "invoke_overhead.json"
PY = sys.executable
INVOKE_PATH = "/2015-03-31/functions/{name}/invocations"

SMALL, LARGE = 100, 1024 * 1024
STALL_OVER_P50_MS = 20.0  # an invoke this much slower than the case's p50 is a stall
SLOW_MS = 30.0  # and these are counted too: the issue's line (no warm invoke over 30 ms)
TARGETS = {"small_p50": 2.5, "small_p99": 5.0, "large_p50": 3.0}  # against the floor
# against RIE serving the same runtime (issue 12): 100 B p50 and p99, 1 MiB p50
RIE_TARGETS = {"small_p50": 0.75, "small_p99": 1.0, "large_p50": 0.3}
# each workbench case and the RIE case with the same runtime client
RIE_PAIRS = {"wb_loop": "rie_loop", "wb_ric": "rie_ric", "wb_builtin": "rie_builtin"}
RIE_LABELS = {
    "rie_loop": "RIE, plain loop",
    "rie_ric": "RIE, awslambdaric",
    "rie_builtin": "RIE, builtin client",
}
REQUEST_TIMEOUT_S = 30.0
FLOOR_LABELS = {
    "asyncio": "floor (asyncio server, 2 RT)",
    "threads": "floor (raw socket server, 2 RT)",
    "aiohttp": "ref: aiohttp echo, 2 RT",
}
RELAY_LABEL = "ref: lean asyncio emu, loop"
RELAY_RIC_LABEL = "ref: lean asyncio emu, awslambdaric"


def make_event(size: int) -> bytes:
    head, tail = b'{"data": "', b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


# ---------------------------------------------------------------- child processes ----------


def _tree(pid: int) -> list[tuple[int, str]]:
    """pid and every process below it, each with its start time (to not kill a reused pid)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        start = _start_time(p)
        if start is None:
            continue
        out.append((p, start))
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except (OSError, ValueError):
            pass
    return out


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


class Child:
    """A child process in its own process group, logging to a file; stop() takes its whole tree
    (workbench starts each runtime in a session of its own) and never leaves anything behind."""

    live: ClassVar[list[Child]] = []

    def __init__(
        self,
        label: str,
        argv: list[str],
        logdir: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        stdout_pipe: bool = False,
    ) -> None:
        self.label = label
        self.log_path = logdir / f"{label.replace(' ', '_').replace('/', '_')}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout_pipe else self._log,
            stderr=self._log,
            start_new_session=True,
        )
        Child.live.append(self)

    def log_text(self, tail: int = 40) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-tail:])

    def wait_for_log(self, needle: str, timeout: float) -> str | None:
        """The first log line containing needle, or None if the process died or time ran out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log_text(tail=400).splitlines():
                if needle in line:
                    return line
            if self.proc.poll() is not None:
                return None
            time.sleep(0.05)
        return None

    def stop(self, sig: int = signal.SIGINT) -> None:
        if self in Child.live:
            Child.live.remove(self)
        tree = _tree(self.proc.pid) if self.proc.poll() is None else []
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
                self.proc.wait(8)
            except subprocess.TimeoutExpired:
                pass
        for pid, start in tree:  # whatever is left of the tree, its own groups included
            if _start_time(pid) == start:
                try:
                    if pid == self.proc.pid:
                        os.killpg(pid, signal.SIGKILL)
                    else:
                        os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()

    @classmethod
    def stop_all(cls) -> None:
        for child in reversed(list(cls.live)):
            child.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def cpu_ns(pids: list[int]) -> int:
    """On-CPU time of these processes (all their threads), in ns, from schedstat."""
    total = 0
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as fh:
                    total += int(fh.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    return total


class Unavailable(Exception):
    """A case that cannot run here; the message says exactly why and is printed."""


# ---------------------------------------------------------------- cases --------------------


@dataclass
class Case:
    key: str
    label: str
    kind: str  # "floor" (two round trips per sample) or "invoke"
    port: int = 0
    path: str = "/echo"
    workbench: bool = False
    rie: bool = False  # RIE: the runtime is its child, started at the first invoke
    child: Child | None = None
    extra_children: list[Child] = field(default_factory=list)
    conn: http.client.HTTPConnection | None = None
    samples: dict[int, list[int]] = field(default_factory=lambda: {SMALL: [], LARGE: []})
    errors: dict[int, int] = field(default_factory=lambda: {SMALL: 0, LARGE: 0})
    failed: str | None = None  # why the case stopped mid-run
    server_pids: list[int] = field(default_factory=list)  # the emulator (or floor server)
    runtime_pids: list[int] = field(default_factory=list)  # the function's runtime
    cpu: dict[int, dict[str, int]] = field(
        default_factory=lambda: {
            SMALL: {"server": 0, "runtime": 0, "client": 0},
            LARGE: {"server": 0, "runtime": 0, "client": 0},
        }
    )

    def find_pids(self) -> None:
        """After warm-up: the server process tree, and the runtime below it (or beside it)."""
        if self.child is None:
            return
        tree = [p for p, _ in _tree(self.child.proc.pid)]
        if self.workbench or self.rie:  # the runtime is a child of serve (or of RIE)
            self.server_pids, self.runtime_pids = tree[:1], tree[1:]
        else:
            self.server_pids = tree
            self.runtime_pids = [p for c in self.extra_children for p, _ in _tree(c.proc.pid)]

    def connect(self) -> http.client.HTTPConnection:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(
                "127.0.0.1", self.port, timeout=REQUEST_TIMEOUT_S
            )
        return self.conn

    def post(self, body: bytes) -> tuple[int, bytes, bool]:
        conn = self.connect()
        conn.request("POST", self.path, body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, data, bool(resp.getheader("X-Amz-Function-Error"))

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        for c in self.extra_children:
            c.stop(signal.SIGTERM)
        if self.child is not None:
            self.child.stop()


def start_floor(mode: str, logdir: Path) -> Case:
    child = Child(
        f"floor-{mode}", [PY, str(FLOOR_SERVER), "--mode", mode], logdir, stdout_pipe=True
    )
    assert child.proc.stdout is not None
    line = child.proc.stdout.readline().decode().strip()
    if not line.isdigit():
        child.stop()
        raise Unavailable(f"floor server ({mode}) did not start: {child.log_text()}")
    label = FLOOR_LABELS[mode]
    return Case(f"floor_{mode}", label, "floor", port=int(line), child=child)


def start_serve(
    key: str,
    label: str,
    folder: Path,
    logdir: Path,
    extra: list[str],
    quiet: bool,
    profile_dir: Path | None,
) -> Case:
    argv = [PY]
    if profile_dir is not None:
        argv += ["-m", "cProfile", "-o", str(profile_dir / f"{key}.pstats")]
    argv += ["-m", "workbench", "serve", str(folder), "--port", "0", *extra]
    if quiet:
        argv.append("-q")
    child = Child(key, argv, logdir, cwd=REPO)
    line = child.wait_for_log("serving the Lambda Invoke API on ", 60)
    if line is None:
        log = child.log_text()
        child.stop()
        raise Unavailable(f"`workbench serve` did not start:\n{log}")
    port = int(line.rsplit(":", 1)[1].strip().rstrip("/"))
    return Case(
        key,
        label,
        "invoke",
        port=port,
        path=INVOKE_PATH.format(name=folder.name),
        workbench=True,
        child=child,
    )


def start_relay(logdir: Path, ric: bool = False) -> Case:
    """floor_server.py --mode relay: a minimal emulator on one asyncio.Protocol, serving the same
    runtime loop (or, `ric`, awslambdaric with the echo handler). A reference for what a lean
    Python emulator reaches, not a target: with awslambdaric it shows what the client itself
    costs, which no emulator can take away."""
    key = "ref_relay_ric" if ric else "ref_relay"
    child = Child(key, [PY, str(FLOOR_SERVER), "--mode", "relay"], logdir, stdout_pipe=True)
    assert child.proc.stdout is not None
    line = child.proc.stdout.readline().decode().strip()
    if not line.isdigit():
        child.stop()
        raise Unavailable(f"relay server did not start: {child.log_text()}")
    renv = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "HOME")}
    renv["AWS_LAMBDA_RUNTIME_API"] = f"127.0.0.1:{line}"
    if ric:
        runtime = Child(
            f"{key}-runtime",
            [PY, "-m", "awslambdaric", "app.handler"],
            logdir,
            env=renv,
            cwd=ECHO_PY,
        )
    else:
        runtime = Child(
            f"{key}-runtime",
            [PY, str(ECHO_LOOP / "runtime_loop.py")],
            logdir,
            env=renv,
            cwd=ECHO_LOOP,
        )
    return Case(
        key,
        RELAY_RIC_LABEL if ric else RELAY_LABEL,
        "invoke",
        port=int(line),
        path=INVOKE_PATH.format(name=(ECHO_PY if ric else ECHO_LOOP).name),
        child=child,
        extra_children=[runtime],
    )


def start_rie(key: str, exe: str, logdir: Path, client: str | None) -> Case:
    """RIE serving the same runtime process as the workbench case it is paired with: the
    plain loop under this Python (as echo-loop's bootstrap runs it with BENCH_PYTHON), or
    the very command line workbench runs for awslambdaric / its own client."""
    if client is None:
        argv, extra, cwd = loop_bootstrap(ECHO_LOOP, PY), {}, ECHO_LOOP
    else:
        runtime, extra = workbench_runtime(ECHO_PY, None if client == "builtin" else client)
        argv, cwd = runtime, ECHO_PY
    api, port = free_port(), free_port()
    child = Child(key, rie_argv(exe, api, port, argv), logdir, env={**rie_env(), **extra}, cwd=cwd)
    if not wait_port(port, child.proc, 30):
        log = child.log_text()
        child.stop()
        raise Unavailable(f"RIE did not listen on 127.0.0.1:{port}:\n{log}")
    return Case(key, RIE_LABELS[key], "invoke", port=port, path=RIE_PATH, rie=True, child=child)


def cargo_lambda_binary() -> str | None:
    beside = Path(PY).parent / "cargo-lambda"  # skips a pyenv shim when there is one
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("cargo-lambda")


def start_cargo_lambda(logdir: Path, workdir: Path) -> Case:
    exe = cargo_lambda_binary()
    if exe is None:
        raise Unavailable(
            "no `cargo-lambda` executable on PATH or beside this Python "
            "(install it with `pip install cargo-lambda`)"
        )
    try:
        version = subprocess.run(
            [exe, "lambda", "--version"], capture_output=True, text=True, timeout=20
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        raise Unavailable(f"`{exe} --version` failed: {exc}") from None
    if shutil.which("cargo") is None:
        raise Unavailable(
            "`cargo lambda watch` runs `cargo metadata` on a Cargo.toml before it "
            "serves anything, and there is no `cargo` on PATH (install a Rust "
            "toolchain; no crates are downloaded: the manifest has no dependencies)"
        )
    # watch insists on a Cargo package even with --only-lambda-apis; an empty one will do.
    manifest = workdir / "cargo-lambda-pkg"
    (manifest / "src").mkdir(parents=True, exist_ok=True)
    (manifest / "Cargo.toml").write_text(
        '[package]\nname = "echo-loop"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\n'
    )
    (manifest / "src" / "main.rs").write_text("fn main() {}\n")
    port = free_port()
    env = dict(os.environ, CARGO_NET_OFFLINE="true", NO_COLOR="1")
    argv = [
        exe,
        "lambda",
        "watch",
        "--only-lambda-apis",
        "--ignore-changes",
        "-A",
        "127.0.0.1",
        "-P",
        str(port),
    ]
    child = Child("cargo-lambda", argv, logdir, env=env, cwd=manifest)
    if not wait_port(port, child.proc, 60):
        log = child.log_text()
        child.stop()
        raise Unavailable(
            f"`{' '.join(argv)}` did not listen on 127.0.0.1:{port} "
            f"(exit {child.proc.returncode}):\n{log}"
        )
    fn = ECHO_LOOP.name
    # In --only-lambda-apis mode the runtime API of function <fn> is http://host:port/.rt/<fn>
    # (the bare /.rt serves the package's default function, "_"); cargo-lambda prints the
    # variables a runtime needs, and we set them the same way.
    renv = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "HOME")}
    renv.update(
        {
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}/.rt/{fn}",
            "AWS_LAMBDA_FUNCTION_NAME": fn,
            "AWS_LAMBDA_FUNCTION_VERSION": "1",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "4096",
        }
    )
    runtime = Child(
        "cargo-lambda-runtime",
        [PY, str(ECHO_LOOP / "runtime_loop.py")],
        logdir,
        env=renv,
        cwd=ECHO_LOOP,
    )
    case = Case(
        "cargo_lambda_loop",
        "cargo-lambda, plain loop",
        "invoke",
        port=port,
        path=INVOKE_PATH.format(name=fn),
        child=child,
        extra_children=[runtime],
    )
    case.version = version  # type: ignore[attr-defined]
    return case


# ---------------------------------------------------------------- measuring ----------------


def warm_up(case: Case, small: bytes, large: bytes, n_small: int, n_large: int) -> None:
    """The first invoke is the cold start; the echo is checked before anything is counted."""
    for body, n in ((small, n_small), (large, n_large)):
        for i in range(n):
            status, data, ferr = case.post(body)
            if status != 200 or ferr:
                raise Unavailable(
                    f"{case.label}: warm-up call answered {status}"
                    f"{' (function error)' if ferr else ''}: {data[:300]!r}"
                )
            if i == 0 and json.loads(data) != json.loads(body):
                raise Unavailable(f"{case.label}: the echo came back different: {data[:200]!r}")


def run_chunk(case: Case, body: bytes, n: int) -> None:
    out = case.samples[len(body)]
    conn = case.connect()
    headers = {"Content-Type": "application/json"}
    path = case.path
    clock = time.perf_counter_ns
    trips = 2 if case.kind == "floor" else 1
    for _ in range(n):
        t0 = clock()
        bad = False
        for _ in range(trips):
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            bad |= resp.status != 200 or len(data) < 2
            if case.kind == "invoke" and resp.getheader("X-Amz-Function-Error"):
                bad = True
        t1 = clock()
        out.append(t1 - t0)
        if bad:
            case.errors[len(body)] += 1


def measure(cases: list[Case], body: bytes, n: int, rounds: int, deadline: float) -> None:
    per_round = [n // rounds + (1 if i < n % rounds else 0) for i in range(rounds)]
    for r, count in enumerate(per_round):
        active = [c for c in cases if c.failed is None]
        if not active or time.monotonic() > deadline:
            for c in active:
                c.failed = c.failed or "stopped early: --max-seconds ran out"
            return
        shift = r % len(active)
        for case in active[shift:] + active[:shift]:
            gc.collect()
            gc.disable()
            cpu = case.cpu[len(body)]
            s0, r0, c0 = cpu_ns(case.server_pids), cpu_ns(case.runtime_pids), time.thread_time_ns()
            try:
                run_chunk(case, body, count)
            except (OSError, http.client.HTTPException) as exc:
                case.failed = f"round {r}: {exc!r}"
                if case.child is not None:
                    case.failed += f"\n{case.child.log_text(15)}"
            finally:
                cpu["client"] += time.thread_time_ns() - c0
                cpu["server"] += cpu_ns(case.server_pids) - s0
                cpu["runtime"] += cpu_ns(case.runtime_pids) - r0
                gc.enable()


def pct(sorted_ns: list[int], q: float) -> float:
    idx = max(0, min(len(sorted_ns) - 1, math.ceil(q * len(sorted_ns)) - 1))
    return sorted_ns[idx] / 1e6


def summarize(samples: list[int], cpu: dict[str, int] | None = None) -> dict[str, Any]:
    if not samples:
        return {"n": 0}
    s = sorted(samples)
    per = {f"{k}_cpu_us": v / len(s) / 1e3 for k, v in (cpu or {}).items()}
    p50 = pct(s, 0.50)
    mean_ms = statistics.fmean(s) / 1e6
    return {
        "n": len(s),
        "per_s": 1000.0 / mean_ms,
        "mean_ms": mean_ms,
        "p50_ms": p50,
        "p90_ms": pct(s, 0.90),
        "p99_ms": pct(s, 0.99),
        "max_ms": s[-1] / 1e6,
        "min_ms": s[0] / 1e6,
        "stalls": sum(1 for x in s if x / 1e6 > p50 + STALL_OVER_P50_MS),
        "over_slow": sum(1 for x in s if x / 1e6 > SLOW_MS),
        **per,
    }


# ---------------------------------------------------------------- boto3 (optional) ---------


def boto3_round(cases: list[Case], body: bytes, n: int, rounds: int) -> dict[str, Any]:
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        return {"unavailable": "boto3 is not installed (pip install boto3)"}
    out: dict[str, Any] = {}
    clients = {}
    cfg = Config(
        retries={"max_attempts": 1, "mode": "standard"},
        read_timeout=REQUEST_TIMEOUT_S,
        connect_timeout=5,
        tcp_keepalive=False,
    )
    for c in cases:
        clients[c.key] = boto3.client(
            "lambda",
            endpoint_url=f"http://127.0.0.1:{c.port}",
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
            config=cfg,
        )
    fn_name = {c.key: c.path.split("/")[3] for c in cases}
    samples: dict[str, list[int]] = {c.key: [] for c in cases}
    errors: dict[str, str] = {}
    for c in cases:  # warm-up
        try:
            for _ in range(10):
                r = clients[c.key].invoke(FunctionName=fn_name[c.key], Payload=body)
                r["Payload"].read()
        except Exception as exc:
            errors[c.key] = repr(exc)
    per_round = [n // rounds + (1 if i < n % rounds else 0) for i in range(rounds)]
    for r, count in enumerate(per_round):
        live = [c for c in cases if c.key not in errors]
        shift = r % max(1, len(live))
        for c in live[shift:] + live[:shift]:
            client = clients[c.key]
            gc.collect()
            gc.disable()
            try:
                for _ in range(count):
                    t0 = time.perf_counter_ns()
                    resp = client.invoke(FunctionName=fn_name[c.key], Payload=body)
                    resp["Payload"].read()
                    samples[c.key].append(time.perf_counter_ns() - t0)
            except Exception as exc:
                errors[c.key] = repr(exc)
            finally:
                gc.enable()
    for c in cases:
        out[c.key] = {"label": c.label, **summarize(samples[c.key])}
        if c.key in errors:
            out[c.key]["error"] = errors[c.key]
    return out


# ---------------------------------------------------------------- process start ------------


def startup_times(runs: int, event_file: Path, deadline: float) -> list[dict[str, Any]]:
    wb_script = Path(PY).parent / "workbench"
    wb = [str(wb_script)] if wb_script.is_file() else [PY, "-m", "workbench"]
    wb_label = "workbench" if wb_script.is_file() else "python -m workbench"

    def echoed(p: subprocess.CompletedProcess[bytes]) -> bool:
        return p.returncode == 0 and json.loads(p.stdout) == json.loads(event_file.read_bytes())

    cmds: list[tuple[str, list[str], Callable[[subprocess.CompletedProcess[bytes]], bool]]] = [
        ("python -c pass", [PY, "-c", "pass"], lambda p: p.returncode == 0),
        ("python -c 'import aiohttp'", [PY, "-c", "import aiohttp"], lambda p: p.returncode == 0),
        (f"{wb_label} --version", [*wb, "--version"], lambda p: p.returncode == 0),
        (
            f"{wb_label} invoke echo-py",
            [*wb, "invoke", str(ECHO_PY), "-e", str(event_file)],
            echoed,
        ),
        (
            f"{wb_label} invoke echo-loop",
            [*wb, "invoke", str(ECHO_LOOP), "-e", str(event_file), "--env", f"BENCH_PYTHON={PY}"],
            echoed,
        ),
    ]
    times: dict[str, list[float]] = {c[0]: [] for c in cmds}
    failures: dict[str, str] = {}
    for i in range(runs):
        if time.monotonic() > deadline:
            break
        for label, argv, ok in cmds[i % len(cmds) :] + cmds[: i % len(cmds)]:
            if label in failures:
                continue
            t0 = time.perf_counter_ns()
            try:
                proc = subprocess.run(
                    argv, capture_output=True, timeout=60, cwd=REPO, start_new_session=True
                )
            except subprocess.TimeoutExpired:
                failures[label] = "timed out after 60 s"
                continue
            dt = (time.perf_counter_ns() - t0) / 1e6
            try:
                good = ok(proc)
            except ValueError:
                good = False
            if not good:
                failures[label] = (
                    f"exit {proc.returncode}: {proc.stderr.decode(errors='replace')[-500:]}"
                )
                continue
            times[label].append(dt)
    out = []
    for label, _, _ in cmds:
        t = sorted(times[label])
        row: dict[str, Any] = {"command": label, "runs": len(t)}
        if t:
            row.update(p50_ms=statistics.median(t), min_ms=t[0], max_ms=t[-1])
        if label in failures:
            row["error"] = failures[label]
        out.append(row)
    return out


# ---------------------------------------------------------------- report -------------------


def fmt(v: float | None, spec: str = ".3f") -> str:
    return "-" if v is None else format(v, spec)


def pick_floors(results: dict[str, dict[int, dict[str, Any]]]) -> dict[int, str]:
    """At each payload size the floor is the floor server with the lower p50: the least an
    invoke can cost is what the cheapest minimal server takes for the same two exchanges."""
    out = {}
    for size in (SMALL, LARGE):
        have = [
            k
            for k in ("floor_asyncio", "floor_threads")
            if k in results and results[k][size].get("n")
        ]
        if have:
            out[size] = min(have, key=lambda k: results[k][size]["p50_ms"])
    return out


def rie_ratios(
    key: str, size: int, results: dict[str, dict[int, dict[str, Any]]]
) -> tuple[float | None, float | None]:
    """(p50, p99) of a workbench case over the RIE case serving the same runtime client."""
    ref = RIE_PAIRS.get(key)
    if ref is None or ref not in results or key not in results:
        return None, None
    mine, theirs = results[key][size], results[ref][size]
    if not mine.get("n") or not theirs.get("n"):
        return None, None
    return mine["p50_ms"] / theirs["p50_ms"], mine["p99_ms"] / theirs["p99_ms"]


def print_table(
    cases: list[Case], results: dict[str, dict[int, dict[str, Any]]], floors: dict[int, str]
) -> list[str]:
    lines = []
    head = (
        f"{'case':<32} {'payload':>7} {'n':>5} {'inv/s':>7} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'max ms':>7} {'p50/RIE':>7} {'p99/RIE':>7} {'p50/fl':>6} {'p99/fl':>6} "
        f"{'stalls':>6} {'>' + format(SLOW_MS, '.0f') + 'ms':>5} {'err':>3} "
        f"{'srv us':>7} {'rt us':>6}"
    )
    lines += [head, "-" * len(head)]
    for size in (SMALL, LARGE):
        floor = results[floors[size]][size] if size in floors else {}
        for c in cases:
            st = results[c.key][size]
            if not st.get("n"):
                lines.append(f"{c.label:<32} {size_label(size):>7}  (no samples)")
                continue
            r50 = st["p50_ms"] / floor["p50_ms"] if floor.get("n") else None
            r99 = st["p99_ms"] / floor["p99_ms"] if floor.get("n") else None
            st["p50_vs_floor"], st["p99_vs_floor"] = r50, r99
            q50, q99 = rie_ratios(c.key, size, results)
            st["p50_vs_rie"], st["p99_vs_rie"] = q50, q99
            rt = st.get("runtime_cpu_us") if c.runtime_pids else None
            lines.append(
                f"{c.label:<32} {size_label(size):>7} {st['n']:>5} {st['per_s']:>7.0f} "
                f"{st['p50_ms']:>7.3f} {st['p99_ms']:>7.3f} {st['max_ms']:>7.2f} "
                f"{fmt(q50, '.2f'):>7} {fmt(q99, '.2f'):>7} "
                f"{fmt(r50, '.2f'):>6} {fmt(r99, '.2f'):>6} {st['stalls']:>6} "
                f"{st['over_slow']:>5} {c.errors[size]:>3} "
                f"{fmt(st.get('server_cpu_us'), '.0f'):>7} {fmt(rt, '.0f'):>6}"
                + ("  <- floor" if floors.get(size) == c.key else "")
            )
        lines.append("")
    return lines


def rie_targets(
    cases: list[Case], results: dict[str, dict[int, dict[str, Any]]]
) -> tuple[list[str], list[dict[str, Any]]]:
    """Issue 12's targets, each workbench case against RIE serving the same runtime."""
    lines, rows = [], []
    for c in cases:
        ref = RIE_PAIRS.get(c.key)
        if ref is None:
            continue
        if ref not in results:
            lines.append(f"NOT RUN  {c.label}: no {RIE_LABELS[ref]} to compare with")
            continue
        tag = "" if c.key != "wb_builtin" else "  (beside the issue's two clients)"
        s50, s99 = rie_ratios(c.key, SMALL, results)
        l50, _ = rie_ratios(c.key, LARGE, results)
        checks = []
        if s50 is not None and s99 is not None:
            checks.append(
                (
                    f"100B p50 {s50:.2f}x RIE <= {RIE_TARGETS['small_p50']}",
                    s50 <= RIE_TARGETS["small_p50"],
                )
            )
            checks.append(
                (
                    f"100B p99 {s99:.2f}x RIE <= {RIE_TARGETS['small_p99']}",
                    s99 <= RIE_TARGETS["small_p99"],
                )
            )
        if l50 is not None:
            checks.append(
                (
                    f"1MiB p50 {l50:.2f}x RIE <= {RIE_TARGETS['large_p50']}",
                    l50 <= RIE_TARGETS["large_p50"],
                )
            )
        small = results[c.key][SMALL]
        if small.get("n"):
            slow = small["over_slow"]
            checks.append(
                (
                    f"{slow} of {small['n']} 100B invokes over {SLOW_MS:.0f} ms == 0 "
                    f"[RIE: {results[ref][SMALL].get('over_slow', '-')}]",
                    slow == 0,
                )
            )
        for text, ok in checks:
            lines.append(f"{'PASS' if ok else 'FAIL'}  {c.label}: {text}{tag}")
            rows.append({"case": c.key, "versus": ref, "check": text, "pass": ok})
    return lines, rows


def size_label(size: int) -> str:
    return (
        f"{size}B"
        if size < 1024
        else f"{size // 1024}KiB"
        if size < 1024 * 1024
        else f"{size // (1024 * 1024)}MiB"
    )


def targets(
    cases: list[Case], results: dict[str, dict[int, dict[str, Any]]], floors: dict[int, str]
) -> tuple[list[str], list[dict[str, Any]]]:
    lines, rows = [], []
    fs = results[floors[SMALL]][SMALL] if SMALL in floors else {}
    fl = results[floors[LARGE]][LARGE] if LARGE in floors else {}
    for c in cases:
        if c.kind != "invoke" or c.rie:  # RIE is what the other targets are taken against
            continue
        s, lg = results[c.key][SMALL], results[c.key][LARGE]
        tag = "" if c.workbench else "  (reference, not a workbench target)"
        checks = []
        if s.get("n") and fs.get("n"):
            checks.append(
                (
                    f"100B p50 {s['p50_ms']:.3f} ms <= {TARGETS['small_p50']}x floor "
                    f"({TARGETS['small_p50'] * fs['p50_ms']:.3f} ms)",
                    s["p50_ms"] <= TARGETS["small_p50"] * fs["p50_ms"],
                )
            )
            checks.append(
                (
                    f"100B p99 {s['p99_ms']:.3f} ms <= {TARGETS['small_p99']}x floor "
                    f"({TARGETS['small_p99'] * fs['p99_ms']:.3f} ms)",
                    s["p99_ms"] <= TARGETS["small_p99"] * fs["p99_ms"],
                )
            )
        if lg.get("n") and fl.get("n"):
            checks.append(
                (
                    f"1MiB p50 {lg['p50_ms']:.3f} ms <= {TARGETS['large_p50']}x floor "
                    f"({TARGETS['large_p50'] * fl['p50_ms']:.3f} ms)",
                    lg["p50_ms"] <= TARGETS["large_p50"] * fl["p50_ms"],
                )
            )
        stalls = sum(x.get("stalls", 0) for x in (s, lg))
        slow = sum(x.get("over_slow", 0) for x in (s, lg))
        noise = sum(x.get("stalls", 0) for x in (fs, fl))
        checks.append(
            (
                f"stalls {stalls} (> p50 + {STALL_OVER_P50_MS:.0f} ms; {slow} over "
                f"{SLOW_MS:.0f} ms) == 0   [the floor had {noise}: machine noise]",
                stalls == 0,
            )
        )
        if c.failed:
            checks.append((f"ran to the end ({c.failed.splitlines()[0]})", False))
        for text, ok in checks:
            lines.append(f"{'PASS' if ok else 'FAIL'}  {c.label}: {text}{tag}")
            rows.append({"case": c.key, "check": text, "pass": ok, "workbench": c.workbench})
    return lines, rows


def profile_report(profile_dir: Path, keys: list[str], top: int) -> list[str]:
    import pstats

    lines = []
    for key in keys:
        path = profile_dir / f"{key}.pstats"
        if not path.exists():
            lines.append(f"(no profile for {key}: {path} was not written)")
            continue
        lines.append(f"== cProfile of `workbench serve` for {key} (sorted by own time) ==")
        import io

        buf = io.StringIO()
        pstats.Stats(str(path), stream=buf).sort_stats("tottime").print_stats(top)
        text = buf.getvalue()
        start = text.find("   ncalls")
        lines.append(text[start:] if start >= 0 else text)
    return lines


# ---------------------------------------------------------------- main ---------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller counts (a smoke test)")
    ap.add_argument("--small-n", type=int, help="timed calls with the 100-byte event (2000)")
    ap.add_argument("--large-n", type=int, help="timed calls with the 1 MiB event (200)")
    ap.add_argument("--rounds", type=int, help="interleaved rounds the calls are split in (10)")
    ap.add_argument(
        "--boto3-n", type=int, help="boto3 calls per case, 100-byte event (300; 0 skips)"
    )
    ap.add_argument("--startup-runs", type=int, help="runs of each command timed end to end (10)")
    ap.add_argument("--no-cargo-lambda", action="store_true", help="leave cargo-lambda out")
    ap.add_argument("--rie", help="the RIE binary (default: shared/anchors/rie-classic)")
    ap.add_argument("--no-rie", action="store_true", help="leave the official emulator out")
    ap.add_argument(
        "--only",
        help="comma-separated case keys to run (wb_loop,rie_loop,...; the asyncio floor "
        "always runs): for profiling one pair",
    )
    ap.add_argument(
        "--no-builtin", action="store_true", help="leave out workbench's own Python client"
    )
    ap.add_argument(
        "--serve-quiet",
        action="store_true",
        help="run `workbench serve -q` (default: as a user runs it, printing logs)",
    )
    ap.add_argument(
        "--profile-serve",
        action="store_true",
        help="run each `workbench serve` under cProfile and print where its time goes "
        "(slows serve down: the numbers of such a run are not the benchmark)",
    )
    ap.add_argument(
        "--max-seconds",
        type=float,
        default=1500,
        help="stop measuring (and report what there is) after this long (1500)",
    )
    ap.add_argument("--json", type=Path, default=RESULTS, help=f"results file ({RESULTS})")
    args = ap.parse_args(argv)
    quick = args.quick
    small_n = args.small_n if args.small_n is not None else (300 if quick else 2000)
    large_n = args.large_n if args.large_n is not None else (30 if quick else 200)
    rounds = args.rounds or (3 if quick else 10)
    boto3_n = args.boto3_n if args.boto3_n is not None else (40 if quick else 300)
    startup_runs = args.startup_runs if args.startup_runs is not None else (3 if quick else 10)
    warm_small, warm_large = (30, 3) if quick else (200, 10)
    deadline = time.monotonic() + args.max_seconds

    small, large = make_event(SMALL), make_event(LARGE)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    cases: list[Case] = []
    unavailable: dict[str, str] = {}
    out: list[str] = []

    def say(line: str = "") -> None:
        print(line, flush=True)
        out.append(line)

    with tempfile.TemporaryDirectory(prefix="wb-bench-") as tmp:
        tmpdir = Path(tmp)
        logdir = tmpdir / "logs"
        logdir.mkdir()
        profile_dir = (HERE / "results" / "profiles") if args.profile_serve else None
        if profile_dir is not None:
            profile_dir.mkdir(parents=True, exist_ok=True)
        try:
            load_start = os.getloadavg()
            say(
                f"invoke overhead: python {platform.python_version()} on {platform.machine()}, "
                f"{os.cpu_count()} cpus, load {os.getloadavg()[0]:.2f}; "
                f"{small_n} x {SMALL}B and {large_n} x {size_label(LARGE)} per case in "
                f"{rounds} interleaved rounds"
            )
            starters: list[tuple[str, str, Callable[[], Case]]] = [
                *(
                    (f"floor_{m}", FLOOR_LABELS[m], lambda m=m: start_floor(m, logdir))
                    for m in ("asyncio", "threads", "aiohttp")
                ),
                (
                    "wb_loop",
                    "workbench, plain loop",
                    lambda: start_serve(
                        "wb_loop",
                        "workbench, plain loop",
                        ECHO_LOOP,
                        logdir,
                        ["--env", f"BENCH_PYTHON={PY}"],
                        args.serve_quiet,
                        profile_dir,
                    ),
                ),
                (
                    "wb_ric",
                    "workbench, awslambdaric",
                    lambda: start_serve(
                        "wb_ric",
                        "workbench, awslambdaric",
                        ECHO_PY,
                        logdir,
                        ["--runtime-client", "awslambdaric"],
                        args.serve_quiet,
                        profile_dir,
                    ),
                ),
            ]
            rie_exe, rie_where = find_rie(args.rie)
            if args.no_rie:
                unavailable["rie"] = "--no-rie"
            elif rie_exe is None:
                unavailable["rie"] = rie_where
                say(f"NOT RUN  RIE cases: {rie_where}")
            else:
                for key, client in (
                    ("rie_loop", None),
                    ("rie_ric", "awslambdaric"),
                    ("rie_builtin", "builtin"),
                ):
                    if key == "rie_builtin" and args.no_builtin:
                        continue
                    starters.append(
                        (
                            key,
                            RIE_LABELS[key],
                            lambda k=key, c=client, exe=rie_exe: start_rie(k, exe, logdir, c),
                        )
                    )
            starters.append(("ref_relay", RELAY_LABEL, lambda: start_relay(logdir)))
            starters.append(
                ("ref_relay_ric", RELAY_RIC_LABEL, lambda: start_relay(logdir, ric=True))
            )
            if not args.no_builtin:
                starters.append(
                    (
                        "wb_builtin",
                        "workbench, builtin client",
                        lambda: start_serve(
                            "wb_builtin",
                            "workbench, builtin client",
                            ECHO_PY,
                            logdir,
                            [],
                            args.serve_quiet,
                            profile_dir,
                        ),
                    )
                )
            if not args.no_cargo_lambda:
                starters.append(
                    (
                        "cargo_lambda_loop",
                        "cargo-lambda, plain loop",
                        lambda: start_cargo_lambda(logdir, tmpdir),
                    )
                )
            if args.only:
                keep = {k.strip() for k in args.only.split(",")} | {"floor_asyncio"}
                starters = [s for s in starters if s[0] in keep]
            for key, label, start in starters:
                try:
                    case = start()
                except Unavailable as exc:
                    unavailable[key] = str(exc)
                    say(f"NOT RUN  {label}: {exc}")
                    continue
                try:
                    warm_up(case, small, large, warm_small, warm_large)
                except (Unavailable, OSError, http.client.HTTPException, ValueError) as exc:
                    reason = (
                        str(exc) if isinstance(exc, Unavailable) else f"warm-up failed: {exc!r}"
                    )
                    if case.child is not None:
                        reason += f"\n{case.child.log_text(15)}"
                    unavailable[key] = reason
                    say(f"NOT RUN  {label}: {reason}")
                    case.close()
                    continue
                case.find_pids()
                cases.append(case)
            if "floor_asyncio" in unavailable and "floor_threads" in unavailable:
                say("no floor server could run, so no ratios can be taken; stopping")
                return 1
            if any(c.key == "cargo_lambda_loop" for c in cases):
                v = getattr(next(c for c in cases if c.key == "cargo_lambda_loop"), "version", "")
                say(f"cargo-lambda: {v}")

            measure(cases, small, small_n, rounds, deadline)
            measure(cases, large, large_n, rounds, deadline)
            results = {
                c.key: {size: summarize(c.samples[size], c.cpu[size]) for size in (SMALL, LARGE)}
                for c in cases
            }
            say()
            floors = pick_floors(results)
            say(
                "Warm invokes, sequential, one keep-alive http.client connection per case; "
                "ratios against the floor's p50/p99 at the same payload (the floor server "
                "with the lower p50, marked <- floor)"
            )
            for line in print_table(cases, results, floors):
                say(line)
            say(
                "srv us / rt us: CPU time (all threads, from /proc schedstat) per invoke of the "
                "emulator or floor server / of the runtime process; stalls: invokes slower than "
                f"p50 + {STALL_OVER_P50_MS:.0f} ms"
            )
            say()
            for c in cases:
                if c.failed:
                    say(f"STOPPED  {c.label}: {c.failed}")

            boto3_res: dict[str, Any] = {}
            invoke_cases = [c for c in cases if c.kind == "invoke" and c.failed is None]
            if boto3_n > 0 and invoke_cases and time.monotonic() < deadline:
                boto3_res = boto3_round(invoke_cases, small, boto3_n, max(1, min(rounds, 5)))
                say(f"boto3 lambda.invoke, {SMALL}B event, sequential:")
                if "unavailable" in boto3_res:
                    say(f"  NOT RUN: {boto3_res['unavailable']}")
                else:
                    for st in boto3_res.values():
                        if st.get("n"):
                            say(
                                f"  {st['label']:<32} n={st['n']:<4} {st['per_s']:>6.0f}/s  "
                                f"p50 {st['p50_ms']:.3f}  p99 {st['p99_ms']:.3f}  "
                                f"max {st['max_ms']:.2f} ms  stalls {st['stalls']}  "
                                f">{SLOW_MS:.0f}ms {st['over_slow']}"
                            )
                        if st.get("error"):
                            say(f"  {st['label']}: ERROR {st['error']}")
                say()

            startup: list[dict[str, Any]] = []
            if startup_runs > 0:
                event_file = tmpdir / "event-100B.json"
                event_file.write_bytes(small)
                startup = startup_times(startup_runs, event_file, deadline)
                say(
                    f"Process start to exit ({startup_runs} runs each, interleaved; "
                    f"{SMALL}B event; PYTHONDONTWRITEBYTECODE="
                    f"{os.environ.get('PYTHONDONTWRITEBYTECODE', '(unset)')}):"
                )
                for row in startup:
                    if row.get("runs"):
                        say(
                            f"  {row['command']:<34} p50 {row['p50_ms']:7.1f} ms   "
                            f"min {row['min_ms']:7.1f} ms   max {row['max_ms']:7.1f} ms"
                        )
                    if row.get("error"):
                        say(f"  {row['command']:<34} ERROR {row['error']}")
                say()

            rlines, rrows = rie_targets(cases, results)
            say(
                "Targets against RIE serving the same runtime (issue 12: 100B p50 <= 0.75x, "
                f"p99 <= 1.0x; 1MiB p50 <= 0.3x; no 100B invoke over {SLOW_MS:.0f} ms):"
            )
            for line in rlines:
                say(line)
            say()
            tlines, trows = targets(cases, results, floors)
            say(
                "Earlier targets, against the floor (100B p50 <= 2.5x floor, p99 <= 5x floor; "
                "1MiB p50 <= 3x floor; no stalls):"
            )
            for line in tlines:
                say(line)
            for key, why in unavailable.items():
                say(f"NOT RUN  {key}: {why.splitlines()[0]}")

            if profile_dir is not None:
                for c in cases:
                    if c.workbench and c.child is not None:
                        c.close()  # SIGINT: serve exits normally and cProfile writes its file
                say()
                for line in profile_report(profile_dir, [c.key for c in cases if c.workbench], 30):
                    say(line)

            doc = {
                "meta": {
                    "python": platform.python_version(),
                    "machine": platform.machine(),
                    "cpus": os.cpu_count(),
                    "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    "quick": quick,
                    "small_bytes": SMALL,
                    "large_bytes": LARGE,
                    "small_n": small_n,
                    "large_n": large_n,
                    "rounds": rounds,
                    "serve_quiet": args.serve_quiet,
                    "profiled": args.profile_serve,
                    "stall_over_p50_ms": STALL_OVER_P50_MS,
                    "slow_ms": SLOW_MS,
                    "targets": TARGETS,
                    "rie_targets": RIE_TARGETS,
                    "load_avg_start": load_start,
                    "load_avg_end": os.getloadavg(),
                    "pythondontwritebytecode": os.environ.get("PYTHONDONTWRITEBYTECODE"),
                },
                "cases": [
                    {
                        "key": c.key,
                        "label": c.label,
                        "kind": c.kind,
                        "workbench": c.workbench,
                        "failed": c.failed,
                        "errors": {str(k): v for k, v in c.errors.items()},
                        "results": {str(k): v for k, v in results[c.key].items()},
                    }
                    for c in cases
                ],
                "floors": {str(k): v for k, v in floors.items()},
                "unavailable": unavailable,
                "boto3": boto3_res,
                "startup": startup,
                "targets": trows,
                "rie_targets": rrows,
                "output": out,
            }
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(doc, indent=2) + "\n")
            say(f"results written to {args.json}")
            return 0
        finally:
            for c in cases:
                c.close()
            Child.stop_all()


if __name__ == "__main__":
    sys.exit(main())
