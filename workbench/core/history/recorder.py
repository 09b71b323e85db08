"""Recording from the bus: every finished invocation and every reload, into the history
store of the function's code folder (core/history/store.py), written by one background thread.

On the event loop, an answer and then its record are appended to the store's journal
(history/journal.py: one writev each, so a kill -9 cannot lose what a caller was answered),
and the record is handed to the writer thread, which commits within moments, batching what
queued up meanwhile, and then lets the journal forget it. Whoever must know a record is in the
database (a command about to exit) calls `flush()`.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from workbench.core.bus import (
    Bus,
    EnvironmentStarting,
    Event,
    InvocationAccepted,
    InvocationAnswered,
    InvocationFinished,
    ReloadFinished,
)
from workbench.core.config.function import DEFAULT_HISTORY_MB, FunctionConfig
from workbench.core.history.store import (
    DEFAULT_MAX_RECORDS,
    HistoryError,
    HistoryStore,
    code_version,
)
from workbench.core.record import InvocationRecord

log = logging.getLogger(__name__)

WRITE_BATCH = 64  # records committed together at most, when they queue up
GATHER_S = 0.005  # how long the writer waits for more records before committing
# while records keep arriving (a sustained load), how long it may go on gathering: a commit of
# 30-60 records costs a third as much CPU per record as one of a few, mostly because every
# commit rewrites the same pages into the WAL, which then needs checkpointing that much sooner
GATHER_MAX_S = 0.02
BATCH_BYTES = 4 * 1024 * 1024  # and how much one transaction may carry


def _size(rec: InvocationRecord) -> int:
    return len(rec.request.payload) + len(rec.result.payload)


StoreFor = Callable[[str], "HistoryStore | None"]


class Recorder:
    """Records every `InvocationFinished` on a bus into the function's store.

    The code version is taken when an environment starts (the code a runtime runs is the code
    it loaded at INIT), so it is computed once per cold start, not per invoke.

    On the event loop an invocation costs two journal writes (its answer, then its record)
    and a list append under an uncontended lock; the writer thread is woken only when it
    sleeps with nothing to do, so under load it wakes once per batch, not once per record,
    writes the rows itself, and then tells the journal which records it committed."""

    def __init__(self, bus: Bus, store_for: StoreFor) -> None:
        self.store_for = store_for
        self.code_versions: dict[str, str] = {}
        self._names: dict[str, str] = {}
        self._warned: set[str] = set()
        self.last_error: Exception | None = None
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)  # the writer has something to do
        self._written_cv = threading.Condition(self._lock)  # a batch was committed
        self._pending: list[tuple[InvocationRecord, str | None, str | None]] = []
        self._reloads: list[tuple[ReloadFinished, float]] = []  # rare: written after a batch
        self._idle = False  # the writer waits on _wake
        self._flushing = 0  # callers waiting in flush()
        self._handed = 0
        self._written = 0
        self._writer: threading.Thread | None = None
        self._unsubscribe = bus.subscribe(self._on_event)

    def name_event(self, request_id: str, event_name: str | None) -> None:
        """Say which saved event an invocation ran (call right after `Function.start_invoke`,
        before the invocation can finish); None: not a saved event."""
        if event_name is not None:
            self._names[request_id] = event_name

    def event_name(self, request_id: str) -> str | None:
        """The saved event an invocation still being recorded ran, as `name_event` said."""
        return self._names.get(request_id)

    def detach(self) -> None:
        """Stop listening, and wait for what was already handed over to be written."""
        self._unsubscribe()
        self.flush()

    def _on_event(self, event: Event) -> None:
        if isinstance(event, InvocationAnswered):
            self._journal_answer(event)
        elif isinstance(event, InvocationFinished):
            self._record(event.record)
        elif isinstance(event, InvocationAccepted):
            self._journal_accepted(event)
        elif isinstance(event, ReloadFinished):
            with self._lock:
                self._reloads.append((event, time.time()))
                self._handed += 1
                self._wake_writer()
            self._start_writer()
        elif isinstance(event, EnvironmentStarting):
            store = self._store(event.function)
            if store is not None:
                self.code_versions[event.function] = self._version(event.function, store)

    def _version(self, function: str, store: HistoryStore) -> str:
        if isinstance(self.store_for, Stores) and function in self.store_for.configs:
            return self.store_for.code_version(function)
        return code_version(store.folder, skip=("events",))

    def _store(self, function: str) -> HistoryStore | None:
        try:
            return self.store_for(function)
        except HistoryError as exc:
            self._warn(function, exc)
            return None

    def _journal_answer(self, ev: InvocationAnswered) -> None:
        """The answer goes out when this returns (the bus is synchronous): journal it first."""
        store = self._store(ev.function)
        if store is None:
            return
        try:
            store.journal.answered(
                ev, self._names.get(ev.request_id), self.code_versions.get(ev.function)
            )
        except OSError as exc:  # the answer still goes; say once that history may lose it
            self._warn(ev.function, exc)

    def _journal_accepted(self, ev: InvocationAccepted) -> None:
        """An Event invoke's 202 goes out when this returns: journal the event first."""
        store = self._store(ev.function)
        if store is None:
            return
        try:
            store.journal.accepted(
                ev.function, ev.request_id, ev.request, ev.accepted_at, ev.memory_mb
            )
        except OSError as exc:
            self._warn(ev.function, exc)

    def _record(self, rec: InvocationRecord) -> None:
        """Journal the record, then hand it to the writer thread. Committing on the event loop
        cost every invoke tens of microseconds and, under load, millisecond stalls (a 1 MB
        event ~3 ms, plus checkpoints); the writer commits within moments, batching what
        queued up meanwhile. The journal entry is small (the answer's entry already holds the
        event and the response) and covers the moments until then. Whoever must know a record
        is in the database (a command about to exit) calls flush()."""
        name = self._names.pop(rec.request_id, None) if self._names else None
        version = self.code_versions.get(rec.function)
        store = self._store(rec.function)
        if store is not None:
            try:
                store.journal.finished(rec, name, version)
            except OSError as exc:
                self._warn(rec.function, exc)
        item = (rec, name, version)
        with self._lock:
            self._pending.append(item)
            self._handed += 1
            self._wake_writer()
        self._start_writer()

    def _wake_writer(self) -> None:  # the caller holds the lock
        if self._idle:
            self._idle = False
            self._wake.notify()

    def _start_writer(self) -> None:
        if self._writer is None:
            self._writer = threading.Thread(
                target=self._write_loop, daemon=True, name="history-writer"
            )
            self._writer.start()

    def _write_loop(self) -> None:
        while True:
            with self._lock:
                while not self._pending and not self._reloads:
                    self._idle = True
                    self._wake.wait()
            if self._pending:
                self._gather()
            with self._lock:
                batch = _take_batch(self._pending)
                reloads, self._reloads = self._reloads, []
            try:
                if batch:
                    self._write(batch)
                for event, at in reloads:
                    self._write_reload(event, at)
            except Exception as exc:  # the thread must live on, or flush() would never return
                self._warn(batch[0][0].function if batch else reloads[0][0].function, exc)
            finally:
                with self._lock:
                    self._written += len(batch) + len(reloads)
                    self._written_cv.notify_all()

    def _write_reload(self, event: ReloadFinished, at: float) -> None:
        store = self._store(event.function)
        if store is None:
            return
        version = self._version(event.function, store) if event.ok else None
        try:
            store.record_reload(event, at, version)
        except (sqlite3.Error, OSError) as exc:
            self._warn(event.function, exc)

    def _gather(self) -> None:
        """Let what arrives in the next few ms join the batch: under sustained load one commit
        then carries many records instead of paying a commit (and its WAL pages) each. A lone
        record waits GATHER_S; records that keep coming, up to GATHER_MAX_S."""
        started = time.monotonic()
        seen = len(self._pending)
        while seen < WRITE_BATCH:
            time.sleep(GATHER_S)
            now_pending = len(self._pending)
            if (
                now_pending == seen
                or self._flushing
                or time.monotonic() - started >= GATHER_MAX_S - GATHER_S / 2
            ):
                return
            seen = now_pending

    def _write(self, batch: list[tuple[InvocationRecord, str | None, str | None]]) -> None:
        by_store: dict[
            int, tuple[HistoryStore, list[tuple[InvocationRecord, str | None, str | None]]]
        ] = {}
        for rec, name, version in batch:
            store = self._store(rec.function)
            if store is None:
                continue
            if version is None:  # no cold start seen (attached late): the code as it is now
                version = self.code_versions.setdefault(
                    rec.function, self._version(rec.function, store)
                )
            by_store.setdefault(id(store), (store, []))[1].append((rec, name, version))
        for store, items in by_store.values():
            try:
                store.record_many(items, checkpoint_here=True)
            except (sqlite3.Error, OSError) as exc:  # still journaled: replayed some day
                self._warn(items[0][0].function, exc)
            else:
                store.journal.committed(rec.request_id for rec, _, _ in items)

    def flush(self) -> None:
        """Return once every invocation handed to the writer thread is committed."""
        with self._lock:
            target = self._handed
            self._flushing += 1  # someone waits: stop gathering
            try:
                while self._written < target:
                    self._written_cv.wait()
            finally:
                self._flushing -= 1

    def _warn(self, function: str, exc: Exception) -> None:
        """Recording must never break an invocation: say so once per function and go on."""
        self.last_error = exc
        if function not in self._warned:
            self._warned.add(function)
            log.warning("history of %s is not being recorded: %s", function, exc)


def _take_batch(
    pending: list[tuple[InvocationRecord, str | None, str | None]],
) -> list[tuple[InvocationRecord, str | None, str | None]]:
    """The oldest records, bounded in count and in bytes: a transaction holds the write lock,
    which another workbench on the same folder (serve and invoke side by side) waits for.
    Takes them out of `pending` (the caller holds the lock)."""
    n, size = 0, 0
    while n < len(pending) and n < WRITE_BATCH and (n == 0 or size < BATCH_BYTES):
        size += _size(pending[n][0])
        n += 1
    batch = pending[:n]
    del pending[:n]
    return batch


def attach(bus: Bus, store_for: StoreFor) -> Recorder:
    """Record every invocation finished on `bus` in `store_for(function name)` (None: skip)."""
    return Recorder(bus, store_for)


class Stores:
    """One store per code folder, opened on first use; a callable usable as `store_for`.

    Each store is bounded by its functions' `history_max_records` / `history_max_mb` settings
    (functions sharing a folder share its settings file; should they differ, the largest
    bound wins, so that no function loses records it was promised). `max_records`, when
    given, overrides the settings for every folder."""

    def __init__(self, configs: Iterable[FunctionConfig], max_records: int | None = None) -> None:
        self.configs = {c.name: c for c in configs}
        self.max_records = max_records
        self._open: dict[Path, HistoryStore] = {}
        self._failed: set[Path] = set()
        self._lock = threading.Lock()
        # resolved once: realpath is a string of lstat calls, and this runs on every invoke
        self._folders = {name: Path(c.code_dir).resolve() for name, c in self.configs.items()}

    def __call__(self, function: str) -> HistoryStore | None:
        folder = self._folders.get(function)
        if folder is None:
            return None
        with self._lock:
            store = self._open.get(folder)
            if store is None and folder not in self._failed:
                records, max_bytes = self.bounds(folder)
                try:
                    store = HistoryStore(folder, records, max_bytes=max_bytes)
                except HistoryError:
                    self._failed.add(folder)  # say it once (the Recorder warns), then skip
                    raise
                self._open[folder] = store
        return store

    def bounds(self, folder: Path) -> tuple[int, int]:
        """(records, bytes) the history of `folder` keeps at most."""
        mine = [c for name, c in self.configs.items() if self._folders[name] == folder]
        records = self.max_records or max(
            (c.history_max_records for c in mine), default=DEFAULT_MAX_RECORDS
        )
        mb = max((c.history_max_mb for c in mine), default=DEFAULT_HISTORY_MB)
        return records, mb * 1024 * 1024

    def update(self, cfg: FunctionConfig) -> None:
        """A function's configuration changed (live reload): its code version and its
        history's bounds follow; the next record prunes to the new bounds."""
        with self._lock:
            self.configs[cfg.name] = cfg
            folder = self._folders[cfg.name] = Path(cfg.code_dir).resolve()
            store = self._open.get(folder)
            if store is not None:
                store.max_records, store.max_bytes = self.bounds(folder)

    def code_version(self, function: str) -> str:
        """The function's code version: its folder and its layers, without its saved events."""
        cfg = self.configs[function]
        return code_version(cfg.code_dir, cfg.layers, (cfg.events_dir,))

    def close(self) -> None:
        with self._lock:
            for store in self._open.values():
                store.close()
            self._open.clear()


def open_stores_for(configs: Iterable[FunctionConfig], max_records: int | None = None) -> Stores:
    """`store_for` for `attach`: each function's history in its own code folder, bounded by
    its settings. Call `.close()` when done (not closing loses nothing: every record is
    already committed)."""
    return Stores(configs, max_records)
