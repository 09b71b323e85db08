"""Nothing a function starts outlives its execution environment.

A process can leave its parent's process group and session (`setsid`), empty its environment
(`env -i`) and be orphaned by a double fork: then neither the group, nor the session, nor the
marker variable finds it, and once the workbench itself is gone (even by `kill -9`) nobody
looks for it at all. Two things close those doors:

- **A cgroup per environment** (the v1 `pids` hierarchy, or v2's unified one): the runtime
  joins it between fork and exec, and every process it ever starts is born into it, whatever
  it does to its session, environment or parent. Killing the environment kills what the
  cgroup lists until it lists nothing.
- **A janitor per workbench process**: a small child started with the first environment,
  told by the kernel (PR_SET_PDEATHSIG) when the workbench dies, however it dies; it then
  empties and removes every cgroup the workbench made. While the workbench lives it sleeps.

Where no cgroup can be made (a read-only /sys/fs/cgroup, no privileges), `available` is False
and the engine falls back to the process group, the session and the marker variable
(procs.kill_all), which catch everything short of `setsid` with an emptied environment.

Chosen over a subreaper supervisor per environment because it costs nothing per invoke or per
cold start (one mkdir; no extra process between workbench and the runtime, whose exit status
and memory stay the runtime's own), and over pidfds because those only follow known pids.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

CGROUP_FS = Path("/sys/fs/cgroup")
KILL_ROUNDS = 200  # rounds of SIGKILL over a cgroup's members: a fork bomb gets this many tries

# The janitor: stdlib only, no site (it starts fast and imports nothing of the workbench's).
# argv: the workbench's pid, the folder of its cgroups.
JANITOR = r"""
import ctypes, os, signal, sys, time
parent, root = int(sys.argv[1]), sys.argv[2]
def sweep(*_):
    for _ in range(200):
        busy = False
        for name in os.listdir(root) if os.path.isdir(root) else ():
            group = os.path.join(root, name)
            try:
                pids = [int(p) for p in open(os.path.join(group, "cgroup.procs")).read().split()]
            except OSError:
                continue
            for pid in pids:
                busy = True
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            if not pids:
                try:
                    os.rmdir(group)
                except OSError:
                    busy = True
        if not busy:
            break
        time.sleep(0.01)
    try:
        os.rmdir(root)
    except OSError:
        pass
    os._exit(0)
def parent_gone(*_):
    # PR_SET_PDEATHSIG also fires when the thread that started us ends: then the workbench is
    # still there, and it is watched by polling from now on
    while os.getppid() == parent:
        time.sleep(0.5)
    sweep()
signal.signal(signal.SIGUSR1, sweep)  # the workbench ends on its own: sweep now
signal.signal(signal.SIGTERM, parent_gone)
ctypes.CDLL(None).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
if os.getppid() != parent:  # the workbench died before the line above
    sweep()
while True:
    signal.pause()
"""


def _own_cgroup_dir() -> Path | None:
    """Where this process's cgroups may go: under its own pids cgroup (v1) or its unified
    cgroup (v2), when the kernel lets it make one there."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "pids" in controllers.split(","):
            return CGROUP_FS / "pids" / path.lstrip("/")
    for line in lines:
        if line.startswith("0::"):
            return CGROUP_FS / line[3:].lstrip("/")
    return None


class Containment:
    """The workbench process's cgroups, one per environment, and the janitor that removes
    them if the workbench dies first."""

    def __init__(self) -> None:
        self.root: Path | None = None
        self._janitor: subprocess.Popen[bytes] | None = None
        self._tried = False

    @property
    def available(self) -> bool:
        self._setup()
        return self.root is not None

    def _setup(self) -> None:
        if self._tried:
            return
        self._tried = True
        base = _own_cgroup_dir()
        if base is None:
            return
        root = base / f"workbench-{os.getpid()}"
        try:
            root.mkdir(exist_ok=True)
            (root / "probe").mkdir(exist_ok=True)
            (root / "probe").rmdir()
        except OSError:
            return
        try:
            self._janitor = subprocess.Popen(
                [sys.executable, "-S", "-E", "-c", JANITOR, str(os.getpid()), str(root)],
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a ctrl+c in the terminal is not its to handle
            )
        except OSError:
            _remove(root)
            return
        self.root = root

    def new_group(self, name: str) -> Path | None:
        """A fresh cgroup for one environment, or None where there are none to be had."""
        self._setup()
        if self.root is None:
            return None
        group = self.root / name
        try:
            group.mkdir()
        except FileExistsError:
            kill_group(group)
        except OSError:
            return None
        return group

    def close(self) -> None:
        """The workbench is ending on its own: the janitor sweeps (nothing, by now) and goes."""
        if self._janitor is not None and self._janitor.poll() is None:
            self._janitor.send_signal(signal.SIGUSR1)
            try:
                self._janitor.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._janitor.kill()


def join(group: Path) -> None:
    """Runs in the child between fork and exec: from here on, it and all it starts are in
    `group`. A failure is ignored: the old ways of finding the tree still apply."""
    try:
        with open(group / "cgroup.procs", "w") as fh:
            fh.write(str(os.getpid()))
    except OSError:
        pass


def members(group: Path) -> list[int]:
    try:
        return [int(p) for p in (group / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


def kill_group(group: Path) -> list[int]:
    """SIGKILL everything in the cgroup until it is empty (a process forking meanwhile is
    killed in a later round); returns every pid it signalled."""
    signalled: list[int] = []
    for _ in range(KILL_ROUNDS):
        pids = members(group)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        signalled += pids
        time.sleep(0.001)
    return signalled


def remove_group(group: Path) -> None:
    """Remove an emptied cgroup (its last members may take a moment to be reaped)."""
    for _ in range(100):
        try:
            group.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            kill_group(group)
            time.sleep(0.005)


def _remove(root: Path) -> None:
    try:
        root.rmdir()
    except OSError:
        pass


_shared: Containment | None = None


def shared() -> Containment:
    """The one Containment of this workbench process."""
    global _shared
    if _shared is None:
        _shared = Containment()
    return _shared
