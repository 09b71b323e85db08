"""A function as the service runs it: one invocation at a time per environment, cold and warm
starts, timeouts, crashes and init failures, with the platform's log lines and billing."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from workbench.core import protocol as P
from workbench.core.bus import Bus, InvocationFinished, InvocationStarted
from workbench.core.config import FunctionConfig
from workbench.core.environment import Environment, InitOutcome, LogCollector
from workbench.core.record import InvocationRecord, InvokeRequest, InvokeResult
from workbench.core.runtime_api import PendingInvoke
from workbench.core.runtimes import launch_for


@dataclass(slots=True)
class InvocationHandle:
    request_id: str
    answer: asyncio.Future[InvokeResult]  # as soon as the runtime answers
    record: asyncio.Task[InvocationRecord]  # when the runtime is ready for the next event


@dataclass(slots=True)
class _Ending:
    result: InvokeResult
    status: str
    duration_ms: float
    reset: bool


class Invocable(Protocol):
    """What the Invoke API and the CLI need of a function: a Function, or a Reloader that
    swaps Functions as the code changes."""

    @property
    def name(self) -> str: ...

    @property
    def cfg(self) -> FunctionConfig: ...

    def start_invoke(self, req: InvokeRequest) -> InvocationHandle: ...

    async def invoke(self, req: InvokeRequest) -> InvocationRecord: ...

    async def close(self) -> None: ...


Runner = Callable[[InvokeRequest, str, "asyncio.Future[InvokeResult]"],
                  Coroutine[Any, Any, InvocationRecord]]


def start_invocation(run: Runner, req: InvokeRequest, rid: str | None,
                     tasks: set[asyncio.Task[InvocationRecord]]) -> InvocationHandle:
    """The handle every invoker returns: a request id, the answer future `run` settles as soon
    as the runtime answers, and the task that ends with the record (kept in `tasks`, so close()
    can cancel what is still running)."""
    rid = rid or str(uuid.uuid4())
    answer: asyncio.Future[InvokeResult] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(run(req, rid, answer), name=f"invoke-{rid}")
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    return InvocationHandle(rid, answer, task)


class Function:
    def __init__(self, cfg: FunctionConfig, bus: Bus | None = None) -> None:
        self.cfg = cfg
        self.bus = bus or Bus()
        self.launch = launch_for(cfg)
        self._lock = asyncio.Lock()
        self._env: Environment | None = None
        self._tasks: set[asyncio.Task[InvocationRecord]] = set()

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
        return start_invocation(self._invoke, req, rid, self._tasks)

    async def invoke(self, req: InvokeRequest) -> InvocationRecord:
        return await self.start_invoke(req).record

    async def prewarm(self) -> InitOutcome:
        """Start an environment now, outside any invoke, so that the next invoke is warm (a
        reload's new code). Its init is reported here (INIT_REPORT), not in an invoke's REPORT;
        a failed init leaves no environment behind."""
        async with self._lock:
            env = self._env
            if env is not None and not env.stopped and not env.exited.done():
                return InitOutcome(True, 0.0)
            env = await self._fresh_env()
            outcome = await env.init("init", P.INIT_TIMEOUT_S)
            env.platform(P.init_report_line(outcome.init_ms, "init", outcome.status,
                                            outcome.error_type))
            if not outcome.ok:
                await env.stop("failure")
                self._env = None
            return outcome

    async def idle(self) -> None:
        """Return when no invocation is running or waiting here."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def close(self) -> None:
        """Stop at once, even mid-invoke (quit, Ctrl+C): nothing may outlive the workbench."""
        env, self._env = self._env, None
        if env is not None:
            await env.stop("spindown")
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)

    # ---- one invocation ----

    async def _invoke(self, req: InvokeRequest, rid: str,
                      answer: asyncio.Future[InvokeResult]) -> InvocationRecord:
        try:
            async with self._lock:
                return await self._invoke_locked(req, rid, answer)
        except BaseException as exc:
            if not answer.done():
                doc = P.platform_error("Runtime.Unknown", "Invocation was cancelled", rid)
                if isinstance(exc, asyncio.CancelledError):
                    answer.set_result(InvokeResult(rid, P.json_body(doc).rstrip(b"\n"),
                                                   function_error=True))
                else:
                    answer.set_exception(exc)
            raise

    async def _fresh_env(self) -> Environment:
        if self._env is not None:
            await self._env.stop("failure")
        self._env = Environment(self.cfg, self.launch, self.bus)
        return self._env

    async def _invoke_locked(self, req: InvokeRequest, rid: str,
                             answer: asyncio.Future[InvokeResult]) -> InvocationRecord:
        log = LogCollector()
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
                env.platform(P.init_report_line(outcome.init_ms, "init", outcome.status,
                                                outcome.error_type))
                # The service tries INIT once more inside the invoke, under the function timeout.
                env = await self._fresh_env()
                env.collector = log
                outcome = await env.init("invoke", self.cfg.timeout_s, rid)
                suppressed_ms = outcome.init_ms
                if not outcome.ok:
                    return await self._init_failed(env, req, rid, answer, log, started_at, outcome)
        env.collector = log
        env.request_id = rid
        self.bus.emit(InvocationStarted(self.cfg.name, rid, cold))
        env.platform(P.start_line(rid))
        ending = await self._run(env, req, rid, answer, self.cfg.timeout_s - suppressed_ms / 1000)
        if ending.status != "timeout":  # a timeout reports exactly the timeout
            ending.duration_ms += suppressed_ms
        return await self._finish(env, req, rid, log, started_at, cold, init_ms, ending)

    async def _run(self, env: Environment, req: InvokeRequest, rid: str,
                   answer: asyncio.Future[InvokeResult], budget_s: float) -> _Ending:
        assert env.api is not None
        inv = PendingInvoke(rid, req.payload or b"{}", self._next_headers(req, rid, budget_s),
                            answer_to=answer)
        t0 = time.monotonic()
        env.sample_every = 0.005  # children an invoke starts count too: sample densely again
        env.api.dispatch(inv)
        timeout_ms = self.cfg.timeout_s * 1000
        await first_of((inv.answered, env.exited), budget_s)
        if inv.answered.done():
            result = inv.answered.result()
            # The environment stays busy until the runtime asks for the next event.
            left = budget_s - (time.monotonic() - t0)
            await first_of((inv.next_called, env.exited), left)
            status = "error" if result.function_error else "ok"
            if inv.next_called.done():
                return _Ending(result, status, (inv.next_called.result() - t0) * 1000, False)
            if env.exited.done():
                return _Ending(result, status, (time.monotonic() - t0) * 1000, True)
            env.platform(P.timeout_line(rid, self.cfg.timeout_s))
            return _Ending(result, "timeout", timeout_ms, True)
        if env.exited.done():
            env.drain(flush_partial=True)
            detail = P.exit_detail(env.exited.result())
            env.platform(f"RequestId: {rid} Error: {detail}")
            env.platform("Runtime.ExitError")
            result = _error(rid, "Runtime.ExitError", detail)
            answer.set_result(result)
            return _Ending(result, "crash", (time.monotonic() - t0) * 1000, True)
        env.measure_memory()  # before the kill takes the process tree away
        env.platform(P.timeout_line(rid, self.cfg.timeout_s))
        result = _error(rid, "Sandbox.Timedout",
                        f"Task timed out after {self.cfg.timeout_s:.2f} seconds")
        answer.set_result(result)
        return _Ending(result, "timeout", timeout_ms, True)

    def _next_headers(self, req: InvokeRequest, rid: str, budget_s: float) -> dict[str, str]:
        deadline_ms = int((time.time() + budget_s) * 1000)
        headers = {
            "Lambda-Runtime-Aws-Request-Id": rid,
            "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": self.cfg.arn,
            "Content-Type": req.content_type or "application/json",
        }
        optional = {
            "Lambda-Runtime-Trace-Id": req.trace_id,
            "Lambda-Runtime-Client-Context": req.client_context,
            "Lambda-Runtime-Aws-Tenant-Id": req.tenant_id,
        }
        headers.update({k: v for k, v in optional.items() if v})
        return headers

    async def _finish(self, env: Environment, req: InvokeRequest, rid: str, log: LogCollector,
                      started_at: float, cold: bool, init_ms: float | None,
                      ending: _Ending) -> InvocationRecord:
        max_mb = env.measure_runtime_memory()
        env.drain(flush_partial=True)
        env.platform(P.end_line(rid))
        status_field, error_field = None, None
        if ending.status == "timeout":
            status_field = "timeout"
        elif ending.status == "crash":
            status_field, error_field = "error", ending.result.error_type
        billed = P.billed_ms(ending.duration_ms, init_ms)
        env.platform(P.report_line(rid, ending.duration_ms, billed, self.cfg.memory_mb, max_mb,
                                   init_ms, status_field, error_field))
        env.request_id = None
        env.collector = None
        if ending.reset:
            await env.stop("timeout" if ending.status == "timeout" else "failure")
            if self._env is env:
                self._env = None
        return self._record(req, rid, ending.result, ending.status, cold, started_at,
                            ending.duration_ms, billed, init_ms, max_mb, log)

    async def _init_failed(self, env: Environment, req: InvokeRequest, rid: str,
                           answer: asyncio.Future[InvokeResult], log: LogCollector,
                           started_at: float, outcome: InitOutcome) -> InvocationRecord:
        env.platform(P.init_report_line(outcome.init_ms, "invoke", outcome.status,
                                        outcome.error_type))
        result = InvokeResult(rid, outcome.error_body, function_error=True)
        answer.set_result(result)
        max_mb = env.measure_memory()
        await env.stop("failure")
        self._env = None
        env.request_id = rid
        env.collector = log
        self.bus.emit(InvocationStarted(self.cfg.name, rid, True))
        env.platform(P.start_line(rid))
        env.platform(P.end_line(rid))
        status = "timeout" if outcome.status == "timeout" else "error"
        duration = outcome.init_ms
        billed = P.billed_ms(duration, None)
        env.platform(P.report_line(rid, duration, billed, self.cfg.memory_mb, max_mb, None,
                                   status, outcome.error_type))
        return self._record(req, rid, result, status, True, started_at, duration, billed, None,
                            max_mb, log)

    def _record(self, req: InvokeRequest, rid: str, result: InvokeResult, status: str, cold: bool,
                started_at: float, duration_ms: float, billed: int, init_ms: float | None,
                max_mb: int, log: LogCollector) -> InvocationRecord:
        record = InvocationRecord(
            function=self.cfg.name, request_id=rid, request=req, result=result, status=status,
            cold=cold, started_at=started_at, duration_ms=duration_ms, billed_ms=billed,
            init_ms=init_ms, memory_mb=self.cfg.memory_mb, max_memory_mb=max_mb,
            log_lines=list(log.lines), log_truncated=log.truncated)
        self.bus.emit(InvocationFinished(self.cfg.name, record))
        return record


async def first_of(futures: tuple[asyncio.Future[Any], ...], timeout: float) -> None:
    """Return when any of `futures` is done or `timeout` passes. asyncio.wait does the same
    with sets, a waiter and a timer handle more: this is on every invoke's path."""
    if any(f.done() for f in futures):
        return
    loop = asyncio.get_running_loop()
    woken: asyncio.Future[None] = loop.create_future()

    def wake(_: object = None) -> None:
        if not woken.done():
            woken.set_result(None)

    timer = loop.call_later(max(timeout, 0), wake)
    for f in futures:
        f.add_done_callback(wake)
    try:
        await woken
    finally:
        timer.cancel()
        for f in futures:
            f.remove_done_callback(wake)


def copy_outcome(source: asyncio.Future[InvokeResult],
                 target: asyncio.Future[InvokeResult]) -> None:
    """Carry one future's outcome to another (an invocation answered through a wrapper: a
    pool slot, a reloaded Function), unless the target was settled already."""
    if target.done():
        return
    if source.cancelled():
        target.cancel()
        return
    exc = source.exception()
    if exc is not None:
        target.set_exception(exc)
    else:
        target.set_result(source.result())


def _error(rid: str, error_type: str, detail: str) -> InvokeResult:
    body = P.json_body(P.platform_error(error_type, detail, rid)).rstrip(b"\n")
    return InvokeResult(rid, body, function_error=True)


def log_result_header(record: InvocationRecord) -> str:
    """X-Amz-Log-Result: base64 of the last 4 KB of the invocation's log."""
    lines = record.log_lines
    start = P.start_line(record.request_id)
    # the invocation's own log, from START: init output belongs to the environment
    first = next((i for i in range(len(lines) - 1, -1, -1) if lines[i] == start), 0)
    data = "".join(line + "\n" for line in lines[first:]).encode()[-P.LOG_TAIL_BYTES:]
    return base64.b64encode(data).decode()
