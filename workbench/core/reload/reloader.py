"""Live reload: a function that follows its code as it is saved.

A Reloader owns one `Function` per version of the code. A change set (from the watcher, or
`reload_now()`) closes the gate, builds when the function builds, starts a new Function's
environment eagerly (`prewarm`), then swaps it in at once and opens the gate: the first invoke
after a save is warm and runs the new code. Invokes that arrive while the gate is closed wait
for it; an invoke already running finishes on the old Function, which is closed once idle.
A failed build or init never takes the working function away: the old one keeps serving and
the failure is reported. A newer change set cancels the reload in progress (its build is
killed, its environment stopped) and starts over with both sets of paths.

A version of the code is one `Function`, or a `FunctionPool` when the function's concurrency
allows several environments: a reload swaps the whole pool. Given `resolve`, a save of one of
the function's configuration files (workbench.toml, pyproject.toml, env files, its template)
reads the configuration again, and the new version starts with it; a configuration that
does not resolve is reported like a failed build, and the old version keeps serving.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

from workbench.core import protocol as P
from workbench.core.bus import Bus, ChangeDetected, ReloadFinished, WorkerFailed
from workbench.core.config.function import ConfigError, FunctionConfig
from workbench.core.engine.environment import InitOutcome
from workbench.core.engine.function import Function, InvocationHandle, copy_outcome
from workbench.core.engine.payloads import ServiceError
from workbench.core.engine.pool import FunctionPool
from workbench.core.record import InvocationRecord, InvokeRequest, InvokeResult
from workbench.core.reload.builders import Builder, BuildResult, builder_for
from workbench.core.reload.dependencies import dependencies_for, install_then_build
from workbench.core.reload.watcher import BUILD_OUTPUTS, Watcher, WatchFilter

SETTLE_S = 0.05  # before a build: the rest of a burst of saves joins the same build
SAVE_CLOCK_SLACK_S = 2.0  # a file time older than this (cp -p, git) is not the save's time

Version = Function | FunctionPool  # one version of the code: an environment, or a pool of them


def version_for(cfg: FunctionConfig, bus: Bus) -> Version:
    """One environment, or a pool of them when the function's concurrency allows more."""
    return FunctionPool(cfg, bus) if cfg.concurrency > 1 else Function(cfg, bus)


class Reloader:
    def __init__(
        self,
        cfg: FunctionConfig,
        bus: Bus | None = None,
        *,
        watch: bool = True,
        settle_s: float = SETTLE_S,
        resolve: Callable[[], FunctionConfig] | None = None,
    ) -> None:
        self._cfg = cfg
        self._resolve = resolve  # reads the configuration again (blocking; run in a thread)
        self._config_dirty = False  # a configuration file changed since the last good reload
        self.bus = bus or Bus()
        self.builder: Builder = builder_for(cfg, self.bus)
        self.watch = watch
        self.settle_s = settle_s
        self.last_build: BuildResult | None = None
        self.last_reload: ReloadFinished | None = None
        self._current: Version | None = None
        self._open = asyncio.Event()  # closed while a reload is under way
        self._open.set()
        self._pending: set[str] = set()
        self._unserved: set[str] = set()  # changed since the version now serving was made
        self._saved_at: float | None = None
        self._reloads: set[asyncio.Task[None]] = set()
        self._parked: set[asyncio.Task[InvocationRecord]] = set()
        self._old: dict[Version, asyncio.Task[None]] = {}
        self._watcher: Watcher | None = None
        self._follow: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self._cfg.name

    @property
    def cfg(self) -> FunctionConfig:
        return self._cfg

    @property
    def current(self) -> Version | None:
        return self._current

    @property
    def reloading(self) -> bool:
        return not self._open.is_set()

    # ---- lifecycle ----

    async def start(self) -> BuildResult:
        """Watch (when asked), build once (when the function builds), and serve. After a
        failed first build nothing serves until a save fixes it: invokes are refused."""
        if self.watch:
            files = self._cfg.config_files if self._resolve is not None else ()
            self._watcher = Watcher(
                self._filter(self._cfg, self.builder), self._cfg.layers, files=files
            )
            await self._watcher.start()  # before the build: a save made during it still counts
        self.last_build = await install_then_build(self._cfg, self.bus, self.builder)
        if self.last_build.ok:
            self._current = version_for(self._cfg, self.bus)
        if self._watcher is not None:
            self._follow = asyncio.create_task(
                self._follow_changes(), name=f"reload-watch-{self.name}"
            )
            self._follow.add_done_callback(self._worker_done)
        return self.last_build

    async def close(self) -> None:
        """Stop everything at once, even mid-invoke; nothing may outlive the workbench."""
        if self._watcher is not None:
            await self._watcher.stop()
        tasks = [
            t
            for t in (self._follow, *self._reloads, *self._parked, *self._old.values())
            if t is not None and not t.done()
        ]
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

    async def _when_open(
        self, req: InvokeRequest, rid: str, answer: asyncio.Future[InvokeResult]
    ) -> InvocationRecord:
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
                    answer.set_result(
                        InvokeResult(rid, P.json_body(doc).rstrip(b"\n"), function_error=True)
                    )
                else:
                    answer.set_exception(exc)
            raise

    def _refusal(self) -> ServiceError:
        return ServiceError(
            409,
            "ResourceConflictException",
            f"{self.name} has no successful build to run yet; fix the code and "
            "save (the build's output is in the log)",
        )

    # ---- reloading ----

    def changed(self, paths: Iterable[str]) -> None:
        """Files changed (relative to the code folder): reload onto them."""
        paths = set(paths)
        self._pending |= paths
        if self._resolve is not None and paths & self._config_names():
            self._config_dirty = True
        self._saved_at = max(self._saved_at or 0.0, self._save_time(paths))
        self.bus.emit(ChangeDetected(self.name, tuple(sorted(paths))))
        self._begin()

    async def reload_now(self) -> ReloadFinished | None:
        """Rebuild and restart on the code (and configuration) as it is, without a change."""
        self._config_dirty = self._resolve is not None
        self._saved_at = max(self._saved_at or 0.0, time.time())
        task = self._begin()
        await asyncio.wait({task})
        while self._reloads:  # a save meanwhile took over: wait for the newest
            await asyncio.wait(set(self._reloads))
        return self.last_reload

    async def force_cold(self) -> None:
        """The next invoke starts cold on the same code (no change, no eager init)."""
        await self._open.wait()
        self.force_cold_now()

    def force_cold_now(self) -> bool:
        """`force_cold` at once, when no reload is under way (False: one is, try later):
        an invoke asked for right after it is sure to start cold."""
        if not self._open.is_set():
            return False
        if self._current is not None:
            old, self._current = self._current, version_for(self._cfg, self.bus)
            self._retire(old)
        return True

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
        cfg, builder = self._cfg, self.builder
        if self._config_dirty:
            try:
                cfg = await self._reread()
            except ConfigError as exc:
                self._finish(None, None, str(exc))
                return
            if cfg != self._cfg:
                builder = builder_for(cfg, self.bus)
        deps = dependencies_for(cfg, self.bus)
        installing = deps is not None and deps.needed
        if (builder.needed or installing) and self.settle_s > 0:
            await asyncio.sleep(self.settle_s)
        build_ms: float | None = None
        if builder.needed or installing:
            self.last_build = result = await install_then_build(cfg, self.bus, builder, deps)
            build_ms = result.duration_ms
            if not result.ok:
                self._finish(build_ms, None, _build_error(result))
                return
        if cfg.family == "python":
            _forget_bytecode(cfg.code_dir, self._pending | self._unserved)
        try:
            fresh = version_for(cfg, self.bus)
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
        if old is not None:
            self._retire(old)
        if cfg != self._cfg:
            await asyncio.shield(self._adopt(cfg, builder))
        self._config_dirty = False
        self._finish(build_ms, outcome.init_ms, None)

    async def _reread(self) -> FunctionConfig:
        """The configuration as the files now say; a function cannot move or be renamed
        while it is served (callers know it by name, the watcher by its folder)."""
        assert self._resolve is not None
        try:
            cfg = await asyncio.to_thread(self._resolve)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the configuration of {self.name}: {exc}") from None
        for what, old, new in (
            ("name", self.name, cfg.name),
            ("code folder", self._cfg.code_dir, cfg.code_dir),
        ):
            if old != new:
                raise ConfigError(
                    f"the {what} of {self.name} changed ({old} -> {new}); "
                    "restart workbench to serve it under the new one"
                )
        return cfg

    async def _adopt(self, cfg: FunctionConfig, builder: Builder) -> None:
        """The new configuration serves: from now on it is the one built and watched."""
        self._cfg, self.builder = cfg, builder
        if self._watcher is not None:
            self._watcher.filter = self._filter(cfg, builder)
            await self._watcher.watch_layers(cfg.layers)
            await self._watcher.watch_files(cfg.config_files)

    def _filter(self, cfg: FunctionConfig, builder: Builder) -> WatchFilter:
        return WatchFilter(
            cfg.code_dir,
            cfg.watch_include,
            cfg.watch_exclude,
            BUILD_OUTPUTS.get(builder.kind, ()),
            cfg.events_dir,
        )

    def _config_names(self) -> set[str]:
        """The configuration files as the watcher names them: relative to the code folder."""
        return {os.path.relpath(p, self._cfg.code_dir) for p in self._cfg.config_files}

    def _finish(self, build_ms: float | None, init_ms: float | None, error: str | None) -> None:
        saved_at = self._saved_at or time.time()
        event = ReloadFinished(
            self.name,
            tuple(sorted(self._pending)),
            build_ms,
            init_ms,
            (time.time() - saved_at) * 1000,
            error is None,
            error,
        )
        self._unserved = set() if error is None else self._unserved | self._pending
        self._pending.clear()
        self._saved_at = None
        self.last_reload = event
        self._open.set()
        self.bus.emit(event)

    def _retire(self, old: Version) -> None:
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
