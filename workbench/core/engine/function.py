"""A function as the service runs it: one invocation at a time per environment, cold and warm
starts, timeouts, crashes and init failures, with the platform's log lines and billing.

A warm invoke starts synchronously, from inside start_invoke (the Invoke API's handler) or, when
the environment is busy, from inside the end of the invocation before it (the runtime's /next),
and runs as callbacks (invocation.Run); only a cold start, which has to wait, is a task.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from workbench.core import protocol as P
from workbench.core.bus import Bus, InvocationFinished, InvocationStarted
from workbench.core.config.function import FunctionConfig
from workbench.core.engine.environment import (
    Environment,
    InitOutcome,
    LogCollector,
    collector_for,
)
from workbench.core.engine.gorpc import environment_for
from workbench.core.engine.invocation import (
    InvocationHandle,
    Run,
    copy_outcome,
    log_result_header,
    make_record,
    new_request_id,
    settle,
)
from workbench.core.record import InvocationRecord, InvokeRequest, InvokeResult
from workbench.core.runtimes import launch_for
from workbench.core.vocab import Status

__all__ = [
    "Function",
    "Invocable",
    "InvocationHandle",
    "copy_outcome",
    "log_result_header",
    "start_invocation",
]


class Invocable(Protocol):
    """What the Invoke API and the CLI need of a function: a Function, or a Reloader that
    swaps Functions as the code changes."""

    @property
    def name(self) -> str: ...

    @property
    def cfg(self) -> FunctionConfig: ...

    def start_invoke(self, req: InvokeRequest, rid: str | None = None) -> InvocationHandle: ...

    async def invoke(self, req: InvokeRequest) -> InvocationRecord: ...

    async def close(self) -> None: ...


Runner = Callable[
    [InvokeRequest, str, "asyncio.Future[InvokeResult]"], Coroutine[Any, Any, InvocationRecord]
]


def start_invocation(
    run: Runner, req: InvokeRequest, rid: str | None, tasks: set[asyncio.Task[InvocationRecord]]
) -> InvocationHandle:
    """A handle for an invoker that runs each invocation as a task (a pool): the answer
    future `run` settles as soon as the runtime answers, and the task that ends with the
    record (kept in `tasks`, so close() can cancel what is still running)."""
    rid = rid or new_request_id()
    answer: asyncio.Future[InvokeResult] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(run(req, rid, answer), name=f"invoke-{rid}")
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    return InvocationHandle(rid, answer, task)


Waiter = Callable[[bool], None]  # called with True: the turn is yours; False: given up


class Turn:
    """One invocation at a time in an environment, in arrival order. Unlike asyncio.Lock, a
    waiter is a plain callback, called the moment the turn is given back: the next warm invoke
    starts from inside the last one's /next, with no task and no loop turn in between."""

    def __init__(self) -> None:
        self.busy = False
        self._waiting: collections.deque[Waiter] = collections.deque()

    def request(self, waiter: Waiter) -> None:
        if self.busy:
            self._waiting.append(waiter)
        else:
            self.busy = True
            waiter(True)

    async def take(self) -> None:
        got: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake(go: bool) -> None:
            if got.done():  # given up meanwhile (cancelled): pass the turn on
                if go:
                    self.give_back()
            elif go:
                got.set_result(None)
            else:
                got.cancel()

        self.request(wake)
        try:
            await got
        except asyncio.CancelledError:
            if got.done() and not got.cancelled():
                self.give_back()  # handed over just as this waiter was cancelled
            raise

    def give_back(self) -> None:
        if self._waiting:
            self._waiting.popleft()(True)  # stays busy: the turn passes straight on
        else:
            self.busy = False

    def give_up_waiting(self) -> None:
        waiting, self._waiting = self._waiting, collections.deque()
        for waiter in waiting:
            waiter(False)


class Function:
    def __init__(self, cfg: FunctionConfig, bus: Bus | None = None) -> None:
        self.cfg = cfg
        self.bus = bus or Bus()
        self.launch = launch_for(cfg)
        self._turn = Turn()
        self._env: Environment | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._open: set[asyncio.Future[InvocationRecord]] = set()  # records still to come

    @property
    def name(self) -> str:
        return self.cfg.name

    @property
    def warm(self) -> bool:
        """An environment is up and its runtime is waiting for events."""
        env = self._env
        return env is not None and env.ready and not env.stopped

    # ---- public ----

    def start_invoke(self, req: InvokeRequest, rid: str | None = None) -> InvocationHandle:
        handle = InvocationHandle.new(rid or new_request_id())
        self._open.add(handle.record)
        self._turn.request(
            lambda go: (
                self._start(req, handle) if go else self._broken(handle, asyncio.CancelledError())
            )
        )
        return handle

    async def invoke(self, req: InvokeRequest) -> InvocationRecord:
        return await self.start_invoke(req).record

    async def prewarm(self) -> InitOutcome:
        """Start an environment now, outside any invoke, so that the next invoke is warm (a
        reload's new code). Its init is reported here (INIT_REPORT), not in an invoke's REPORT;
        a failed init leaves no environment behind."""
        await self._turn.take()
        try:
            env = self._env
            if env is not None and not env.stopped and not env.exited.done():
                return InitOutcome(True, 0.0)
            env = await self._fresh_env()
            outcome = await env.init("init", P.INIT_TIMEOUT_S)
            env.platform(
                P.init_report_line(outcome.init_ms, "init", outcome.status, outcome.error_type)
            )
            if not outcome.ok:
                await env.stop("failure")
                self._env = None
            return outcome
        finally:
            self._turn.give_back()

    async def idle(self) -> None:
        """Return when no invocation is running or waiting here."""
        while self._open:
            await asyncio.wait(set(self._open))

    async def close(self) -> None:
        """Stop at once, even mid-invoke (quit, Ctrl+C): nothing may outlive the workbench."""
        env, self._env = self._env, None
        self._turn.give_up_waiting()
        if env is not None:
            await env.stop("spindown")  # a run in progress ends as the runtime exits
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)

    # ---- what a Run needs (invocation.Owner) ----

    def track(self, work: Coroutine[Any, Any, None], handle: InvocationHandle) -> None:
        """Every tracked task holds the turn: one that ends early (cancelled, broken) hands
        it on, and fails its invocation."""
        task = asyncio.create_task(work, name=f"invoke-{handle.request_id}")
        self._tasks.add(task)
        task.add_done_callback(lambda t: self._tracked_done(t, handle))

    def _tracked_done(self, task: asyncio.Task[None], handle: InvocationHandle) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            exc: BaseException | None = asyncio.CancelledError()
        else:
            exc = task.exception()
        if exc is not None:
            self._broken(handle, exc)
            self._turn.give_back()

    def _broken(self, handle: InvocationHandle, exc: BaseException) -> None:
        handle.fail(exc)
        record = handle.record
        self._open.discard(record)
        if not record.done():
            if isinstance(exc, asyncio.CancelledError):
                record.cancel()
            else:
                record.set_exception(exc)

    def run_over(
        self, env: Environment, reset: bool, handle: InvocationHandle, record: InvocationRecord
    ) -> None:
        if reset and self._env is env:
            self._env = None
        self._turn.give_back()
        self._done(handle, record)

    def _done(self, handle: InvocationHandle, record: InvocationRecord) -> None:
        self._open.discard(handle.record)
        if not handle.record.done():
            handle.record.set_result(record)

    # ---- starting, with the turn ----

    def _start(self, req: InvokeRequest, handle: InvocationHandle) -> None:
        """A warm environment takes the event now; anything else (a cold start, a runtime
        that went away) is a task. Runs inside whatever gave the turn back, so it never
        raises: a failure is the invocation's."""
        env = self._env
        try:
            if env is not None and env.ready and not env.stopped and not env.exited.done():
                Run(
                    self, self.cfg, env, req, handle, collector_for(self.cfg), time.time(), False
                ).begin()
            else:
                self.track(self._start_cold(req, handle), handle)
        except Exception as exc:
            self._broken(handle, exc)
            self._turn.give_back()

    async def _fresh_env(self) -> Environment:
        if self._env is not None:
            await self._env.stop("failure")
        self._env = environment_for(self.cfg, self.launch, self.bus)
        return self._env

    async def _start_cold(self, req: InvokeRequest, handle: InvocationHandle) -> None:
        """Bring up an environment and hand the event to a Run; when INIT fails twice, the
        invocation is over, recorded as that failure."""
        rid = handle.request_id
        log = collector_for(self.cfg)
        started_at = time.time()
        env = self._env
        if env is not None and (env.exited.done() or env.stopped):
            env = None  # the runtime went away while idle: the next invoke starts cold
        cold = env is None
        init_ms: float | None = None
        suppressed_ms = 0.0
        if env is None:
            env = await self._fresh_env()
            env.collector = log
            outcome = await env.init("init", P.INIT_TIMEOUT_S, rid)
            if outcome.ok:
                init_ms = outcome.init_ms
            else:
                env.platform(
                    P.init_report_line(outcome.init_ms, "init", outcome.status, outcome.error_type)
                )
                # The service tries INIT once more inside the invoke, under the function timeout.
                env = await self._fresh_env()
                env.collector = log
                outcome = await env.init("invoke", self.cfg.timeout_s, rid)
                suppressed_ms = outcome.init_ms
                if not outcome.ok:
                    record = await self._init_failed(env, req, handle, log, started_at, outcome)
                    self._turn.give_back()
                    self._done(handle, record)
                    return
        Run(self, self.cfg, env, req, handle, log, started_at, cold, init_ms, suppressed_ms).begin()

    async def _init_failed(
        self,
        env: Environment,
        req: InvokeRequest,
        handle: InvocationHandle,
        log: LogCollector,
        started_at: float,
        outcome: InitOutcome,
    ) -> InvocationRecord:
        rid = handle.request_id
        env.platform(
            P.init_report_line(outcome.init_ms, "invoke", outcome.status, outcome.error_type)
        )
        result = InvokeResult(rid, outcome.error_body, function_error=True)
        settle(self.bus, self.cfg, req, handle, result, started_at, True, None)
        max_mb = env.measure_memory()
        await env.stop("failure")
        self._env = None
        env.request_id = rid
        env.collector = log
        self.bus.emit(InvocationStarted(self.cfg.name, rid, True, env.id))
        env.platform(P.start_line(rid))
        env.platform(P.end_line(rid))
        status: Status = "timeout" if outcome.status == "timeout" else "error"
        duration = outcome.init_ms
        billed = P.billed_ms(duration, None)
        env.platform(
            P.report_line(
                rid, duration, billed, self.cfg.memory_mb, max_mb, None, status, outcome.error_type
            )
        )
        record = make_record(
            self.cfg,
            req,
            rid,
            result,
            status,
            True,
            started_at,
            duration,
            billed,
            None,
            max_mb,
            log,
        )
        self.bus.emit(InvocationFinished(self.cfg.name, record))
        return record
