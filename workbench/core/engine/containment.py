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
from dataclasses import dataclass
from pathlib import Path

CGROUP_FS = Path("/sys/fs/cgroup")
KILL_ROUNDS = 200  # rounds of SIGKILL over a cgroup's members: a fork bomb gets this many tries

# The janitor: stdlib only, no site (it starts fast and imports nothing of the workbench's).
# argv: the workbench's pid, then the folders of its cgroups (one per hierarchy).
JANITOR = r"""
import ctypes, os, signal, sys, time
parent, roots = int(sys.argv[1]), sys.argv[2:]
def sweep(*_):
    for root in roots:
        empty(root)
    os._exit(0)
def empty(root):
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


def _own_cgroup_dir(controller: str) -> Path | None:
    """Where this process's cgroups of a v1 `controller` may go: under its own cgroup there."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return CGROUP_FS / controller / path.lstrip("/")
    return None


def _made(base: Path | None) -> Path | None:
    """This workbench's folder under `base`, if the kernel lets it make cgroups there."""
    if base is None:
        return None
    root = base / f"workbench-{os.getpid()}"
    try:
        root.mkdir(exist_ok=True)
        (root / "probe").mkdir(exist_ok=True)
        (root / "probe").rmdir()
    except OSError:
        return None
    return root


@dataclass(frozen=True, slots=True)
class Group:
    """One environment's cgroups: `pids` holds its whole tree; `memory`, when there is one,
    holds it to its memory size."""

    pids: Path
    memory: Path | None = None

    @property
    def paths(self) -> tuple[Path, ...]:
        return (self.pids,) if self.memory is None else (self.pids, self.memory)

    def oom_killed(self) -> bool:
        """The kernel killed something in it for crossing the memory limit."""
        if self.memory is None:
            return False
        try:
            text = (self.memory / "memory.oom_control").read_bytes()
        except OSError:
            return False
        return _oom_seen(text)


class OomWatch:
    """Group.oom_killed for every invoke (Max Memory Used asks it each time): the group's
    memory.oom_control kept open and re-read with pread, which the kernel regenerates at
    offset 0, one syscall instead of a path walk, open, read and close."""

    def __init__(self, group: Group) -> None:
        self._fd: int | None = None
        if group.memory is not None:
            try:
                self._fd = os.open(group.memory / "memory.oom_control", os.O_RDONLY)
            except OSError:
                self._fd = None

    def killed(self) -> bool:
        if self._fd is None:
            return False
        try:
            return _oom_seen(os.pread(self._fd, 4096, 0))
        except OSError:
            return False

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _oom_seen(text: bytes) -> bool:
    """memory.oom_control says a process was killed, or the group is stuck at its limit."""
    counts = dict(fields for fields in map(bytes.split, text.splitlines()) if len(fields) == 2)
    return int(counts.get(b"oom_kill", b"0")) > 0 or int(counts.get(b"under_oom", b"0")) > 0


class Containment:
    """The workbench process's cgroups, one per environment, and the janitor that removes
    them if the workbench dies first."""

    def __init__(self) -> None:
        self.root: Path | None = None
        self.memory_root: Path | None = None
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
        root = _made(_own_cgroup_dir("pids"))
        if root is None:
            return
        memory = _made(_own_cgroup_dir("memory"))
        roots = [str(root)] + ([str(memory)] if memory is not None else [])
        try:
            self._janitor = subprocess.Popen(
                [sys.executable, "-S", "-E", "-c", JANITOR, str(os.getpid()), *roots],
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a ctrl+c in the terminal is not its to handle
            )
        except OSError:
            for made in (root, memory):
                if made is not None:
                    _remove(made)
            return
        self.root, self.memory_root = root, memory

    @property
    def limits_memory(self) -> bool:
        self._setup()
        return self.memory_root is not None

    def new_group(self, name: str, memory_mb: int | None = None) -> Group | None:
        """Fresh cgroups for one environment, held to `memory_mb` when given and the machine
        allows it; None where there are no cgroups to be had."""
        self._setup()
        if self.root is None:
            return None
        pids = _fresh(self.root / name)
        if pids is None:
            return None
        memory = None
        if memory_mb is not None and self.memory_root is not None:
            memory = _fresh(self.memory_root / name)
            if memory is not None and not _limit(memory, memory_mb):
                remove_group(memory)
                memory = None
        return Group(pids, memory)

    def close(self) -> None:
        """The workbench is ending on its own: the janitor sweeps (nothing, by now) and goes."""
        if self._janitor is not None and self._janitor.poll() is None:
            self._janitor.send_signal(signal.SIGUSR1)
            try:
                self._janitor.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._janitor.kill()


def _fresh(path: Path) -> Path | None:
    try:
        path.mkdir()
    except FileExistsError:  # a leftover of an environment with the same id: empty it
        kill_group(path)
    except OSError:
        return None
    return path


def _limit(memory: Path, mb: int) -> bool:
    """Hold the cgroup to `mb` of memory, swap included where the kernel accounts it."""
    limit = str(mb * 1024 * 1024)
    try:
        (memory / "memory.limit_in_bytes").write_text(limit)
    except OSError:
        return False
    try:
        (memory / "memory.memsw.limit_in_bytes").write_text(limit)
    except OSError:
        pass  # no swap accounting: memory alone is limited
    return True


def join(group: Group) -> None:
    """Runs in the child between fork and exec: from here on, it and all it starts are in
    the group's cgroups. A failure is ignored: the old ways of finding the tree still apply."""
    pid = str(os.getpid())
    for path in group.paths:
        try:
            with open(path / "cgroup.procs", "w") as fh:
                fh.write(pid)
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
