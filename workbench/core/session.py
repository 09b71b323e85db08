"""A long-lived workbench session: what the TUI drives, with no UI in it.

A Session owns, for one or more functions, the live-reloading `Reloader`s, the history stores
and their recorder, the Invoke API (so boto3 and the AWS CLI reach the same functions the user
is looking at), the whole log of the session, and the running figures the timing pane shows.
Everything it learns it says on its bus; a front end subscribes and asks it to act.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workbench.core.bus import (
    BuildFinished,
    BuildStarted,
    Bus,
    ChangeDetected,
    EnvironmentInitFailed,
    EnvironmentReady,
    EnvironmentStarting,
    Event,
    InvocationFinished,
    InvocationStarted,
    LogLine,
    PinnedCheckFinished,
    ReloadFinished,
)
from workbench.core.checks.pinned import PinnedChecks
from workbench.core.config.describe import describe_function
from workbench.core.config.function import FunctionConfig
from workbench.core.engine.function import InvocationHandle
from workbench.core.engine.payloads import ServiceError, validate_payload
from workbench.core.history.recorder import Recorder, Stores, attach
from workbench.core.history.store import HistoryEntry, HistoryError
from workbench.core.logbook import LogBook, reload_line
from workbench.core.record import InvocationRecord, InvokeRequest
from workbench.core.reload.builders import BuildResult
from workbench.core.reload.reloader import Reloader

ROWS_KEPT = 2000  # invocations of this session kept in memory (all are in history)
RECENT = 200  # durations kept per function for the timing figures


def keep_newest(kept: dict[str, Any], key: str, value: Any, limit: int = ROWS_KEPT) -> None:
    """Add to a dict that keeps only its newest `limit` entries (dicts keep insertion order)."""
    kept[key] = value
    if len(kept) > limit:
        del kept[next(iter(kept))]


@dataclass(frozen=True, slots=True)
class Figures:
    """The session's timing figures for one function."""

    count: int
    cold_starts: int
    p50_ms: float | None
    p95_ms: float | None
    max_ms: float | None
    recent_ms: tuple[float, ...]  # oldest first, for a sparkline


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile: a value that was really measured, never an interpolation."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


class Tally:
    def __init__(self) -> None:
        self.count = 0
        self.cold = 0
        self.recent: deque[float] = deque(maxlen=RECENT)

    def add(self, rec: InvocationRecord) -> None:
        self.count += 1
        self.cold += rec.cold
        self.recent.append(rec.duration_ms)

    def figures(self) -> Figures:
        recent = tuple(self.recent)
        return Figures(
            self.count,
            self.cold,
            percentile(recent, 50),
            percentile(recent, 95),
            max(recent) if recent else None,
            recent,
        )


@dataclass(frozen=True, slots=True)
class Row:
    """One invocation as a front end shows it, from this session or read back from history."""

    request_id: str
    function: str
    started_at: float
    event_name: str | None
    source: str
    status: str  # ok, error, timeout, crash
    error_type: str | None
    cold: bool
    duration_ms: float
    billed_ms: int
    init_ms: float | None
    memory_mb: int
    max_memory_mb: int
    event: bytes
    response: bytes
    function_error: bool
    log_lines: tuple[str, ...]

    @property
    def outcome(self) -> str:
        """ok, the error type, timeout or crash: what a history table's status column says."""
        if self.status in ("timeout", "crash"):
            return self.status
        return "ok" if not self.function_error else (self.error_type or "error")

    @classmethod
    def of_record(cls, rec: InvocationRecord, event_name: str | None) -> Row:
        return cls(
            rec.request_id,
            rec.function,
            rec.started_at,
            event_name,
            rec.request.source,
            rec.status,
            rec.error_type,
            rec.cold,
            rec.duration_ms,
            rec.billed_ms,
            rec.init_ms,
            rec.memory_mb,
            rec.max_memory_mb,
            rec.request.payload,
            rec.result.payload,
            rec.result.function_error,
            tuple(rec.log_lines),
        )

    @classmethod
    def of_entry(cls, e: HistoryEntry) -> Row:
        return cls(
            e.request_id,
            e.function,
            e.started_at,
            e.event_name,
            e.source,
            e.status,
            e.error_type,
            e.cold,
            e.duration_ms,
            e.billed_ms,
            e.init_ms,
            e.memory_mb,
            e.max_memory_mb,
            e.event,
            e.response,
            e.function_error,
            tuple(e.log_lines),
        )


class Session:
    def __init__(
        self,
        configs: Iterable[FunctionConfig],
        *,
        watch: bool = True,
        host: str = "127.0.0.1",
        port: int | None = 0,
        port_fallback: bool = False,
        record: bool = True,
        bus: Bus | None = None,
        resolvers: Mapping[str, Callable[[], FunctionConfig]] | None = None,
        describers: Mapping[str, Callable[[], str]] | None = None,
        pinned: bool = True,
    ) -> None:
        """`port`: where to serve the Invoke API (0: a free port; None: not at all);
        `port_fallback`: take a free port when that one is taken; `resolvers`: per function,
        how to read its configuration again when a config file is saved; `pinned`: run the
        pinned saved events again after each successful reload."""
        self.configs = {c.name: c for c in configs}
        if not self.configs:
            raise ValueError("a session needs at least one function")
        self.bus = bus or Bus()
        self.watch = watch
        self.host, self.port, self.port_fallback = host, port, port_fallback
        self.log = LogBook()
        self.tallies = {name: Tally() for name in self.configs}
        self.state = dict.fromkeys(self.configs, "starting")  # building/ready/failed/...
        resolvers = resolvers or {}
        self.describers = dict(describers or {})
        self.functions = {
            name: Reloader(c, self.bus, watch=watch, resolve=resolvers.get(name))
            for name, c in self.configs.items()
        }
        # before the recorder: it forgets an invocation's event name once it has recorded it
        self._unsubscribe = self.bus.subscribe(self._on_event)
        self.stores: Stores | None = Stores(self.configs.values()) if record else None
        self.recorder: Recorder | None = (
            attach(self.bus, self.stores) if self.stores is not None else None
        )
        self.rows: dict[str, Row] = {}  # this session's invocations, by request id
        self.verdicts: dict[str, PinnedCheckFinished] = {}  # pinned checks, by request id
        self._event_names: dict[str, str] = {}
        self.checks: PinnedChecks | None = (
            PinnedChecks(self.bus, self.functions, recorder=self.recorder) if pinned else None
        )
        self.api_url: str | None = None
        self._api: object | None = None
        self._background: set[asyncio.Task[object]] = set()

    @property
    def names(self) -> list[str]:
        return list(self.configs)

    # ---- lifecycle ----

    async def start(self) -> dict[str, BuildResult]:
        """Build (when needed) and start watching every function, then serve the Invoke API.
        A function whose first build fails stays listed: a save that fixes it brings it up."""
        built: dict[str, BuildResult] = {}
        for name, reloader in self.functions.items():
            self.state[name] = "building" if reloader.builder.needed else "starting"
            built[name] = result = await reloader.start()
            self.state[name] = "ready" if result.ok else "failed"
        if self.port is not None:
            from workbench.core.invoke_api import InvokeAPI

            api = InvokeAPI(
                self.functions,
                host=self.host,
                port=self.port,
                region=next(iter(self.configs.values())).region,
            )
            try:
                await api.start()
            except OSError:
                if not self.port_fallback:
                    raise
                api.port = 0
                await api.start()
            self._api, self.api_url = api, api.url
        return built

    async def close(self) -> None:
        """Stop serving, stop every function process, and get history onto disk."""
        from workbench.core.invoke_api import InvokeAPI

        if isinstance(self._api, InvokeAPI):
            await self._api.stop()
        if self.checks is not None:
            await self.checks.close()
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*(f.close() for f in self.functions.values()), return_exceptions=True)
        if self.recorder is not None:
            self.recorder.detach()
        if self.stores is not None:
            self.stores.close()
        self._unsubscribe()

    # ---- acting ----

    def invoke(
        self, name: str, payload: bytes, event_name: str | None = None, source: str = "tui"
    ) -> InvocationHandle:
        """Start an invocation; raises ServiceError for what Lambda itself would refuse (a bad
        payload, a function with no build yet), before anything runs."""
        reloader = self._function(name)
        req = InvokeRequest(validate_payload(payload), source=source)
        handle = reloader.start_invoke(req)
        if event_name is not None:
            if self.recorder is not None:
                self.recorder.name_event(handle.request_id, event_name)
            else:
                self._event_names[handle.request_id] = event_name
        return handle

    def force_cold(self, name: str) -> None:
        """The next invoke of `name` starts cold (after the reload under way, if any)."""
        reloader = self._function(name)
        if not reloader.force_cold_now():
            self._spawn(reloader.force_cold())

    def reload_now(self, name: str) -> None:
        self._spawn(self._function(name).reload_now())

    def describe(self, name: str) -> str:
        """Every setting of the function, where each came from, environment included."""
        describer = self.describers.get(name)
        if describer is not None:
            return describer()
        cfg = self.configs[name]
        return describe_function(cfg, str(cfg.code_dir), {}, {}, ())

    def figures(self, name: str) -> Figures:
        return self.tallies[name].figures()

    def past(self, name: str, n: int = 500) -> list[HistoryEntry]:
        """The function's recorded invocations, newest first (earlier sessions included)."""
        if self.stores is None:
            return []
        if self.recorder is not None:
            self.recorder.flush()
        try:
            store = self.stores(name)
        except HistoryError:
            return []
        return store.last(n, name) if store is not None else []

    # ---- internals ----

    def _function(self, name: str) -> Reloader:
        try:
            return self.functions[name]
        except KeyError:
            raise ServiceError(
                404, "ResourceNotFoundException", f"Function not found: {name}"
            ) from None

    def _spawn(self, coro: Coroutine[Any, Any, object]) -> None:
        task: asyncio.Task[object] = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _on_event(self, event: Event) -> None:
        if isinstance(event, LogLine):
            self.log.add(event)
        elif isinstance(event, EnvironmentStarting):
            self.log.init_started(event.function, event.env, event.phase)
        elif isinstance(event, InvocationStarted):
            self.log.request_started(event.function, event.request_id, event.cold, event.env)
        elif isinstance(event, InvocationFinished):
            rec = event.record
            self.log.request_finished(rec.request_id)
            tally = self.tallies.get(event.function)
            if tally is not None:
                tally.add(rec)
            name = self._event_names.pop(rec.request_id, None)
            if name is None and self.recorder is not None:  # pinned checks name theirs there
                name = self.recorder.event_name(rec.request_id)
            keep_newest(self.rows, rec.request_id, Row.of_record(rec, name))
        elif isinstance(event, ChangeDetected):
            self.state[event.function] = "reloading"
        elif isinstance(event, BuildStarted):
            self.state[event.function] = "building"
        elif isinstance(event, BuildFinished) and not event.ok and not event.cancelled:
            self.state[event.function] = "failed"
        elif isinstance(event, ReloadFinished):
            # a failed reload leaves the last good version serving, but the user must see it
            self.state[event.function] = "ready" if event.ok else "failed"
            self.bus.emit(
                LogLine(event.function, reload_line(event), "workbench", None, time.time())
            )  # the log says what changed, and how fast
            if event.ok:  # a config edit may have changed the function's settings
                self.configs[event.function] = self.functions[event.function].cfg
                if self.stores is not None:
                    self.stores.update(self.configs[event.function])
        elif isinstance(event, PinnedCheckFinished) and event.request_id:
            keep_newest(self.verdicts, event.request_id, event)
        elif isinstance(event, EnvironmentReady):
            self.state[event.function] = "ready"
        elif isinstance(event, EnvironmentInitFailed):
            self.state[event.function] = "init failed"
            self.log.init_failed(event.function, event.env)
