#!/usr/bin/env python3
"""Live reload latency through `workbench serve --watch`, beside its baselines, in one run.

    python bench/reload_latency.py            # 20 edits per function (about a minute)
    python bench/reload_latency.py --quick    # 5 edits each, a smoke test

For the Python and Node examples (copied to a temporary folder), each edit changes the
greeting; a client polling invoke on a keep-alive connection times save -> the first response
from the new code. Beside it, in the same run: the plain process spawn of the same interpreter
(`python -c pass`, `node -e 0`), and the server's own save -> ready and init times from its
"reloaded ..." lines. For Go (a standard-library runtime loop, as tests/fixtures/functions/
rt-go), save -> ready and save -> first new response beside a bare `go build` of the same kind
of edit. Then a lost-invoke count: clients invoking without pause while the code is reloaded.
Results are printed and written to bench/results/reload_latency.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
EXAMPLES = REPO / "examples"
GO_FIXTURE = REPO / "tests" / "fixtures" / "functions" / "rt-go" / "main.go"
RESULTS = HERE / "results" / "reload_latency.json"
PY = sys.executable
INVOKE = "/2015-03-31/functions/{name}/invocations"
TARGET_P50_MS = 100.0  # issue 12: save -> first answer from the new code, p50, invoking every 20 ms
INTERVAL_MS = 20.0  # how often the probing client invokes (0: back to back)
RELOADED = re.compile(r"reloaded (\S+) in (\d+) ms \((.*?)(?:; build (\d+) ms)?; init (\d+) ms\)")


def say(text: str = "") -> None:
    print(text, flush=True)


@dataclass
class Serve:
    """`workbench serve --watch -q` over the given folders; stderr lines kept with times."""

    folders: list[Path]
    proc: subprocess.Popen[bytes] = field(init=False)
    lines: list[tuple[float, str]] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        argv = [
            PY,
            "-m",
            "workbench",
            "serve",
            "--watch",
            "-q",
            "--port",
            "0",
            *map(str, self.folders),
        ]
        self.proc = subprocess.Popen(
            argv,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + 120
        while not self.port:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError("serve did not start:\n" + self.text())
            time.sleep(0.01)

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip("\n")
            self.lines.append((time.perf_counter(), line))
            m = re.search(r"serving the Lambda Invoke API on http://[^:]+:(\d+)", line)
            if m:
                self.port = int(m.group(1))

    def text(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def reload_line(self, name: str, since: int, timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for _, line in self.lines[since:]:
                m = RELOADED.search(line)
                if m and m.group(1) == name:
                    return m
                if f"reload of {name} failed" in line:
                    raise RuntimeError(line)
            time.sleep(0.005)
        raise RuntimeError(f"no reload line for {name}:\n{self.text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


class Client:
    def __init__(self, port: int, name: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.path = INVOKE.format(name=name)

    def invoke(self, body: bytes = b'{"name": "bench"}') -> tuple[int, bool, bytes]:
        self.conn.request("POST", self.path, body, {"Content-Type": "application/json"})
        resp = self.conn.getresponse()
        data = resp.read()
        return resp.status, resp.getheader("X-Amz-Function-Error") is not None, data


@dataclass
class Edit:
    name: str
    file: Path
    original: str

    def write(self, tag: str) -> str:
        """`Hello,` becomes `Hello <marker>,`: each save different, each answer telling."""
        marker = f"{tag}-{time.monotonic_ns()}"
        self.file.write_text(self.original.replace("Hello,", f"Hello {marker},", 1))
        return marker


def save_to_answer(
    serve: Serve, edit: Edit, client: Client, tag: str, interval_ms: float = INTERVAL_MS
) -> tuple[float, re.Match[str], int]:
    """Save, then invoke every `interval_ms` (as a person's client or a test loop would)
    until the answer carries the new marker: milliseconds from the write to that answer,
    the server's reload line for that save, and how many invokes it took. Every invoke in
    between must answer 200 from the old code: one that does not is a lost answer."""
    since = len(serve.lines)
    t0 = time.perf_counter()
    marker = edit.write(tag)
    deadline = time.monotonic() + 60
    tick = interval_ms / 1000
    sent = 0
    while True:
        status, failed, data = client.invoke()
        sent += 1
        if status != 200 or failed:
            raise RuntimeError(f"invoke failed during a reload: {status} {data[:300]!r}")
        if marker.encode() in data:
            ms = (time.perf_counter() - t0) * 1000
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"the new code never answered:\n{serve.text()[-3000:]}")
        if tick > 0:  # the next invoke on the next tick after the write
            elapsed = time.perf_counter() - t0
            time.sleep(max(0.0, tick - elapsed % tick))
    return ms, serve.reload_line(edit.name, since), sent


def runtime_spawn(folder: Path) -> list[str]:
    """The bare start of the interpreter workbench runs this function's runtime on, with the
    same flags: what every reload pays before any of the runtime's own code runs (the venv's
    python would not do: workbench runs the interpreter the venv was made from, whose
    site-packages and .pth files differ)."""
    from workbench.core.config.resolve import resolve_functions
    from workbench.core.runtimes import launch_for

    argv = launch_for(resolve_functions([folder])[0].config).argv
    if argv[0].endswith("node") or "node" in Path(argv[0]).name:
        return [argv[0], "-e", "0"]
    flags = [a for a in argv[1:] if a.startswith("-") and a != "-m"]
    return [argv[0], *flags, "-c", "pass"]


def spawn_ms(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (time.perf_counter() - t0) * 1000


def stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "n": len(values),
        "p50_ms": statistics.median(values),
        "min_ms": min(values),
        "max_ms": max(values),
    }


def measure_interpreter(
    serve: Serve, edit: Edit, spawn: list[str], n: int, interval_ms: float = INTERVAL_MS
) -> dict[str, Any]:
    client = Client(serve.port, edit.name)
    client.invoke()  # the cold start is not a reload
    latency, ready, init, spawns = [], [], [], []
    for i in range(n):
        ms, line, _ = save_to_answer(serve, edit, client, f"e{i}", interval_ms)
        latency.append(ms)
        ready.append(float(line.group(2)))
        init.append(float(line.group(5)))
        spawns.append(spawn_ms(spawn))  # interleaved: the same load for both
        time.sleep(0.1)  # a person does not save 10 times a second
    return {
        "save_to_response": stats(latency),
        "server_save_to_ready": stats(ready),
        "init": stats(init),
        "spawn": stats(spawns),
        "spawn_command": " ".join(spawn),
    }


def go_source(version: str) -> str:
    src = GO_FIXTURE.read_text()
    return src.replace('"pid": os.Getpid(),', '"version": version, "pid": os.Getpid(),') + (
        f'\nconst version = "{version}"\n'
    )


def bare_go_build(folder: Path, version: str) -> float:
    (folder / "main.go").write_text(go_source(version))
    env = {**os.environ, "CGO_ENABLED": "0"}
    t0 = time.perf_counter()
    subprocess.run(
        ["go", "build", "-tags", "lambda.norpc", "-o", "bootstrap", "."],
        cwd=folder,
        env=env,
        check=True,
        capture_output=True,
    )
    return (time.perf_counter() - t0) * 1000


def measure_go(serve: Serve, folder: Path, bare: Path, n: int) -> dict[str, Any]:
    client = Client(serve.port, folder.name)
    client.invoke()
    latency, ready, build, init, bare_ms = [], [], [], [], []
    for i in range(n):
        since = len(serve.lines)
        t0 = time.perf_counter()
        (folder / "main.go").write_text(go_source(f"wb{i}-{time.monotonic_ns()}"))
        marker = f"wb{i}-".encode()
        while True:
            status, failed, data = client.invoke()
            if status != 200 or failed:
                raise RuntimeError(f"invoke failed during a reload: {data[:300]!r}")
            if marker in data:
                latency.append((time.perf_counter() - t0) * 1000)
                break
        line = serve.reload_line(folder.name, since)
        ready.append(float(line.group(2)))
        build.append(float(line.group(4) or 0))
        init.append(float(line.group(5)))
        bare_ms.append(bare_go_build(bare, f"bare{i}-{time.monotonic_ns()}"))
    return {
        "save_to_response": stats(latency),
        "server_save_to_ready": stats(ready),
        "build": stats(build),
        "init": stats(init),
        "bare_go_build": stats(bare_ms),
    }


def lost_invokes(serve: Serve, edit: Edit, reloads: int, clients: int) -> dict[str, Any]:
    """Clients invoke without pause while the code is reloaded: every invoke must answer."""
    stop = threading.Event()
    counts = {"ok": 0, "failed": 0}
    errors: list[str] = []
    lock = threading.Lock()

    def hammer() -> None:
        c = Client(serve.port, edit.name)
        while not stop.is_set():
            try:
                status, failed, data = c.invoke()
                good = status == 200 and not failed and b"statusCode" in data
            except (OSError, http.client.HTTPException) as exc:
                good, data = False, repr(exc).encode()
                c = Client(serve.port, edit.name)
            with lock:
                counts["ok" if good else "failed"] += 1
                if not good and len(errors) < 5:
                    errors.append(data[:300].decode(errors="replace"))

    threads = [threading.Thread(target=hammer) for _ in range(clients)]
    for t in threads:
        t.start()
    latency = []
    try:
        probe = Client(serve.port, edit.name)
        for i in range(reloads):
            ms, _, _ = save_to_answer(serve, edit, probe, f"load{i}")
            latency.append(ms)
            time.sleep(0.1)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    return {
        "reloads": reloads,
        "clients": clients,
        "invokes": counts["ok"] + counts["failed"],
        "failed": counts["failed"],
        "errors": errors,
        "save_to_response_under_load": stats(latency),
    }


def copy_example(name: str, into: Path) -> Path:
    dest = into / name
    shutil.copytree(EXAMPLES / name, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def fmt(d: dict[str, float], key: str = "p50_ms") -> str:
    return f"{d[key]:8.1f}" if d else "       -"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="5 edits per function")
    ap.add_argument("--edits", type=int, help="edits per interpreted function (20)")
    ap.add_argument("--go-edits", type=int, help="edits of the Go function (8)")
    ap.add_argument("--no-go", action="store_true", help="leave Go out")
    ap.add_argument(
        "--interval-ms",
        type=float,
        default=INTERVAL_MS,
        help=f"the probing client invokes this often ({INTERVAL_MS:.0f}; 0: back to back)",
    )
    ap.add_argument("--json", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    n = args.edits or (5 if args.quick else 20)
    go_n = args.go_edits or (3 if args.quick else 8)
    have_go = shutil.which("go") is not None and not args.no_go
    out: dict[str, Any] = {
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "load_at_start": os.getloadavg(),
        "edits": n,
        "interval_ms": args.interval_ms,
    }
    with tempfile.TemporaryDirectory(prefix="wb-reload-bench-") as tmp:
        root = Path(tmp)
        py_dir, node_dir = copy_example("hello-python", root), copy_example("hello-node", root)
        folders = [py_dir, node_dir]
        go_dir = root / "hello-go"
        bare = root / "bare-go"
        if have_go:
            for d in (go_dir, bare):
                d.mkdir()
                (d / "go.mod").write_text("module example.com/hellogo\n\ngo 1.19\n")
                (d / "main.go").write_text(go_source("v0"))
            folders.append(go_dir)
        say(
            f"# reload latency, {n} edits per function; {platform.node()}, "
            f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}"
        )
        serve = Serve(folders)
        try:
            py = Edit("hello-python", py_dir / "app.py", (py_dir / "app.py").read_text())
            node = Edit("hello-node", node_dir / "index.mjs", (node_dir / "index.mjs").read_text())
            rows = {
                "hello-python": measure_interpreter(
                    serve, py, runtime_spawn(py_dir), n, args.interval_ms
                ),
                "hello-node": measure_interpreter(
                    serve, node, runtime_spawn(node_dir), n, args.interval_ms
                ),
            }
            out["interpreted"] = rows
            if have_go:
                out["go"] = measure_go(serve, go_dir, bare, go_n)
            out["lost"] = lost_invokes(serve, py, reloads=max(3, n // 2), clients=4)
        finally:
            serve.stop()
    out["load_at_end"] = os.getloadavg()
    report(out, have_go)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2))
    say(f"\nresults written to {args.json}")
    lost = out["lost"]["failed"]
    met = all(r["save_to_response"]["p50_ms"] <= TARGET_P50_MS for r in out["interpreted"].values())
    return 0 if met and lost == 0 else 1


def report(out: dict[str, Any], have_go: bool) -> None:
    every = out.get("interval_ms", INTERVAL_MS)
    cadence = f"invoking every {every:.0f} ms" if every else "invoking back to back"
    say(
        f"\nsave -> first response from the new code (ms), {cadence}; beside the bare start "
        "of the runtime's own interpreter"
    )
    say(
        f"{'function':14} {'p50':>8} {'max':>8} | {'spawn p50':>9} {'spawn max':>9} | "
        f"{'ready p50':>9} {'init p50':>8}"
    )
    for name, r in out["interpreted"].items():
        say(
            f"{name:14} {fmt(r['save_to_response'])} {fmt(r['save_to_response'], 'max_ms')} | "
            f"{fmt(r['spawn']):>9} {fmt(r['spawn'], 'max_ms'):>9} | "
            f"{fmt(r['server_save_to_ready']):>9} {fmt(r['init'])}"
        )
    for name, r in out["interpreted"].items():
        say(f"   spawn of {name}: {r['spawn_command']}")
    if have_go:
        g = out["go"]
        say(
            f"\nGo ({g['save_to_response'].get('n', 0)} edits): save -> ready p50 "
            f"{g['server_save_to_ready']['p50_ms']:.0f} ms (max "
            f"{g['server_save_to_ready']['max_ms']:.0f}); build p50 "
            f"{g['build']['p50_ms']:.0f} ms; init p50 {g['init']['p50_ms']:.0f} ms; "
            f"save -> first new response p50 {g['save_to_response']['p50_ms']:.0f} ms"
        )
        say(
            f"   bare `go build` of the same kind of edit: p50 "
            f"{g['bare_go_build']['p50_ms']:.0f} ms (max {g['bare_go_build']['max_ms']:.0f})"
        )
    lost = out["lost"]
    say(
        f"\nlost invokes: {lost['failed']} of {lost['invokes']} across {lost['reloads']} "
        f"reloads, {lost['clients']} clients invoking without pause; save -> new response "
        f"under that load p50 {lost['save_to_response_under_load']['p50_ms']:.0f} ms"
    )
    for err in lost["errors"]:
        say(f"   {err}")
    for name, r in out["interpreted"].items():
        p50 = r["save_to_response"]["p50_ms"]
        verdict = "PASS" if p50 <= TARGET_P50_MS else "FAIL"
        say(f"{verdict} {name}: p50 {p50:.0f} ms (target <= {TARGET_P50_MS:.0f} ms)")
    say(f"{'PASS' if lost['failed'] == 0 else 'FAIL'} no invoke lost across reloads")


if __name__ == "__main__":
    sys.exit(main())
