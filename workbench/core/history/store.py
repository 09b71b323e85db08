"""Invocation history: every finished invocation, kept in the function folder's `.workbench/`.

One SQLite database per code folder, `.workbench/history.sqlite3`, shared by every function
whose code lives there (a template may point several functions at one folder).

Durability. The database runs in WAL mode with `synchronous=NORMAL`. The engine's records
reach it through `recorder.Recorder`, whose writer thread commits each within 5 ms of the
invocation's end (20 ms under a sustained load, batched with its neighbours); a command that
exits waits for it first. At COMMIT, SQLite has `write()`n the transaction into the WAL file:
from then on it lives in the operating system's page cache, and a kill -9 of the workbench
cannot take it back; the next connection replays the WAL. What NORMAL gives up, against FULL,
is an fsync per commit: after a power cut or a kernel crash the last few transactions may be
rolled back (the database itself stays consistent). That is the right trade for a local tool:
an fsync can cost milliseconds (tens on some disks) per commit, to protect history against a
machine crash. `durable=True` asks for FULL.

The commit comes moments after the invocation's end, and its caller was answered earlier
still: what the commit has not caught up with yet is in the journal (history/journal.py),
appended before each answer goes out. Opening a store replays the journals of workbenches that
died into the database, so nothing a caller was answered is missing from history.

Checkpoints. SQLite's automatic checkpoint (copying the WAL into the database, with fsyncs) runs
inside whichever commit crosses 1000 pages: 5-10 ms on the event loop. The writer turns it off
and a small background thread with its own connection checkpoints instead (PASSIVE: it never
blocks a writer) after every CHECKPOINT_BYTES written. A kill -9 mid-checkpoint is harmless.

Size. At most `max_records` records, and at most `max_bytes` of events, responses and logs
(when crossed, the oldest go until 90% is left), are kept; the oldest go first, in the same
transaction that adds a new one.

Schema. `PRAGMA user_version` holds the schema version; MIGRATIONS[i] takes version i to i+1.
A database written by a newer workbench is refused in words instead of being misread.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from workbench.core.bus import ReloadFinished
from workbench.core.config.function import DEFAULT_HISTORY_MB, DEFAULT_HISTORY_RECORDS
from workbench.core.history.journal import Journal, Replayed, abandoned
from workbench.core.record import InvocationRecord, InvokeRequest, InvokeResult
from workbench.core.vocab import InvocationType, Source, Status

log = logging.getLogger(__name__)

STORE_DIR = ".workbench"
DB_NAME = "history.sqlite3"
DEFAULT_MAX_RECORDS = DEFAULT_HISTORY_RECORDS
DEFAULT_MAX_BYTES = DEFAULT_HISTORY_MB * 1024 * 1024
SKIP_DIRS = frozenset({".git", ".workbench", "node_modules", "__pycache__"})
MAX_HASHED_ENTRIES = 50_000  # a code folder bigger than this is hashed by its first entries
BUSY_TIMEOUT_MS = 2000  # another workbench writing the same folder holds the lock for microseconds
CHECKPOINT_BYTES = 4 * 1024 * 1024  # WAL written between two background checkpoints
JOURNAL_SIZE_LIMIT = 16 * 1024 * 1024  # the WAL file is cut back to this after a checkpoint

# MIGRATIONS[i]: the statements that take the schema from version i to i + 1.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE invocations (
            id INTEGER PRIMARY KEY,
            request_id TEXT NOT NULL,
            function TEXT NOT NULL,
            source TEXT NOT NULL,
            event_name TEXT,
            code_version TEXT,
            started_at REAL NOT NULL,
            status TEXT NOT NULL,
            cold INTEGER NOT NULL,
            duration_ms REAL NOT NULL,
            billed_ms INTEGER NOT NULL,
            init_ms REAL,
            memory_mb INTEGER NOT NULL,
            max_memory_mb INTEGER NOT NULL,
            invocation_type TEXT NOT NULL,
            client_context TEXT,
            trace_id TEXT,
            tenant_id TEXT,
            event_content_type TEXT NOT NULL,
            event BLOB NOT NULL,
            response BLOB NOT NULL,
            content_type TEXT NOT NULL,
            function_error INTEGER NOT NULL,
            error_type TEXT,
            log TEXT NOT NULL,
            log_truncated INTEGER NOT NULL,
            size INTEGER NOT NULL,  -- bytes of event, response and log: for max_bytes
            check_result TEXT
        )""",
        "CREATE INDEX invocations_request ON invocations (request_id)",
        "CREATE INDEX invocations_event ON invocations (function, event_name, id)",
        "CREATE INDEX invocations_size ON invocations (id, size)",
    ),
    (  # live reloads: what changed, and how long each step took
        """CREATE TABLE reloads (
            id INTEGER PRIMARY KEY,
            function TEXT NOT NULL,
            finished_at REAL NOT NULL,
            changed_paths TEXT NOT NULL,  -- a JSON array
            build_ms REAL,
            init_ms REAL,
            save_to_ready_ms REAL NOT NULL,
            ok INTEGER NOT NULL,
            error TEXT,
            code_version TEXT
        )""",
    ),
)
RELOADS_KEPT = 1000  # reload records kept per folder, newest first
SCHEMA_VERSION = len(MIGRATIONS)

COLUMNS = (
    "id",
    "request_id",
    "function",
    "source",
    "event_name",
    "code_version",
    "started_at",
    "status",
    "cold",
    "duration_ms",
    "billed_ms",
    "init_ms",
    "memory_mb",
    "max_memory_mb",
    "invocation_type",
    "client_context",
    "trace_id",
    "tenant_id",
    "event_content_type",
    "event",
    "response",
    "content_type",
    "function_error",
    "error_type",
    "log",
    "log_truncated",
    "check_result",
)
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM invocations"


class HistoryError(Exception):
    """The history store cannot be used; the message says why, for a person."""


@dataclass(frozen=True, slots=True)
class ReloadEntry:
    """One live reload, as read back from the store."""

    id: int
    function: str
    finished_at: float
    changed_paths: tuple[str, ...]
    build_ms: float | None
    init_ms: float | None
    save_to_ready_ms: float
    ok: bool
    error: str | None
    code_version: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "function": self.function,
            "finished_at": self.finished_at,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.finished_at)),
            "changed_paths": list(self.changed_paths),
            "build_ms": self.build_ms,
            "init_ms": self.init_ms,
            "save_to_ready_ms": self.save_to_ready_ms,
            "ok": self.ok,
            "error": self.error,
            "code_version": self.code_version,
        }


def record_json(rec: InvocationRecord) -> dict[str, Any]:
    """One recorded invocation as a JSON-ready dict (`history --json`): event and response as
    JSON values when they are JSON, else in base64 under `event_base64` / `response_base64`."""
    req, res = rec.request, rec.result
    doc: dict[str, Any] = {
        "id": rec.id,
        "request_id": rec.request_id,
        "function": rec.function,
        "source": req.source,
        "event_name": rec.event_name,
        "code_version": rec.code_version,
        "started_at": rec.started_at,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(rec.started_at)),
        "status": rec.status,
        "cold": rec.cold,
        "duration_ms": rec.duration_ms,
        "billed_ms": rec.billed_ms,
        "init_ms": rec.init_ms,
        "memory_mb": rec.memory_mb,
        "max_memory_mb": rec.max_memory_mb,
        "invocation_type": req.invocation_type,
        "client_context": req.client_context,
        "trace_id": req.trace_id,
        "tenant_id": req.tenant_id,
    }
    _put_body(doc, "event", req.payload)
    _put_body(doc, "response", res.payload)
    doc.update(
        content_type=res.content_type,
        function_error=res.function_error,
        error_type=rec.error_type,
        log_lines=rec.log_lines,
        log_truncated=rec.log_truncated,
        check_result=rec.check_result,
    )
    return doc


def _put_body(doc: dict[str, Any], key: str, body: bytes) -> None:
    ok, value = decode_json(body)
    if ok:
        doc[key] = value
    else:
        doc[f"{key}_base64"] = base64.b64encode(body).decode("ascii")


def decode_json(body: bytes) -> tuple[bool, Any]:
    """(True, value) when `body` is JSON text, else (False, None)."""
    try:
        return True, json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return False, None


class HistoryStore:
    """The history of one code folder. Thread-safe; each `record` is one committed transaction.

    `folder` is the function's code folder; the database lives in `folder/.workbench/`."""

    def __init__(
        self,
        folder: Path,
        max_records: int = DEFAULT_MAX_RECORDS,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        durable: bool = False,
    ) -> None:
        if max_records < 1:
            raise ValueError("max_records must be at least 1")
        self.folder = Path(folder)
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.dir = self.folder / STORE_DIR
        self.path = self.dir / DB_NAME
        self._lock = threading.Lock()
        self._wal_bytes = 0
        self._checkpoint_wanted = threading.Event()
        self._checkpointer: threading.Thread | None = None
        self._closing = False
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            ignore = self.dir / ".gitignore"
            if not ignore.exists():
                ignore.write_text(
                    "# workbench's local state: history, builds. Never committed.\n*\n"
                )
            self._conn = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
        except (OSError, sqlite3.Error) as exc:
            raise HistoryError(f"cannot open the history in {self.dir}: {exc}") from None
        try:
            self._setup_retrying(durable)
        except sqlite3.Error as exc:
            self._conn.close()
            raise HistoryError(f"{self.path}: cannot use it as history: {exc}") from None
        except HistoryError:
            self._conn.close()
            raise
        self._bytes = self._total_bytes()
        # A WAL left big by workbenches killed before they checkpointed: fold it in soon.
        try:
            self._wal_bytes = self.path.with_name(DB_NAME + "-wal").stat().st_size
        except OSError:
            self._wal_bytes = 0
        self.journal = Journal(self.dir)  # this process's; its files appear on first use
        self.replayed = self._replay()

    @classmethod
    def open_existing(
        cls, folder: Path, max_records: int = DEFAULT_MAX_RECORDS
    ) -> HistoryStore | None:
        """The folder's store if it has one; None without creating anything."""
        if not (Path(folder) / STORE_DIR / DB_NAME).is_file():
            return None
        return cls(folder, max_records)

    def _setup_retrying(self, durable: bool) -> None:
        """Two workbenches opening a new database at once: the one that loses the race to
        switch it to WAL gets SQLITE_BUSY at once, without SQLite's busy wait. Setup is
        idempotent, so wait a little and do it again."""
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                self._setup(durable)
                return
            except sqlite3.OperationalError as exc:
                busy = "locked" in str(exc) or "busy" in str(exc)
                if not busy or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _setup(self, durable: bool) -> None:
        c = self._conn
        c.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = c.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":  # e.g. a filesystem without shared memory
            log.warning("%s: WAL mode unavailable (journal_mode=%s)", self.path, mode)
        c.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
        c.execute("PRAGMA wal_autocheckpoint = 0")  # the background thread does it
        c.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")
        version = c.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        c.execute("BEGIN IMMEDIATE")  # one process migrates; the others wait and then see it
        try:
            version = c.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise HistoryError(
                    f"{self.path} was written by a newer workbench (history "
                    f"schema {version}; this one knows up to {SCHEMA_VERSION}). "
                    "Upgrade workbench, or move the file away to start afresh."
                )
            for statements in MIGRATIONS[version:]:
                for statement in statements:
                    c.execute(statement)
            c.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    def _replay(self) -> int:
        """Store what the journals of workbenches that died (kill -9) hold and the database
        does not: answers committed nowhere else. Returns how many records that added."""
        found = abandoned(self.dir)
        if not found.held:
            return 0
        try:
            added = self._add_replayed(found.records)
        except sqlite3.Error as exc:
            found.release()  # kept for the next open
            log.warning("%s: cannot replay history's journal yet: %s", self.path, exc)
            return 0
        found.done()
        if added:
            log.info("%s: %d invocations recovered from history's journal", self.path, added)
        return added

    def _add_replayed(self, items: Sequence[Replayed]) -> int:
        """Idempotent by request id: a record already in the database (committed before the
        kill, or replayed by another workbench first) is not added again."""
        with self._lock:
            c = self._conn
            c.execute("BEGIN IMMEDIATE")
            try:
                rows = [
                    _row(rec, name, version)
                    for rec, name, version in items
                    if c.execute(
                        "SELECT 1 FROM invocations WHERE request_id = ? LIMIT 1",
                        (rec.request_id,),
                    ).fetchone()
                    is None
                ]
                if rows:
                    self._insert(rows)
                c.execute("COMMIT")
            except BaseException:
                if c.in_transaction:
                    c.execute("ROLLBACK")
                raise
        return len(rows)

    def close(self) -> None:
        """Stop the checkpointer and close; the last connection to close folds the WAL in.
        The journal's files go too, unless they hold an answer whose record never came."""
        self.journal.close()
        self._closing = True
        self._checkpoint_wanted.set()
        if self._checkpointer is not None:
            self._checkpointer.join(timeout=10)
        with self._lock:
            self._conn.close()

    def _wrote(self, size: int) -> None:
        self._wal_bytes += size + 4096  # plus about a page of row, index and frame headers
        if self._wal_bytes < CHECKPOINT_BYTES:
            return
        self._wal_bytes = 0
        if self._checkpointer is None:
            self._checkpointer = threading.Thread(
                target=self._checkpoint_loop,
                daemon=True,
                name=f"history-checkpoint-{self.folder.name}",
            )
            self._checkpointer.start()
        self._checkpoint_wanted.set()

    def _checkpoint_loop(self) -> None:
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            log.warning("%s: no background checkpoints: %s", self.path, exc)
            return
        try:
            while True:
                self._checkpoint_wanted.wait()
                self._checkpoint_wanted.clear()
                if self._closing:
                    return
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error as exc:  # busy or gone: the next one catches up
                    log.debug("%s: checkpoint failed: %s", self.path, exc)
        finally:
            conn.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ---- writing ----

    def record(
        self, rec: InvocationRecord, event_name: str | None = None, code_version: str | None = None
    ) -> int:
        """Add one finished invocation, committed before this returns; returns its id.
        The oldest records beyond the bounds go in the same transaction."""
        return self.record_many([(rec, event_name, code_version)])[0]

    def record_many(
        self,
        items: Sequence[tuple[InvocationRecord, str | None, str | None]],
        checkpoint_here: bool = False,
    ) -> list[int]:
        """Add several invocations in one transaction (pages shared: far less to write than
        one transaction each). `checkpoint_here`: fold the WAL in on this connection when due,
        which only a writer that is not the event loop should ask for: nothing else appends
        meanwhile, so the checkpoint completes and the WAL starts over."""
        rows = [_row(rec, name, version) for rec, name, version in items]
        with self._lock:
            c = self._conn
            c.execute("BEGIN IMMEDIATE")
            try:
                ids = self._insert(rows)
                c.execute("COMMIT")
            except BaseException:
                if c.in_transaction:
                    c.execute("ROLLBACK")
                raise
            size = sum(int(row[-1]) for row in rows)
            if checkpoint_here:
                self._checkpoint_now(size)
            else:
                self._wrote(size)
        return ids

    def _insert(self, rows: Sequence[tuple[Any, ...]]) -> list[int]:
        """Inside a transaction: add the rows, then drop the oldest beyond the bounds."""
        c = self._conn
        ids: list[int] = []
        for row in rows:
            cur = c.execute(INSERT, row)
            ids.append(int(cur.lastrowid or 0))
            self._bytes += int(row[-1])
        # Ids grow by one per insert and only the oldest are ever deleted, so the newest
        # max_records are exactly the ids above new_id - max_records.
        c.execute("DELETE FROM invocations WHERE id <= ?", (ids[-1] - self.max_records,))
        if self._bytes > self.max_bytes:
            self._prune_bytes()
        return ids

    def _checkpoint_now(self, size: int) -> None:
        self._wal_bytes += size + 4096 * 4  # row pages plus one per index
        if self._wal_bytes >= CHECKPOINT_BYTES:
            self._wal_bytes = 0
            try:
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as exc:
                log.debug("%s: checkpoint failed: %s", self.path, exc)

    def prune(self) -> int:
        """Keep the newest `max_records` (and at most about `max_bytes`); returns how many went."""
        with self._lock:
            c = self._conn
            c.execute("BEGIN IMMEDIATE")
            try:
                before = c.total_changes
                c.execute(
                    "DELETE FROM invocations WHERE id <= (SELECT id FROM invocations "
                    "ORDER BY id DESC LIMIT 1 OFFSET ?)",
                    (self.max_records,),
                )
                self._prune_bytes()
                removed = c.total_changes - before
                c.execute("COMMIT")
            except BaseException:
                if c.in_transaction:
                    c.execute("ROLLBACK")
                raise
        return removed

    def _prune_bytes(self) -> None:
        """Inside a transaction: drop the oldest until the total is under 90% of max_bytes
        (so this runs once per tenth of max_bytes written, not on every record); the newest
        record always stays, however big. Sizes come from a covering index, not the rows."""
        c = self._conn
        row = c.execute(
            "SELECT id FROM (SELECT id, SUM(size) OVER (ORDER BY id DESC) AS total "
            "FROM invocations INDEXED BY invocations_size) WHERE total > ? "
            "ORDER BY id DESC LIMIT 1",
            (self.max_bytes * 9 // 10,),
        ).fetchone()
        if row is not None:
            newest = c.execute("SELECT MAX(id) FROM invocations").fetchone()[0]
            c.execute("DELETE FROM invocations WHERE id <= ? AND id < ?", (row[0], newest))
        self._bytes = self._total_bytes()

    def _total_bytes(self) -> int:
        return int(
            self._conn.execute("SELECT COALESCE(SUM(size), 0) FROM invocations").fetchone()[0]
        )

    # ---- reading ----

    def _rows(self, sql: str, params: Sequence[object] = ()) -> list[InvocationRecord]:
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        return [_entry(r) for r in rows]

    def last(self, n: int, function: str | None = None) -> list[InvocationRecord]:
        """The newest `n` records (of `function`, when given), newest first."""
        if function is None:
            return self._rows(f"{_SELECT} ORDER BY id DESC LIMIT ?", (n,))
        return self._rows(f"{_SELECT} WHERE function = ? ORDER BY id DESC LIMIT ?", (function, n))

    def get(self, key: int | str) -> InvocationRecord | None:
        """By id (an int, or a string of digits), by request id, or by a request id prefix
        that only one record has."""
        if isinstance(key, int) or key.isdigit():
            found = self._rows(f"{_SELECT} WHERE id = ?", (int(key),))
            if found:
                return found[0]
            if isinstance(key, int):
                return None
        found = self._rows(f"{_SELECT} WHERE request_id = ? ORDER BY id DESC LIMIT 1", (key,))
        if found:
            return found[0]
        prefix = key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        found = self._rows(
            f"{_SELECT} WHERE request_id LIKE ? ESCAPE '\\' ORDER BY id DESC LIMIT 2",
            (prefix + "%",),
        )
        return found[0] if len(found) == 1 else None

    def last_for_event(self, function: str, event_name: str) -> InvocationRecord | None:
        """The newest successful record of `function` run with the saved event `event_name`,
        leaving out the ones a `replay --check` found different: a regression must not become
        the next run's baseline by being checked once."""
        found = self._rows(
            f"{_SELECT} WHERE function = ? AND event_name = ? AND status = 'ok' "
            "AND function_error = 0 AND (check_result IS NULL OR "
            "check_result NOT IN ('diff', 'error')) ORDER BY id DESC LIMIT 1",
            (function, event_name),
        )
        return found[0] if found else None

    def mark_checked(self, request_id: str, result: str) -> None:
        """What `replay --check` concluded about a recorded invocation."""
        with self._lock:
            self._conn.execute(
                "UPDATE invocations SET check_result = ? WHERE request_id = ?", (result, request_id)
            )

    def record_reload(
        self, event: ReloadFinished, finished_at: float, code_version: str | None
    ) -> None:
        """A live reload: the files that changed, build, init and save-to-ready times."""
        with self._lock:
            c = self._conn
            c.execute("BEGIN IMMEDIATE")
            try:
                cur = c.execute(
                    "INSERT INTO reloads (function, finished_at, changed_paths, build_ms, "
                    "init_ms, save_to_ready_ms, ok, error, code_version) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        event.function,
                        finished_at,
                        json.dumps(list(event.changed_paths)),
                        event.build_ms,
                        event.init_ms,
                        event.save_to_ready_ms,
                        int(event.ok),
                        event.error,
                        code_version,
                    ),
                )
                c.execute(
                    "DELETE FROM reloads WHERE id <= ?", (int(cur.lastrowid or 0) - RELOADS_KEPT,)
                )
                c.execute("COMMIT")
            except BaseException:
                if c.in_transaction:
                    c.execute("ROLLBACK")
                raise

    def reloads(self, n: int, function: str | None = None) -> list[ReloadEntry]:
        """The newest `n` reloads, newest first."""
        where, params = ("WHERE function = ?", (function, n)) if function else ("", (n,))
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, function, finished_at, changed_paths, build_ms, init_ms, "
                f"save_to_ready_ms, ok, error, code_version FROM reloads {where} "
                "ORDER BY id DESC LIMIT ?",
                params,
            ).fetchall()
        return [
            ReloadEntry(
                r[0], r[1], r[2], tuple(json.loads(r[3])), r[4], r[5], r[6], bool(r[7]), r[8], r[9]
            )
            for r in rows
        ]

    def count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM invocations").fetchone()[0])

    def functions(self) -> list[str]:
        with self._lock:
            rows = self._conn.execute("SELECT DISTINCT function FROM invocations").fetchall()
        return sorted(str(r[0]) for r in rows)


def _entry(r: Sequence[Any]) -> InvocationRecord:
    log_text: str = r[24] or ""
    request = InvokeRequest(
        bytes(r[19]),
        invocation_type=cast(InvocationType, r[14]),
        client_context=r[15],
        trace_id=r[16],
        tenant_id=r[17],
        content_type=r[18],
        source=cast(Source, r[3]),
    )
    result = InvokeResult(r[1], bytes(r[20]), r[21], bool(r[22]))
    return InvocationRecord(
        function=r[2],
        request_id=r[1],
        request=request,
        result=result,
        status=cast(Status, r[7]),
        cold=bool(r[8]),
        started_at=r[6],
        duration_ms=r[9],
        billed_ms=r[10],
        init_ms=r[11],
        memory_mb=r[12],
        max_memory_mb=r[13],
        log_lines=log_text.split("\n")[:-1],
        log_truncated=bool(r[25]),
        event_name=r[4],
        id=r[0],
        code_version=r[5],
        check_result=r[26],
    )


# ---- code version ----


def code_version(code_dir: Path, extra_dirs: Iterable[Path] = (), skip: Iterable[str] = ()) -> str:
    """A short hash of the code files' relative names, sizes and modification times, under
    `code_dir` and each of `extra_dirs` (layers). Skips .git, .workbench, node_modules,
    __pycache__, any other dot-folder (tool caches, .aws-sam builds) and the folders named in
    `skip`, relative to `code_dir` (the saved events)."""
    digest = hashlib.sha256()
    budget = [MAX_HASHED_ENTRIES]
    skipped = frozenset(Path(s).as_posix().strip("/") for s in skip)
    for index, root in enumerate([Path(code_dir), *extra_dirs]):
        digest.update(f"\0root {index}\n".encode())
        _hash_tree(digest, str(root), "", skipped, budget)
    return digest.hexdigest()[:12]


def _hash_tree(digest: Any, top: str, rel: str, skip: frozenset[str], budget: list[int]) -> None:
    try:
        with os.scandir(os.path.join(top, rel) if rel else top) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if budget[0] <= 0:
            return
        budget[0] -= 1
        name = f"{rel}/{entry.name}" if rel else entry.name
        try:
            if entry.is_dir(follow_symlinks=False):
                if entry.name in SKIP_DIRS or entry.name.startswith(".") or name in skip:
                    continue
                _hash_tree(digest, top, name, skip, budget)
                continue
            st = entry.stat()  # follows a symlinked file to what it points at
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            digest.update(
                f"{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape")
            )


INSERT = (
    "INSERT INTO invocations (request_id, function, source, event_name, "
    "code_version, started_at, status, cold, duration_ms, billed_ms, init_ms, "
    "memory_mb, max_memory_mb, invocation_type, client_context, trace_id, "
    "tenant_id, event_content_type, event, response, content_type, "
    "function_error, error_type, log, log_truncated, size) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _row(
    rec: InvocationRecord, event_name: str | None, code_version: str | None
) -> tuple[Any, ...]:
    req, res = rec.request, rec.result
    log_text = rec.log_text()
    event_name = event_name if event_name is not None else rec.event_name
    size = len(req.payload) + len(res.payload) + len(log_text)
    return (
        rec.request_id,
        rec.function,
        req.source,
        event_name,
        code_version,
        rec.started_at,
        rec.status,
        int(rec.cold),
        rec.duration_ms,
        rec.billed_ms,
        rec.init_ms,
        rec.memory_mb,
        rec.max_memory_mb,
        req.invocation_type,
        req.client_context,
        req.trace_id,
        req.tenant_id,
        req.content_type,
        req.payload,
        res.payload,
        res.content_type,
        int(res.function_error),
        res.error_type,
        log_text,
        int(rec.log_truncated),
        size,
    )
