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
from dataclasses import dataclass, replace
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
    WorkerFailed,
)
from workbench.core.checks.pinned import PinnedChecks
from workbench.core.config.describe import describe_function
from workbench.core.config.function import ConfigError, FunctionConfig
from workbench.core.engine.function import InvocationHandle
from workbench.core.engine.payloads import ServiceError, validate_payload
from workbench.core.history.recorder import Recorder, Stores, attach
from workbench.core.history.store import HistoryError
from workbench.core.logbook import LogBook, reload_line
from workbench.core.record import InvocationRecord, InvokeRequest
from workbench.core.reload.builders import BuildResult
from workbench.core.reload.reloader import Reloader
from workbench.core.runtimes import launch_for
from workbench.core.vocab import FunctionState, Source

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
class FunctionStatus:
    """One function as a front end shows it, handed out by the Session so that the UI never
    reads the Session's insides."""

    name: str
    runtime: str
    state: FunctionState
    invocations: int  # in this session
    last_reload: ReloadFinished | None  # the newest, whether it worked or not
    # the interpreter the runtime runs on ("Python 3.11"); None for custom runtimes
    runs_on: str | None = None
    # set when that is not the version the runtime names: the warning, in a sentence
    runtime_note: str | None = None


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
        self._interpreters: dict[str, tuple[FunctionConfig, tuple[str | None, str | None]]] = {}
        if not self.configs:
            raise ValueError("a session needs at least one function")
        self.bus = bus or Bus()
        self.watch = watch
        self.host, self.port, self.port_fallback = host, port, port_fallback
        self.log = LogBook()
        self._tallies = {name: Tally() for name in self.configs}
        self._state: dict[str, FunctionState] = dict.fromkeys(self.configs, "starting")
        resolvers = resolvers or {}
        self.describers = dict(describers or {})
        self._reloaders = {
            name: Reloader(c, self.bus, watch=watch, resolve=resolvers.get(name))
            for name, c in self.configs.items()
        }
        # before the recorder: it forgets an invocation's event name once it has recorded it
        self._unsubscribe = self.bus.subscribe(self._on_event)
        self.stores: Stores | None = Stores(self.configs.values()) if record else None
        self.recorder: Recorder | None = (
            attach(self.bus, self.stores) if self.stores is not None else None
        )
        # this session's invocations and pinned verdicts, by request id
        self._invocations: dict[str, InvocationRecord] = {}
        self._verdicts: dict[str, PinnedCheckFinished] = {}
        self._event_names: dict[str, str] = {}
        self.checks: PinnedChecks | None = (
            PinnedChecks(self.bus, self._reloaders, recorder=self.recorder) if pinned else None
        )
        self.api_url: str | None = None
        self._api: object | None = None
        self._background: set[asyncio.Task[object]] = set()

    @property
    def names(self) -> list[str]:
        return list(self.configs)

    # ---- what a front end reads ----

    def status(self, name: str) -> FunctionStatus:
        return FunctionStatus(
            name,
            self.configs[name].runtime,
            self._state[name],
            self._tallies[name].count,
            self._reloaders[name].last_reload,
            *self._interpreter(self.configs[name]),
        )

    def _interpreter(self, cfg: FunctionConfig) -> tuple[str | None, str | None]:
        """(runs on, note) of a configuration; discovery is cached per process, and this keeps
        the answer per configuration too, since the status line asks every frame."""
        cached = self._interpreters.get(cfg.name)
        if cached is not None and cached[0] is cfg:
            return cached[1]
        try:
            launch = launch_for(cfg)
            found = (launch.choice.runs_on if launch.choice else None, launch.note)
        except ConfigError:
            found = (None, None)  # the first invoke says why, as an init failure
        self._interpreters[cfg.name] = (cfg, found)
        return found

    def invocation(self, request_id: str) -> InvocationRecord | None:
        """One of this session's invocations (the newest ROWS_KEPT are kept)."""
        return self._invocations.get(request_id)

    def invocations(self, name: str | None = None) -> list[InvocationRecord]:
        """This session's invocations, oldest first; of one function when `name` is given."""
        return [r for r in self._invocations.values() if name is None or r.function == name]

    def verdict(self, request_id: str) -> PinnedCheckFinished | None:
        """The pinned check an invocation was, if it was one."""
        return self._verdicts.get(request_id)

    def verdicts(self) -> list[PinnedCheckFinished]:
        """This session's pinned-check verdicts, oldest first."""
        return list(self._verdicts.values())

    # ---- lifecycle ----

    async def start(self) -> dict[str, BuildResult]:
        """Build (when needed) and start watching every function, then serve the Invoke API.
        A function whose first build fails stays listed: a save that fixes it brings it up."""
        built: dict[str, BuildResult] = {}
        for name, reloader in self._reloaders.items():
            self._state[name] = "building" if reloader.builder.needed else "starting"
            built[name] = result = await reloader.start()
            self._state[name] = "ready" if result.ok else "failed"
        if self.port is not None:
            from workbench.core.invoke_api import InvokeAPI

            api = InvokeAPI(
                self._reloaders,
                host=self.host,
                port=self.port,
                region=next(iter(self.configs.values())).region,
                bus=self.bus,
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
        await asyncio.gather(*(f.close() for f in self._reloaders.values()), return_exceptions=True)
        if self.recorder is not None:
            self.recorder.detach()
        if self.stores is not None:
            self.stores.close()
        self._unsubscribe()

    # ---- acting ----

    def invoke(
        self, name: str, payload: bytes, event_name: str | None = None, source: Source = "tui"
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
        return self._tallies[name].figures()

    def past(self, name: str, n: int = 500) -> list[InvocationRecord]:
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
            return self._reloaders[name]
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
            tally = self._tallies.get(event.function)
            if tally is not None:
                tally.add(rec)
            name = self._event_names.pop(rec.request_id, None)
            if name is None and self.recorder is not None:  # pinned checks name theirs there
                name = self.recorder.event_name(rec.request_id)
            named = replace(rec, event_name=name) if name is not None else rec
            keep_newest(self._invocations, rec.request_id, named)
        elif isinstance(event, ChangeDetected):
            self._state[event.function] = "reloading"
        elif isinstance(event, BuildStarted):
            self._state[event.function] = "building"
        elif isinstance(event, BuildFinished) and not event.ok and not event.cancelled:
            self._state[event.function] = "failed"
        elif isinstance(event, ReloadFinished):
            # a failed reload leaves the last good version serving, but the user must see it
            self._state[event.function] = "ready" if event.ok else "failed"
            self.bus.emit(
                LogLine(event.function, reload_line(event), "workbench", None, time.time())
            )  # the log says what changed, and how fast
            if event.ok:  # a config edit may have changed the function's settings
                self.configs[event.function] = self._reloaders[event.function].cfg
                if self.stores is not None:
                    self.stores.update(self.configs[event.function])
        elif isinstance(event, PinnedCheckFinished) and event.request_id:
            keep_newest(self._verdicts, event.request_id, event)
        elif isinstance(event, WorkerFailed):  # into the log too, where it stays
            line = f"[ERROR] workbench: {event.summary()}"
            self.bus.emit(LogLine(event.function, line, "workbench", None, time.time()))
        elif isinstance(event, EnvironmentReady):
            self._state[event.function] = "ready"
        elif isinstance(event, EnvironmentInitFailed):
            self._state[event.function] = "init failed"
            self.log.init_failed(event.function, event.env)
