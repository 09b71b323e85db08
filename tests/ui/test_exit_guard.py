"""The exit guard ends a process whose teardown hangs (a TUI whose terminal is gone), and does
nothing once cancelled (the TUI ended by itself)."""

from __future__ import annotations

import subprocess
import sys

HANG = """
import time
from workbench.ui.exit_guard import ExitGuard
guard = ExitGuard(grace_s=0.2)
guard.arm(3)
{after}
time.sleep(60)  # a teardown that never returns
"""


def test_an_armed_guard_ends_a_hung_process_with_its_code() -> None:
    done = subprocess.run([sys.executable, "-c", HANG.format(after="")], timeout=50)
    assert done.returncode == 3


def test_a_cancelled_guard_lets_the_process_run_on() -> None:
    code = HANG.format(after="guard.cancel(); time.sleep(1); raise SystemExit(7)")
    done = subprocess.run([sys.executable, "-c", code], timeout=50)
    assert done.returncode == 7
