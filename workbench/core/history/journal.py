"""History's write-ahead journal: an invocation's answer is on disk before anyone has it.

The recorder's writer thread commits records to SQLite in batches, a few milliseconds after
each invocation ends; the caller is answered earlier, when the runtime posts /response. A kill
-9 in between used to lose records whose answers the caller already had. Now the answer is
first written here, on the event loop, in one `os.pwritev`: once that returns, the bytes are
in the kernel's page cache, and a kill of the process cannot take them back. No fsync: a power
cut or a kernel crash may still lose the last moments, the same trade as the store's
`synchronous=NORMAL`. The record that completes an answer is written when the invocation
ends, before the recorder hands it to the writer thread.

Files. Each process journals into files of its own, next to the database:
`.workbench/history-<pid>-<token>.<n>.journal`. It holds an flock on each for as long as it
lives, which is how another workbench tells a journal in use from one left by a dead process
(the kernel drops the lock with the process, kill -9 included). Entries go one after the other
into the current file; once every entry in a file belongs to an invocation whose record is
committed, the file is rewound: its first entry is made void (4 bytes zeroed, so a replay
finds nothing in it) and the next entries overwrite it from the start. Rewinding instead of
truncating keeps the file's pages in the page cache, and writing into pages that exist costs
a fifth of writing into new ones (a 1 MiB entry: ~45 us against ~250 us). A file that fills
past FILE_BYTES while some of its entries are still needed is left until they are committed,
and the next entries go to a file that is free (or a new one), so the journal holds only the
last moments' worth, however long the process runs.

A file that still holds entries in use when others in it are committed gets a short entry
naming those (written by the writer thread), so that a replay skips them: the database may have
pruned them since.

A rewound file still holds older entries after the new ones. Every entry carries the file's
random token and a sequence number that only grows, at its head and again after its last
byte: an entry counts only if both are there and its number is greater than the one before it.
That also ends the file at an entry torn by a kill mid-write (the kernel copies a write in
order, so a torn entry lacks its trailer), without a checksum over its payloads.

Replay. When a HistoryStore opens, it takes every journal no live process holds, reads its
entries, merges them by request id (a finished record wins over the answer it completes),
stores those the database does not have yet, and deletes the files. An invocation that was
answered (or accepted) but never finished is stored with the status "unfinished", what was
known, and a log line that says so.

Entry: a fixed head (magic, kind, token, sequence, the lengths of what follows, a CRC32 of
the head and the header), the header (a marshal'd tuple: a fraction of json's cost), the raw
event, response and log bytes, and a trailer (the sequence again, and the magic).
"""

from __future__ import annotations

import fcntl
import logging
import marshal
import os
import secrets
import struct
import threading
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from workbench.core.bus import InvocationAnswered
from workbench.core.record import InvocationRecord, InvokeRequest, InvokeResult
from workbench.core.vocab import InvocationType, Source, Status

log = logging.getLogger(__name__)

FILE_BYTES = 8 * 1024 * 1024  # entries go to another file once this one is this full
IDLE_FILES_KEPT = 2  # files with nothing left in them kept for reuse; more are deleted
PATTERN = "history-*.journal"
MAGIC = b"WBJ1"
MARSHAL_VERSION = 4
# magic, kind, file token, sequence, then the header, event, response and log lengths
_PRE = struct.Struct("<4sc3x8sQIIII")
_CRC = struct.Struct("<I")
_TRAILER = struct.Struct("<Q4s")
HEAD_SIZE = _PRE.size + _CRC.size
ACCEPTED, ANSWERED, FINISHED, COMMITTED = b"Q", b"A", b"F", b"C"
# for benchmarks only: "off" journals nothing, and gives up the guarantee
ENV_SWITCH = "WORKBENCH_JOURNAL"

UNFINISHED_ANSWERED = (
    "workbench stopped before this invocation finished. Its answer had been sent and is kept "
    "from history's journal; END, REPORT, the duration, billing and memory were never measured."
)
UNFINISHED_ACCEPTED = (
    "workbench stopped before this invocation was answered. It had been accepted (an Event "
    "invoke, answered 202) and is kept from history's journal; what it did is not known."
)

# The header: (request id, function, started at, event name, code version, REQUEST, RESULT,
# ANSWER, FINISH), each of the last four a tuple or None:
#   REQUEST (with the event bytes): source, invocation type, client context, trace id,
#           tenant id, event content type
#   RESULT  (with the response bytes): content type, function error
#   ANSWER  what was known when it was answered: cold, init ms, memory size
#   FINISH  (with the log bytes): status, cold, duration ms, billed ms, init ms, memory size,
#           max memory used, log truncated
Header = tuple[Any, ...]


def enabled() -> bool:
    return os.environ.get(ENV_SWITCH, "on").lower() not in ("off", "0", "no")


def _request(req: InvokeRequest) -> tuple[Any, ...]:
    return (
        req.source,
        req.invocation_type,
        req.client_context,
        req.trace_id,
        req.tenant_id,
        req.content_type,
    )


def encode(
    kind: bytes, token: bytes, seq: int, header: Header, *blobs: bytes
) -> tuple[list[bytes], int]:
    """One entry, as the buffers of one pwritev and their total size: head and header, then
    each blob as it is (a 1 MiB event is never copied in user space), then the trailer."""
    doc = marshal.dumps(header, MARSHAL_VERSION)
    event, response, log_bytes = blobs
    pre = _PRE.pack(MAGIC, kind, token, seq, len(doc), len(event), len(response), len(log_bytes))
    head = pre + _CRC.pack(zlib.crc32(doc, zlib.crc32(pre))) + doc
    trailer = _TRAILER.pack(seq, MAGIC)
    size = len(head) + len(event) + len(response) + len(log_bytes) + len(trailer)
    return [head, *(b for b in blobs if b), trailer], size


@dataclass(slots=True, eq=False)
class _File:
    fd: int
    path: Path
    token: bytes
    size: int = 0  # where the next entry goes
    live: int = 0  # entries whose invocation's record is not committed yet


@dataclass(slots=True)
class _Open:
    """An invocation with entries in the journal whose record is not committed yet."""

    files: list[_File] = field(default_factory=list)
    has_event: bool = False
    has_response: bool = False


class Journal:
    """This process's journal for one history folder. Thread-safe: the event loop writes,
    the recorder's writer thread says what it committed, and both go under one lock, so a
    file is never rewound or deleted while an entry it would lose is being written."""

    def __init__(self, folder: Path) -> None:
        self.dir = Path(folder)  # the store's folder (.workbench/)
        self.enabled = enabled()
        self._lock = threading.Lock()
        self._prefix = f"history-{os.getpid()}-{secrets.token_hex(3)}"
        self._made = 0
        self._seq = 0
        self._current: _File | None = None
        self._files: list[_File] = []
        # Only the event loop adds to it, and an invocation's entries are all written before
        # its record can be committed, so the loop may read its own invocations' state
        # without the lock; the writer thread removes them (with it) once committed.
        self._open: dict[str, _Open] = {}
        self._closed = False

    # ---- writing (the event loop) ----

    def accepted(
        self, function: str, rid: str, req: InvokeRequest, at: float, memory_mb: int | None
    ) -> None:
        """An Event invoke was accepted; its 202 goes out once this returns."""
        header = (
            rid,
            function,
            at,
            None,
            None,
            _request(req),
            None,
            (False, None, memory_mb),
            None,
        )
        self._write(rid, ACCEPTED, header, req.payload, b"", b"", event=True)

    def answered(self, ev: InvocationAnswered, name: str | None, version: str | None) -> None:
        """The caller's answer; it goes out once this returns."""
        if not self.enabled:
            return
        rid = ev.request_id
        known = self._open.get(rid)
        with_event = known is None or not known.has_event
        res = ev.result
        header = (
            rid,
            ev.function,
            ev.started_at,
            name,
            version,
            _request(ev.request) if with_event else None,
            (res.content_type, res.function_error),
            (ev.cold, ev.init_ms, ev.memory_mb),
            None,
        )
        event = ev.request.payload if with_event else b""
        self._write(rid, ANSWERED, header, event, res.payload, b"", event=with_event, response=True)

    def finished(self, rec: InvocationRecord, name: str | None, version: str | None) -> None:
        """The whole record; with the event and the response only when no earlier entry of
        this invocation carries them."""
        if not self.enabled:
            return
        rid = rec.request_id
        known = self._open.get(rid)
        with_event = known is None or not known.has_event
        with_response = known is None or not known.has_response
        res = rec.result
        header = (
            rid,
            rec.function,
            rec.started_at,
            name,
            version,
            _request(rec.request) if with_event else None,
            (res.content_type, res.function_error) if with_response else None,
            None,
            (
                rec.status,
                rec.cold,
                rec.duration_ms,
                rec.billed_ms,
                rec.init_ms,
                rec.memory_mb,
                rec.max_memory_mb,
                rec.log_truncated,
            ),
        )
        self._write(
            rid,
            FINISHED,
            header,
            rec.request.payload if with_event else b"",
            res.payload if with_response else b"",
            rec.log_text().encode("utf-8", "surrogateescape"),
            event=with_event,
            response=with_response,
        )

    def _write(
        self,
        rid: str,
        kind: bytes,
        header: Header,
        event_bytes: bytes,
        response_bytes: bytes,
        log_bytes: bytes,
        *,
        event: bool = False,
        response: bool = False,
    ) -> None:
        if not self.enabled:
            return
        with self._lock:
            if self._closed:
                return
            self._seq += 1
            f = self._file()
            buffers, want = encode(
                kind, f.token, self._seq, header, event_bytes, response_bytes, log_bytes
            )
            written = os.pwritev(f.fd, buffers, f.size)
            if written != want:  # a full disk: a torn entry, which replay stops at
                raise OSError(f"history journal {f.path}: short write ({written} of {want})")
            f.size += written
            f.live += 1
            known = self._open.get(rid)
            if known is None:
                known = self._open[rid] = _Open()
            known.files.append(f)
            known.has_event |= event
            known.has_response |= response

    def _file(self) -> _File:  # the caller holds the lock
        f = self._current
        if f is not None and (f.size < FILE_BYTES or f.live == 0):
            return f  # (one with nothing live in it was rewound when it emptied)
        # full, with entries still needed: a file that emptied meanwhile, or a new one
        for other in self._files:
            if other.live == 0 and other is not f:
                self._current = other
                return other
        self._made += 1
        final = self.dir / f"{self._prefix}.{self._made}.journal"
        # Made under a name replay does not look at, locked, then renamed into view: a
        # workbench replaying journals never sees one that is new and not locked yet.
        making = final.with_name(final.name + ".new")
        fd = os.open(making, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(making, final)
        except OSError:
            os.close(fd)
            raise
        self._current = _File(fd, final, secrets.token_bytes(8))
        self._files.append(self._current)
        return self._current

    # ---- forgetting (the writer thread) ----

    def committed(self, rids: Iterable[str]) -> None:
        """These invocations' records are committed in the database: their entries are no
        longer needed, and a file left with none is rewound (or, beyond the few kept for
        reuse, deleted)."""
        if not self.enabled:
            return
        with self._lock:
            stays: dict[_File, list[str]] = {}
            for rid in rids:
                known = self._open.pop(rid, None)
                if known is None:
                    continue
                for f in known.files:
                    f.live -= 1
                    stays.setdefault(f, []).append(rid)
            for f, done in stays.items():
                if f.live == 0:
                    self._emptied(f)
                elif f in self._files:
                    self._void(f, done)

    def _void(self, f: _File, rids: list[str]) -> None:  # the caller holds the lock
        """A file that still holds entries in use also holds these committed ones; say so in
        it, so that a replay does not store them again (they may be pruned from the database
        by then). Only invocations that overlapped others need it: a file whose every entry is
        committed is rewound instead."""
        self._seq += 1
        buffers, want = encode(COMMITTED, f.token, self._seq, tuple(rids), b"", b"", b"")
        try:
            if os.pwritev(f.fd, buffers, f.size) == want:
                f.size += want
        except OSError as exc:
            log.debug("history journal %s: %s", f.path, exc)

    def _emptied(self, f: _File) -> None:  # the caller holds the lock
        if f is not self._current:
            idle = sum(1 for other in self._files if other.live == 0)
            if idle > IDLE_FILES_KEPT:
                self._files.remove(f)
                try:
                    os.unlink(f.path)
                except OSError as exc:  # left behind, it is replayed (idempotently) some day
                    log.debug("history journal %s: %s", f.path, exc)
                os.close(f.fd)
                return
        self._rewind(f)

    def _rewind(self, f: _File) -> None:
        """Make the file read as empty, and the next entry go at its start. Its first magic is
        zeroed: replay stops there, and never stores again what is committed already (and
        may since have been pruned away)."""
        f.size = 0
        try:
            os.pwrite(f.fd, b"\0" * len(MAGIC), 0)
        except OSError:
            try:
                os.ftruncate(f.fd, 0)
            except OSError as exc:
                log.debug("history journal %s: %s", f.path, exc)

    @property
    def open_invocations(self) -> int:
        """Invocations journaled whose records are not committed yet."""
        with self._lock:
            return len(self._open)

    def files(self) -> list[Path]:
        """This journal's files (for tests and diagnostics)."""
        with self._lock:
            return [f.path for f in self._files]

    def close(self) -> None:
        """Delete the files whose every entry is committed; leave the others (invocations
        answered and never finished) for the next open of the store to replay."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for f in self._files:
                try:
                    if f.live == 0:
                        os.unlink(f.path)
                except OSError as exc:
                    log.debug("history journal %s: %s", f.path, exc)
                finally:
                    os.close(f.fd)  # the lock goes with it
            self._files, self._current = [], None


# ---- replay ----


@dataclass(slots=True)
class Entry:
    kind: bytes
    token: bytes  # the file's
    seq: int
    header: Header
    event: bytes
    response: bytes
    log: bytes


def parse(data: bytes) -> Iterator[Entry]:
    """The entries of one journal file, in order, up to the first that is not whole (torn by
    a kill mid-write), damaged, or older than the one before it (what a rewound file still
    holds after its newest entries)."""
    view = memoryview(data)
    at, end = 0, len(data)
    token: bytes | None = None
    last = 0
    while at + HEAD_SIZE <= end:
        magic, kind, tok, seq, h_len, e_len, r_len, l_len = _PRE.unpack_from(data, at)
        (crc,) = _CRC.unpack_from(data, at + _PRE.size)
        if magic != MAGIC or seq <= last or (token is not None and tok != token):
            return
        start = at + HEAD_SIZE
        stop = start + h_len + e_len + r_len + l_len + _TRAILER.size
        if stop > end:
            return
        doc = view[start : start + h_len]
        if zlib.crc32(doc, zlib.crc32(view[at : at + _PRE.size])) != crc:
            return
        if _TRAILER.unpack_from(data, stop - _TRAILER.size) != (seq, MAGIC):
            return  # torn: the kernel copies a write in order, and the trailer comes last
        try:
            header = marshal.loads(doc)
        except (ValueError, EOFError, TypeError):
            return
        if not isinstance(header, tuple) or not all(
            isinstance(h, str) for h in (header if kind == COMMITTED else header[:1])
        ):
            return
        pos = start + h_len
        event = bytes(view[pos : pos + e_len])
        pos += e_len
        response = bytes(view[pos : pos + r_len])
        pos += r_len
        yield Entry(kind, tok, seq, header, event, response, bytes(view[pos : pos + l_len]))
        token, last, at = tok, seq, stop


Replayed = tuple[InvocationRecord, str | None, str | None]  # record, event name, code version


@dataclass(slots=True)
class _Merged:
    function: str
    started_at: float
    name: str | None = None
    version: str | None = None
    request: tuple[Any, ...] | None = None
    event: bytes = b""
    result: tuple[Any, ...] | None = None
    response: bytes = b""
    answer: tuple[Any, ...] | None = None
    finish: tuple[Any, ...] | None = None
    log: bytes = b""


def merge(entries: Iterable[Entry]) -> list[Replayed]:
    """One record per request id, from every entry about it, oldest first."""
    by_id: dict[str, _Merged] = {}
    voided: set[str] = set()
    for entry in entries:
        if entry.kind == COMMITTED:
            voided.update(entry.header)
            continue
        if len(entry.header) != 9:
            continue
        rid, fn, at, name, version, request, result, answer, finish = entry.header
        m = by_id.get(rid)
        if m is None:
            m = by_id[rid] = _Merged(str(fn), float(at))
        m.name = name if name is not None else m.name
        m.version = version if version is not None else m.version
        if request is not None:
            m.request, m.event = request, entry.event
        if result is not None:
            m.result, m.response = result, entry.response
        if answer is not None:
            m.answer = answer
        if finish is not None:
            m.finish, m.log = finish, entry.log
    out = []
    for rid, m in by_id.items():
        if rid in voided:
            continue
        try:
            out.append(_record(rid, m))
        except (TypeError, ValueError) as exc:  # a header this code cannot read
            log.warning("history journal: entry %s skipped: %s", rid, exc)
    out.sort(key=lambda item: item[0].started_at)
    return out


def _record(rid: str, m: _Merged) -> Replayed:
    src, itype, context, trace, tenant, ctype = m.request or (
        "cli",
        "RequestResponse",
        None,
        None,
        None,
        "application/json",
    )
    request = InvokeRequest(
        m.event,
        invocation_type=cast(InvocationType, itype),
        client_context=context,
        trace_id=trace,
        tenant_id=tenant,
        content_type=ctype,
        source=cast(Source, src),
    )
    if m.result is not None:
        result = InvokeResult(rid, m.response, m.result[0], bool(m.result[1]))
    else:
        result = InvokeResult(rid, b"")
    init_ms: float | None
    if m.finish is not None:
        status_, cold, duration_ms, billed_ms, init_ms, memory_mb, max_mb, truncated = m.finish
        status = cast(Status, status_)
        lines = m.log.decode("utf-8", "surrogateescape").split("\n")[:-1]
    else:  # answered (or accepted), and then workbench was gone: what was known by then
        status, duration_ms, billed_ms, max_mb, truncated = "unfinished", 0.0, 0, 0, False
        cold, init_ms, memory_mb = m.answer or (False, None, 0)
        lines = [UNFINISHED_ANSWERED if m.result is not None else UNFINISHED_ACCEPTED]
    rec = InvocationRecord(
        function=m.function,
        request_id=rid,
        request=request,
        result=result,
        status=status,
        cold=bool(cold),
        started_at=m.started_at,
        duration_ms=float(duration_ms),
        billed_ms=int(billed_ms),
        init_ms=None if init_ms is None else float(init_ms),
        memory_mb=int(memory_mb or 0),
        max_memory_mb=int(max_mb),
        log_lines=lines,
        log_truncated=bool(truncated),
        event_name=m.name,
    )
    return rec, m.name, m.version


@dataclass(slots=True)
class Abandoned:
    """Journals left by processes that are gone, locked by this one while it replays them."""

    records: list[Replayed]
    held: list[tuple[int, Path]]

    def done(self) -> None:
        """Their records are stored: delete the files (and let go of them)."""
        for fd, path in self.held:
            try:
                os.unlink(path)
            except OSError as exc:
                log.debug("history journal %s: %s", path, exc)
            finally:
                os.close(fd)
        self.held = []

    def release(self) -> None:
        """They could not be stored: leave them for another time."""
        for fd, _path in self.held:
            os.close(fd)
        self.held = []


def abandoned(folder: Path) -> Abandoned:
    """The journals in `folder` whose processes are gone, read and merged."""
    held: list[tuple[int, Path]] = []
    entries: list[Entry] = []
    try:
        paths = sorted(Path(folder).glob(PATTERN), key=_order)
    except OSError:
        paths = []
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue  # replayed and deleted by another workbench meanwhile
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # another workbench may have replayed and deleted it between glob and lock
            if not os.path.samestat(os.fstat(fd), os.stat(path)):
                raise FileNotFoundError(path)
            with os.fdopen(os.dup(fd), "rb") as fh:
                data = fh.read()
        except OSError:  # locked: its process lives; or gone
            os.close(fd)
            continue
        held.append((fd, path))
        entries.extend(parse(data))
    return Abandoned(merge(entries), held)


def _order(path: Path) -> tuple[str, int]:
    """A process's files in the order it wrote them."""
    stem, _, seq = path.name.removesuffix(".journal").rpartition(".")
    return (stem, int(seq) if seq.isdigit() else 0)
