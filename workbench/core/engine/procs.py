"""Child processes of an execution environment: spawn, read output, measure memory, kill all.

Output pipes are read with add_reader rather than asyncio streams so that the supervisor can
drain them synchronously at the moments that matter (before END, before a crash report): the
function wrote those bytes before it posted its answer, so they are in the pipe already.
"""

from __future__ import annotations

import asyncio
import fcntl
import math
import os
import signal
import sys
import termios
from collections.abc import Callable
from pathlib import Path

from workbench.core.vocab import Stream

LineSink = Callable[[str, Stream], None]  # (text, stream)
READ_CHUNK = 256 * 1024
# The longest line one log event holds, in bytes. Sources: CloudWatch Logs takes events of up
# to 1 MB since April 2025 (256 KB before): the PutLogEvents / InputLogEvent reference says
# "Each log event can be no larger than 1 MB", and AWS's What's New of 2025-04 announced the
# rise from 256 KB. What Lambda does with a longer line is not in its documentation; the
# published observations show it split into several events, not dropped or truncated, so a
# longer line here becomes several lines of at most MAX_LINE bytes each (cut on a character
# boundary, so each piece is valid UTF-8 when the line was). The Telemetry API has no per-line
# rule either: it batches records up to `maxBytes` (256 KB by default, 1 MB at most) and drops
# records with a platform.logsDropped event when a subscriber falls behind.
MAX_LINE = 1024 * 1024


def _piece_end(buf: bytearray, start: int) -> int:
    """Where the piece of an over-long line that begins at `start` ends: MAX_LINE bytes on,
    moved back to the start of a UTF-8 character when that falls inside one."""
    end = start + MAX_LINE
    for back in range(4):
        if end - back <= start:
            break
        if buf[end - back] & 0xC0 != 0x80:  # not a continuation byte: a character starts here
            return end - back
    return end  # not UTF-8 there: cut at the limit


class OutputPipe:
    """One pipe (stdout or stderr) of the function, split into lines of at most MAX_LINE
    bytes. What it holds between reads is at most one line's worth plus one read: a function
    that writes without ever ending a line is passed on in pieces as it writes."""

    def __init__(self, loop: asyncio.AbstractEventLoop, name: Stream, sink: LineSink) -> None:
        self.name = name
        self._loop = loop
        self._sink = sink
        self._buf = bytearray()
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        self._open = True
        loop.add_reader(self.read_fd, self._on_readable)

    def _on_readable(self) -> None:
        try:
            data = os.read(self.read_fd, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.close()
            return
        self._feed(data)

    def _emit(self, buf: bytearray, start: int, end: int) -> None:
        self._sink(buf[start:end].decode("utf-8", "replace"), self.name)

    def _feed(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        start, size = 0, len(buf)
        while start < size:
            newline = buf.find(b"\n", start)
            if newline < 0:
                # a line still open: pass on what is past the limit, keep the rest for later
                while size - start > MAX_LINE:
                    end = _piece_end(buf, start)
                    self._emit(buf, start, end)
                    start = end
                break
            while newline - start > MAX_LINE:
                end = _piece_end(buf, start)
                self._emit(buf, start, end)
                start = end
            self._emit(buf, start, newline)
            start = newline + 1
        del buf[:start]

    def drain(self, flush_partial: bool = False) -> None:
        """Read what is in the pipe now, without waiting for more, and no more than was there
        when asked: a function that keeps writing must not hold the event loop here."""
        budget = 0
        if self._open:
            try:
                queued = fcntl.ioctl(self.read_fd, termios.FIONREAD, b"\0\0\0\0")
                budget = int.from_bytes(queued, sys.byteorder)
            except OSError:
                pass
        while self._open:
            try:
                data = os.read(self.read_fd, READ_CHUNK)
            except BlockingIOError:
                break
            except OSError:
                break
            if not data:
                self.close()
                break
            self._feed(data)
            budget -= len(data)
            if budget <= 0:
                break
        if flush_partial and self._buf:
            self._emit(self._buf, 0, len(self._buf))
            self._buf.clear()

    def close_write_end(self) -> None:
        if self.write_fd >= 0:
            os.close(self.write_fd)
            self.write_fd = -1

    def close(self) -> None:
        if self._open:
            self._open = False
            self._loop.remove_reader(self.read_fd)
            os.close(self.read_fd)
        self.close_write_end()


def descendants(pid: int) -> list[int]:
    """pid and every process below it, from /proc/<pid>/task/<tid>/children."""
    seen = [pid]
    i = 0
    while i < len(seen):
        p = seen[i]
        i += 1
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{p}/task/{tid}/children") as fh:
                    seen.extend(int(c) for c in fh.read().split())
            except (OSError, ValueError):
                continue
    return seen


def _status_kb(pid: int, key: bytes) -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(key):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def hwm_kb(pid: int) -> int:
    return _status_kb(pid, b"VmHWM:")


class HwmReader:
    """The runtime's VmHWM, read once per invoke: /proc/<pid>/status kept open and re-read with
    pread (the kernel regenerates it at offset 0), one syscall instead of open+read+close."""

    def __init__(self, pid: int) -> None:
        self._fd: int | None
        try:
            self._fd = os.open(f"/proc/{pid}/status", os.O_RDONLY)
        except OSError:
            self._fd = None

    def read_kb(self) -> int:
        if self._fd is None:
            return 0
        try:
            data = os.pread(self._fd, 8192, 0)
        except OSError:
            return 0
        at = data.find(b"VmHWM:")
        if at < 0:  # a zombie has no memory lines
            return 0
        end = data.find(b"\n", at)
        try:
            return int(data[at + 6 : end].split()[0])
        except (ValueError, IndexError):
            return 0

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def tree_hwm_kb(pid: int) -> tuple[int, int]:
    """Peak resident memory (VmHWM) of `pid`, and of its descendants added up. Real memory of
    the real processes, never the configured size."""
    tree = descendants(pid)
    return hwm_kb(pid), sum(hwm_kb(p) for p in tree[1:])


def to_mb(kb: int) -> int:
    return math.ceil(kb / 1024)


def _session_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
        # the command name may hold spaces and parentheses: split after the last ')'
        fields = stat[stat.rindex(b")") + 2 :].split()
        return int(fields[3])
    except (OSError, ValueError, IndexError):
        return None


def _has_marker(pid: int, marker: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            return marker in fh.read().split(b"\0")
    except OSError:
        return False


def stragglers(session: int, marker: bytes) -> list[int]:
    """Processes that belong to an environment although they left its process group: same
    session, or (a daemon that called setsid) still carrying the environment's Runtime API
    address, which is unique to it while it lives."""
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        if pid == me:
            continue
        if _session_of(pid) == session or _has_marker(pid, marker):
            found.append(pid)
    return found


def kill_all(pid: int, marker: bytes) -> list[int]:
    """SIGKILL the environment's process group, then anything of it that escaped the group.
    Returns the processes it signalled (every group member is in the session, so is among them):
    SIGKILL is not instant, see wait_gone."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    found = stragglers(pid, marker)
    for p in found:
        try:
            os.kill(p, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return found


def is_gone(pid: int) -> bool:
    """No such process, or only its zombie (dead, waiting to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
        return stat[stat.rindex(b")") + 2 :][:1] in (b"Z", b"X")
    except (OSError, ValueError):
        return True


async def wait_gone(pids: list[int], timeout: float) -> list[int]:
    """Wait until every process in `pids` has died; a SIGKILLed process keeps running (and
    shows in /proc with its environment) for a moment after kill() returns. Returns those
    still alive at the timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    left = [p for p in pids if not is_gone(p)]
    while left and loop.time() < deadline:
        await asyncio.sleep(0.002)
        left = [p for p in left if not is_gone(p)]
    return left


def die_with_parent() -> None:
    """Runs in the child between fork and exec: ask the kernel to SIGKILL the runtime if the
    workbench dies, even by kill -9, so no environment outlives it."""
    import ctypes

    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)


def devnull() -> int:
    return os.open(os.devnull, os.O_RDONLY)


def is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)
