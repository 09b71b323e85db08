"""Run a command on a busy machine: N processes spin on the CPU while it runs.

    python -m tests.loadgen [--procs 8] [--max-seconds 1800] -- python -m pytest -q -n 2

The suite must pass like this (a load of 8 on 2 cores). The spinners are ordinary processes at
normal priority, each of which stops by itself after --max-seconds even if this script is
killed; they are also ended as soon as the command exits. The exit status is the command's.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import threading
import time


def spin(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        for _ in range(10_000):
            n += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--procs", type=int, default=8, help="spinning processes (default 8)")
    parser.add_argument(
        "--max-seconds", type=float, default=1800, help="the most any spinner lives (1800)"
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    ctx = multiprocessing.get_context("spawn")
    spinners = [ctx.Process(target=spin, args=(args.max_seconds,)) for _ in range(args.procs)]
    for p in spinners:
        p.start()
    started = time.monotonic()
    samples: list[float] = []  # the 1-minute load average, every 5 s
    done = threading.Event()

    def sample() -> None:
        while not done.wait(5):
            samples.append(os.getloadavg()[0])

    threading.Thread(target=sample, daemon=True).start()
    try:
        status = subprocess.call(command)
    finally:
        done.set()
        for p in spinners:
            p.terminate()
        for p in spinners:
            p.join(5)
        past_first_minute = samples[12:] or samples or [0.0]
        print(
            f"loadgen: {args.procs} spinners for {time.monotonic() - started:.0f} s; "
            f"1-minute load average after the first minute: min {min(past_first_minute):.1f}, "
            f"mean {sum(past_first_minute) / len(past_first_minute):.1f}, "
            f"max {max(past_first_minute):.1f}",
            file=sys.stderr,
        )
    return status


if __name__ == "__main__":
    sys.exit(main())
