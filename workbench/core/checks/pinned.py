"""Regression on save: after each successful reload, a function's pinned saved events run
again on the new version, one after another, each judged as `replay --check` judges it
(core/checks/judge.py), and each verdict is said on the bus as a `PinnedCheckFinished`.

Pinning lives in the event's sidecar (`"pinned": true` in `events/.meta/NAME.json`, see
`events.pin_event`), so it is read afresh at every reload: pinning takes effect on the next
save without a restart. A newer reload while checks run stops the older run after the
invocation in flight (whose verdict is still said: it really ran); the new version's checks
follow it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Mapping
from typing import TYPE_CHECKING

from workbench.core.bus import Bus, Event, PinnedCheckFinished, ReloadFinished, WorkerFailed
from workbench.core.checks.judge import CheckError, baseline_for, judge
from workbench.core.engine.payloads import ServiceError, validate_payload
from workbench.core.history.store import HistoryError, HistoryStore
from workbench.core.record import InvokeRequest
from workbench.core.saved_events.store import EventError, events_folder, list_pinned, saved_path
from workbench.core.vocab import Source

if TYPE_CHECKING:
    from workbench.core.engine.function import Invocable
    from workbench.core.history.recorder import Recorder

SOURCE: Source = "pinned"  # how these invocations are recorded in history


class PinnedChecks:
    """Runs pinned events after each `ReloadFinished(ok=True)` on `bus` for the functions in
    `functions` (anything with `start_invoke`: a Reloader, usually). With a `recorder`, each
    run is recorded under its event's name, the baseline can come from history, and a run
    found different is marked so that it never becomes the next baseline."""

    def __init__(
        self, bus: Bus, functions: Mapping[str, Invocable], *, recorder: Recorder | None = None
    ) -> None:
        self.bus = bus
        self.functions = functions
        self.recorder = recorder
        self._runs: dict[str, asyncio.Task[None]] = {}
        self._generation: dict[str, int] = {}
        self._unsubscribe = bus.subscribe(self._on_event)

    def _on_event(self, event: Event) -> None:
        if isinstance(event, ReloadFinished) and event.ok and event.function in self.functions:
            self.run(event.function)

    def run(self, function: str) -> asyncio.Task[None]:
        """Check `function`'s pinned events now, after its run still going, if any."""
        generation = self._generation[function] = self._generation.get(function, 0) + 1
        task = asyncio.create_task(
            self._run(function, generation, self._runs.get(function)),
            name=f"pinned-checks-{function}",
        )
        self._runs[function] = task
        task.add_done_callback(lambda t: self._done(function, t))
        return task

    async def idle(self) -> None:
        """Return when no check is running."""
        while any(not t.done() for t in self._runs.values()):
            await asyncio.wait([t for t in self._runs.values() if not t.done()])

    async def close(self) -> None:
        self._unsubscribe()
        running = [t for t in self._runs.values() if not t.done()]
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running, timeout=10)

    async def _run(
        self, function: str, generation: int, previous: asyncio.Task[None] | None
    ) -> None:
        if previous is not None and not previous.done():
            await asyncio.wait({previous})
        fn = self.functions[function]
        for name in list_pinned(events_folder(fn.cfg.code_dir, fn.cfg.events_dir)):
            if self._generation[function] != generation:
                return  # a newer version is up: its own run checks it
            self.bus.emit(await self._check(fn, name))

    async def _check(self, fn: Invocable, name: str) -> PinnedCheckFinished:
        cfg = fn.cfg
        try:
            data = saved_path(events_folder(cfg.code_dir, cfg.events_dir), name).read_bytes()
            payload = validate_payload(data)
            baseline = baseline_for(cfg, self._store(cfg.name), name)
            handle = fn.start_invoke(InvokeRequest(payload, source=SOURCE))
        except ServiceError as exc:
            return PinnedCheckFinished(
                cfg.name, name, "", False, "error", None, f"{exc.code}: {exc.message}"
            )
        except (OSError, EventError, CheckError) as exc:
            return PinnedCheckFinished(cfg.name, name, "", False, "error", None, str(exc))
        if self.recorder is not None:
            self.recorder.name_event(handle.request_id, name)
        record = await handle.record
        verdict = judge(record, baseline)
        assert verdict.status != "ok"  # judged with a check: it passes, differs or is new
        await self._mark(cfg.name, record.request_id, verdict.status)
        return PinnedCheckFinished(
            cfg.name,
            name,
            record.request_id,
            not verdict.failed,
            verdict.status,
            verdict.diff,
            verdict.detail,
        )

    def _store(self, function: str) -> HistoryStore | None:
        if self.recorder is None:
            return None
        try:
            return self.recorder.store_for(function)
        except HistoryError:
            return None  # the recorder says so; the check goes on without history

    async def _mark(self, function: str, request_id: str, status: str) -> None:
        """Keep the verdict with the record, once the recorder has written it."""
        store = self._store(function)
        if store is None or self.recorder is None:
            return
        await asyncio.to_thread(self.recorder.flush)
        try:
            await asyncio.to_thread(store.mark_checked, request_id, status)
        except sqlite3.Error:
            pass  # only a note for later baselines; the verdict itself is said all the same

    def _done(self, function: str, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        self.bus.emit(WorkerFailed(function, task.get_name(), f"{type(exc).__name__}: {exc}"))
