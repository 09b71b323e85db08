#!/usr/bin/env python3
"""Start-up of the TUI: process start to the first frame painted, beside the interpreter's.

    python bench/tui_startup.py             # 10 runs of each, interleaved
    python bench/tui_startup.py --runs 20

`workbench DIR` (a copy of examples/hello-python, a private XDG_CONFIG_HOME) runs in a pseudo
terminal of 120x36, as a user runs it. Its time is from just before the spawn to the moment
the terminal has received the first whole frame: the pane titles and the footer's keys, which
Textual writes in one synchronized update. The app is then quit with ctrl+q (and the time to
exit is printed too). Beside it, in the same run and interleaved: `python -c pass` and
`python -c "import textual.app"` from spawn to exit, the floor any Textual app starts from.
The issue's target: the first frame well under a second.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PY = sys.executable
WORKBENCH = str(Path(PY).with_name("workbench"))  # the entry point beside the interpreter
MARKERS = (b"Logs", b"History", b"Invoke")  # all three are in the first full frame
TARGET_MS = 1000.0


def say(text: str = "") -> None:
    print(text, flush=True)


def first_frame(folder: Path, config_home: Path, timeout: float = 20) -> tuple[float, float]:
    """(spawn -> first frame, ctrl+q -> exit) in ms, for `workbench folder` in a pty."""
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(config_home),
        "TERM": "xterm-256color",
        "COLUMNS": "120",
        "LINES": "36",
    }
    t0 = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:  # the child: a terminal of 120x36
        os.execve(WORKBENCH, [WORKBENCH, str(folder)], env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 36, 120, 0, 0))
    seen = b""
    painted = None
    try:
        while time.perf_counter() - t0 < timeout:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 1 << 16)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
            if all(m in seen for m in MARKERS):
                painted = time.perf_counter()
                break
        if painted is None:
            raise RuntimeError(f"no first frame within {timeout} s; got {seen[-400:]!r}")
        time.sleep(0.3)  # let it settle (the session starts) before quitting
        q0 = time.perf_counter()
        os.write(fd, b"\x11")  # ctrl+q
        deadline = q0 + timeout
        while time.perf_counter() < deadline:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            ready, _, _ = select.select([fd], [], [], 0.01)
            if ready:
                try:
                    os.read(fd, 1 << 16)
                except OSError:
                    pass
        else:
            raise RuntimeError("ctrl+q did not quit")
        return (painted - t0) * 1000, (time.perf_counter() - q0) * 1000
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)


def spawn_to_exit(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - t0) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="wb-startup-"))
    try:
        folder = work / "hello-python"
        shutil.copytree(
            REPO / "examples" / "hello-python",
            folder,
            ignore=shutil.ignore_patterns(".workbench", "__pycache__"),
        )
        cases: dict[str, list[float]] = {
            "python -c pass": [],
            "python -c 'import textual.app'": [],
            "workbench DIR: first frame": [],
        }
        quits: list[float] = []
        first_frame(folder, work / "config")  # warm the disk cache and .pyc files; not counted
        for i in range(args.runs):
            cases["python -c pass"].append(spawn_to_exit([PY, "-c", "pass"]))
            cases["python -c 'import textual.app'"].append(
                spawn_to_exit([PY, "-c", "import textual.app"])
            )
            frame, quit_ms = first_frame(folder, work / f"config-{i}")
            cases["workbench DIR: first frame"].append(frame)
            quits.append(quit_ms)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    say(f"tui_startup: {args.runs} runs each, interleaved; load average {os.getloadavg()[0]:.2f}")
    base = statistics.median(cases["python -c pass"])
    textual_ms = statistics.median(cases["python -c 'import textual.app'"])
    say(f"{'case':<32} {'median':>8} {'min':>8} {'max':>8} {'/ pass':>7} {'/ textual':>9}")
    for name, values in cases.items():
        med = statistics.median(values)
        say(
            f"{name:<32} {med:>6.0f}ms {min(values):>6.0f}ms {max(values):>6.0f}ms "
            f"{med / base:>7.1f} {med / textual_ms:>9.2f}"
        )
    say(
        f"ctrl+q to exit (every function process stopped): median {statistics.median(quits):.0f} ms"
    )
    frame = statistics.median(cases["workbench DIR: first frame"])
    say(
        f"{'PASS' if frame < TARGET_MS else 'FAIL'}: first frame median {frame:.0f} ms "
        f"(target: well under {TARGET_MS:.0f} ms)"
    )


if __name__ == "__main__":
    main()
