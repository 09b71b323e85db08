"""Live reload: a function that follows its code as it is saved.

A Reloader owns one `Function` per version of the code. A change set (from the watcher, or
`reload_now()`) closes the gate, builds when the function builds, starts a new Function's
environment eagerly (`prewarm`), then swaps it in at once and opens the gate: the first invoke
after a save is warm and runs the new code. Invokes that arrive while the gate is closed wait
for it; an invoke already running finishes on the old Function, which is closed once idle.
A failed build or init never takes the working function away: the old one keeps serving and
the failure is reported. A newer change set cancels the reload in progress (its build is
killed, its environment stopped) and starts over with both sets of paths.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

from workbench.core import protocol as P
from workbench.core.builders import Builder, BuildResult, builder_for
from workbench.core.bus import Bus, ChangeDetected, ReloadFinished, WorkerFailed
from workbench.core.config import ConfigError, FunctionConfig
from workbench.core.environment import InitOutcome
from workbench.core.function import Function, InvocationHandle, copy_outcome
from workbench.core.payloads import ServiceError
from workbench.core.record import InvocationRecord, InvokeRequest, InvokeResult
from workbench.core.watcher import BUILD_OUTPUTS, Watcher, WatchFilter

SETTLE_S = 0.05  # before a build: the rest of a burst of saves joins the same build
SAVE_CLOCK_SLACK_S = 2.0  # a file time older than this (cp -p, git) is not the save's time


class Reloader:
    def __init__(self, cfg: FunctionConfig, bus: Bus | None = None, *, watch: bool = True,
                 settle_s: float = SETTLE_S) -> None:
        self._cfg = cfg
        self.bus = bus or Bus()
        self.builder: Builder = builder_for(cfg, self.bus)
        self.watch = watch
        self.settle_s = settle_s
        self.last_build: BuildResult | None = None
        self.last_reload: ReloadFinished | None = None
        self._current: Function | None = None
        self._open = asyncio.Event()  # closed while a reload is under way
        self._open.set()
        self._pending: set[str] = set()
        self._saved_at: float | None = None
        self._reloads: set[asyncio.Task[None]] = set()
        self._parked: set[asyncio.Task[InvocationRecord]] = set()
        self._old: dict[Function, asyncio.Task[None]] = {}
        self._watcher: Watcher | None = None
        self._follow: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self._cfg.name

    @property
    def cfg(self) -> FunctionConfig:
        return self._cfg

    @property
    def current(self) -> Function | None:
        return self._current

    @property
    def reloading(self) -> bool:
        return not self._open.is_set()

    # ---- lifecycle ----

    async def start(self) -> BuildResult:
        """Watch (when asked), build once (when the function builds), and serve. After a
        failed first build nothing serves until a save fixes it: invokes are refused."""
        if self.watch:
            flt = WatchFilter(self._cfg.code_dir, self._cfg.watch_include,
                              self._cfg.watch_exclude, BUILD_OUTPUTS.get(self.builder.kind, ()),
                              self._cfg.events_dir)
            self._watcher = Watcher(flt, self._cfg.layers)
            await self._watcher.start()  # before the build: a save made during it still counts
        self.last_build = await self.builder.build()
        if self.last_build.ok:
            self._current = Function(self._cfg, self.bus)
        if self._watcher is not None:
            self._follow = asyncio.create_task(self._follow_changes(),
                                               name=f"reload-watch-{self.name}")
            self._follow.add_done_callback(self._worker_done)
        return self.last_build

    async def close(self) -> None:
        """Stop everything at once, even mid-invoke; nothing may outlive the workbench."""
        if self._watcher is not None:
            await self._watcher.stop()
        tasks = [t for t in (self._follow, *self._reloads, *self._parked, *self._old.values())
                 if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=10)
        functions = [*self._old, *([self._current] if self._current else [])]
        self._old.clear()
        self._current = None
        await asyncio.gather(*(f.close() for f in functions))

    # ---- invoking ----

    def start_invoke(self, req: InvokeRequest, rid: str | None = None) -> InvocationHandle:
        current = self._current
        if current is not None and self._open.is_set():
            return current.start_invoke(req, rid)
        if current is None and self._open.is_set():
            raise self._refusal()
        return self._park(req, rid or str(uuid.uuid4()))

    async def invoke(self, req: InvokeRequest) -> InvocationRecord:
        return await self.start_invoke(req).record

    def _park(self, req: InvokeRequest, rid: str) -> InvocationHandle:
        answer: asyncio.Future[InvokeResult] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(self._when_open(req, rid, answer), name=f"invoke-{rid}")
        self._parked.add(task)
        task.add_done_callback(self._parked.discard)
        return InvocationHandle(rid, answer, task)

    async def _when_open(self, req: InvokeRequest, rid: str,
                         answer: asyncio.Future[InvokeResult]) -> InvocationRecord:
        try:
            await self._open.wait()
            if self._current is None:
                raise self._refusal()
            handle = self._current.start_invoke(req, rid)
            handle.answer.add_done_callback(lambda f: copy_outcome(f, answer))
            return await handle.record
        except BaseException as exc:
            if not answer.done():
                if isinstance(exc, asyncio.CancelledError):
                    doc = P.platform_error("Runtime.Unknown", "Invocation was cancelled", rid)
                    answer.set_result(InvokeResult(rid, P.json_body(doc).rstrip(b"\n"),
                                                   function_error=True))
                else:
                    answer.set_exception(exc)
            raise

    def _refusal(self) -> ServiceError:
        return ServiceError(409, "ResourceConflictException",
                            f"{self.name} has no successful build to run yet; fix the code and "
                            "save (the build's output is in the log)")

    # ---- reloading ----

    def changed(self, paths: Iterable[str]) -> None:
        """Files changed (relative to the code folder): reload onto them."""
        paths = set(paths)
        self._pending |= paths
        self._saved_at = max(self._saved_at or 0.0, self._save_time(paths))
        self.bus.emit(ChangeDetected(self.name, tuple(sorted(paths))))
        self._begin()

    async def reload_now(self) -> ReloadFinished | None:
        """Rebuild and restart on the code as it is, without a change."""
        self._saved_at = max(self._saved_at or 0.0, time.time())
        task = self._begin()
        await asyncio.wait({task})
        while self._reloads:  # a save meanwhile took over: wait for the newest
            await asyncio.wait(set(self._reloads))
        return self.last_reload

    async def force_cold(self) -> None:
        """The next invoke starts cold on the same code (no change, no eager init)."""
        await self._open.wait()
        if self._current is not None:
            old, self._current = self._current, Function(self._cfg, self.bus)
            self._retire(old)

    def _begin(self) -> asyncio.Task[None]:
        self._open.clear()
        for task in self._reloads:
            task.cancel()  # a newer save: that build and that environment are stale
        task = asyncio.create_task(self._reload(), name=f"reload-{self.name}")
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)
        task.add_done_callback(self._worker_done)
        return task

    async def _reload(self) -> None:
        me = asyncio.current_task()
        earlier = {t for t in self._reloads if t is not me}
        if earlier:  # their builds killed and their environments stopped first
            await asyncio.wait(earlier)
        if self.builder.needed and self.settle_s > 0:
            await asyncio.sleep(self.settle_s)
        build_ms: float | None = None
        if self.builder.needed:
            self.last_build = result = await self.builder.build()
            build_ms = result.duration_ms
            if not result.ok:
                self._finish(build_ms, None, _build_error(result))
                return
        if self._cfg.family == "python":
            _forget_bytecode(self._cfg.code_dir, self._pending)
        try:
            fresh = Function(self._cfg, self.bus)
        except ConfigError as exc:
            self._finish(build_ms, None, str(exc))
            return
        try:
            outcome = await fresh.prewarm()
        except BaseException:
            await asyncio.shield(fresh.close())
            raise
        if not outcome.ok:
            await asyncio.shield(fresh.close())
            self._finish(build_ms, outcome.init_ms, _init_error(outcome))
            return
        old, self._current = self._current, fresh
        self._finish(build_ms, outcome.init_ms, None)
        if old is not None:
            self._retire(old)

    def _finish(self, build_ms: float | None, init_ms: float | None, error: str | None) -> None:
        saved_at = self._saved_at or time.time()
        event = ReloadFinished(self.name, tuple(sorted(self._pending)), build_ms, init_ms,
                               (time.time() - saved_at) * 1000, error is None, error)
        self._pending.clear()
        self._saved_at = None
        self.last_reload = event
        self._open.set()
        self.bus.emit(event)

    def _retire(self, old: Function) -> None:
        """The old version finishes what it is running, then its environment is shut down."""
        async def retire() -> None:
            await old.idle()
            await old.close()
            self._old.pop(old, None)

        task = asyncio.create_task(retire(), name=f"retire-{self.name}")
        self._old[old] = task
        task.add_done_callback(self._worker_done)

    def _save_time(self, paths: set[str]) -> float:
        """When the newest of the files was written: a save's own time, not the watcher's."""
        now = time.time()
        newest = 0.0
        for rel in paths:
            try:
                newest = max(newest, (self._cfg.code_dir / rel).stat().st_mtime)
            except OSError:
                continue
        return newest if now - SAVE_CLOCK_SLACK_S < newest <= now else now

    async def _follow_changes(self) -> None:
        assert self._watcher is not None
        async for paths in self._watcher.changes():
            self.changed(paths)

    def _worker_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        self.bus.emit(WorkerFailed(self.name, task.get_name(), f"{type(exc).__name__}: {exc}"))
        if task in self._reloads or task.get_name().startswith("reload-"):
            self._open.set()  # never leave invokes waiting on a reload that died


def _init_error(outcome: InitOutcome) -> str:
    try:
        doc = json.loads(outcome.error_body)
        return f"{doc.get('errorType', outcome.error_type)}: {doc.get('errorMessage', '')}"
    except (ValueError, AttributeError):
        return f"init failed: {outcome.error_type}"


def _build_error(result: BuildResult) -> str:
    if result.exit_code:
        return f"build failed (exit status {result.exit_code}); its output is in the log"
    lines = [line for line in result.output_tail.splitlines() if line.strip()]
    return f"build failed: {lines[-1]}" if lines else "build failed"


def _forget_bytecode(code_dir: Path, paths: Iterable[str]) -> None:
    """Python trusts a .pyc whose source has the same size and mtime in whole seconds: an
    edit of the same length within the same second would run the old code."""
    for rel in paths:
        if rel.endswith(".py"):
            source = code_dir / rel
            for cached in (source.parent / "__pycache__").glob(f"{source.stem}.*.pyc"):
                cached.unlink(missing_ok=True)
