"""One invocation's run phase, from the event handed to the runtime to its record.

Driven by callbacks, not a task: the Runtime API calls `answered` and `next_called` from the
runtime's own requests, the environment calls `exited`, a timer calls `deadline`. A warm invoke
is then three socket reads and three writes in the workbench, with nothing scheduled between
them: the caller's answer is written from inside the runtime's /response, and the record is
made inside its next /next (bench/invoke_overhead.py measures what that saves). Just before the
answer is settled, InvocationAnswered goes out on the bus, so that history can journal it
first (settle()).
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from workbench.core import protocol as P
from workbench.core.bus import Bus, InvocationAnswered, InvocationFinished, InvocationStarted
from workbench.core.config.function import FunctionConfig
from workbench.core.engine.environment import Environment, LogCollector
from workbench.core.engine.runtime_api import PendingInvoke
from workbench.core.record import InvocationRecord, InvokeRequest, InvokeResult
from workbench.core.vocab import Status

AnswerListener = Callable[["asyncio.Future[InvokeResult]"], None]


class _RequestIds:
    """Version 4 UUIDs, as the service's request ids are, from a pool of random bytes: one
    getrandom() per 256 invokes instead of one each (uuid.uuid4() costs a syscall and ~5 us)."""

    def __init__(self) -> None:
        self._pool = b""
        self._at = 0

    def random_hex(self) -> str:
        """32 random hex digits from the pool."""
        if self._at >= len(self._pool):
            self._pool, self._at = os.urandom(16 * 256), 0
        at = self._at
        self._at = at + 16
        return self._pool[at : at + 16].hex()

    def __call__(self) -> str:
        h = self.random_hex()
        variant = "89ab"[int(h[16], 16) & 3]
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-{h[20:]}"

    def trace_id(self) -> str:
        """An X-Ray trace header for an invocation whose caller sent none, as the service
        makes one: a root of version 1, the epoch seconds in hex and 96 random bits, a
        64-bit parent id, not sampled."""
        h = self.random_hex()
        more = self.random_hex()
        return f"Root=1-{int(time.time()):08x}-{h[:24]};Parent={more[:16]};Sampled=0"


new_request_id = _RequestIds()


@dataclass(slots=True, eq=False)
class InvocationHandle:
    """What starting an invocation gives back: its request id, the answer (as soon as the
    runtime answers) and the record (when the runtime is ready for the next event).

    `direct` holds listeners that the invoker calls the moment it settles the answer through
    settle()/fail(); None for a handle whose answer is only ever set on the future (a wrapper's),
    whose listeners are then the future's callbacks."""

    request_id: str
    answer: asyncio.Future[InvokeResult]
    record: asyncio.Future[InvocationRecord]
    direct: list[AnswerListener] | None = None

    @classmethod
    def new(cls, request_id: str) -> InvocationHandle:
        loop = asyncio.get_running_loop()
        return cls(request_id, loop.create_future(), loop.create_future(), [])

    def when_answered(self, listener: AnswerListener) -> None:
        """Call `listener` with the answer future once it is settled."""
        if self.answer.done():
            listener(self.answer)
        elif self.direct is not None:
            self.direct.append(listener)
        else:
            self.answer.add_done_callback(listener)

    def settle(self, result: InvokeResult) -> None:
        if not self.answer.done():
            self.answer.set_result(result)
            self._tell()

    def fail(self, exc: BaseException) -> None:
        """The invocation broke before it had an answer: cancelled (close(), Ctrl+C) is an
        answer the caller can show; anything else is workbench's own failure."""
        if self.answer.done():
            return
        if isinstance(exc, asyncio.CancelledError):
            self.answer.set_result(
                error_result(self.request_id, "Runtime.Unknown", "Invocation was cancelled")
            )
        else:
            self.answer.set_exception(exc)
        self._tell()

    def _tell(self) -> None:
        listeners, self.direct = self.direct, None
        for listener in listeners or ():
            listener(self.answer)


class Owner(Protocol):
    """What a Run needs of the Function it runs for."""

    def track(self, work: Coroutine[Any, Any, None], handle: InvocationHandle) -> None:
        """Run `work` as a task that close() can cancel, failing `handle` if it breaks."""

    def run_over(
        self, env: Environment, reset: bool, handle: InvocationHandle, record: InvocationRecord
    ) -> None:
        """The invocation is over: the environment is free for the next one (or, reset, gone),
        and `record` is the handle's."""


@dataclass(slots=True)
class Ending:
    result: InvokeResult
    status: Status
    duration_ms: float
    reset: bool


class Run:
    """The run phase of one invocation in one environment; the Owner holds the environment's
    turn for it until run_over()."""

    __slots__ = (
        "budget_s",
        "cfg",
        "cold",
        "env",
        "handle",
        "init_ms",
        "log",
        "over",
        "owner",
        "req",
        "result",
        "started_at",
        "suppressed_ms",
        "t0",
    )

    def __init__(
        self,
        owner: Owner,
        cfg: FunctionConfig,
        env: Environment,
        req: InvokeRequest,
        handle: InvocationHandle,
        log: LogCollector,
        started_at: float,
        cold: bool,
        init_ms: float | None = None,
        suppressed_ms: float = 0.0,
    ) -> None:
        self.owner = owner
        self.cfg = cfg
        self.env = env
        self.req = req
        self.handle = handle
        self.log = log
        self.started_at = started_at
        self.cold = cold
        self.init_ms = init_ms
        self.suppressed_ms = suppressed_ms  # a failed first INIT, retried inside the invoke
        self.budget_s = cfg.timeout_s - suppressed_ms / 1000
        self.result: InvokeResult | None = None
        self.over = False
        self.t0 = 0.0

    def begin(self) -> None:
        env, rid = self.env, self.handle.request_id
        assert env.api is not None
        env.collector = self.log
        env.request_id = rid
        if self.cold:  # what INIT printed belongs before START, and before the event goes
            env.bus.emit(InvocationStarted(self.cfg.name, rid, True, env.id))
            env.platform(P.start_line(rid))
        loop = asyncio.get_running_loop()
        self.t0 = time.monotonic()
        env.watch(loop.time() + max(self.budget_s, 0), self.exited, self.deadline)
        env.invoke_started(self.t0)
        env.api.dispatch(PendingInvoke(rid, self.req.payload or b"{}", self._headers(), self))
        if not self.cold:  # the event is on its way meanwhile; the runtime's output is read
            # by later callbacks, so it still comes after START (the last invocation's output
            # was read at its end)
            env.bus.emit(InvocationStarted(self.cfg.name, rid, False, env.id))
            env.line(P.start_line(rid), "platform")

    def _headers(self) -> dict[str, str]:
        req = self.req
        headers = {
            "Lambda-Runtime-Aws-Request-Id": self.handle.request_id,
            "Lambda-Runtime-Deadline-Ms": str(int((time.time() + self.budget_s) * 1000)),
            # invoked as name:qualifier (or ?Qualifier=), the ARN the function sees says so
            "Lambda-Runtime-Invoked-Function-Arn": (
                f"{self.cfg.arn}:{req.qualifier}" if req.qualifier else self.cfg.arn
            ),
            "Content-Type": req.content_type or "application/json",
            # every event carries a trace header; the service makes one when the caller did not
            "Lambda-Runtime-Trace-Id": req.trace_id or new_request_id.trace_id(),
        }
        if req.client_context:
            headers["Lambda-Runtime-Client-Context"] = req.client_context
        if req.tenant_id:
            headers["Lambda-Runtime-Aws-Tenant-Id"] = req.tenant_id
        return headers

    # ---- what can happen, each exactly once until the run is over ----

    def answered(self, result: InvokeResult) -> None:
        if not self.over:
            self.result = result
            self._settle(result)

    def _settle(self, result: InvokeResult) -> None:
        settle(
            self.env.bus,
            self.cfg,
            self.req,
            self.handle,
            result,
            self.started_at,
            self.cold,
            self.init_ms,
        )

    def next_called(self, at: float) -> None:
        """The environment stays busy until the runtime asks for the next event."""
        if self.over or self.result is None:
            return
        status: Status = "error" if self.result.function_error else "ok"
        self._end(Ending(self.result, status, (at - self.t0) * 1000, False))

    def exited(self) -> None:
        if self.over:
            return
        env, ms = self.env, (time.monotonic() - self.t0) * 1000
        if self.result is not None:  # answered, then gone before asking for more
            status: Status = "error" if self.result.function_error else "ok"
            self._end(Ending(self.result, status, ms, True))
            return
        rid = self.handle.request_id
        env.drain(flush_partial=True)
        detail = P.exit_detail(env.exited.result())
        # a runtime the memory limit killed exits like any other, and is named for why
        kind = "Runtime.OutOfMemory" if env.out_of_memory else "Runtime.ExitError"
        env.platform(f"RequestId: {rid} Error: {detail}")
        env.platform(kind)
        result = error_result(rid, kind, detail)
        self._settle(result)
        self._end(Ending(result, "crash", ms, True))

    def deadline(self) -> None:
        if self.over:
            return
        env, rid, timeout_ms = self.env, self.handle.request_id, self.cfg.timeout_s * 1000
        result = self.result
        if result is None:
            env.measure_memory()  # before the kill takes the process tree away
        env.platform(P.timeout_line(rid, self.cfg.timeout_s))
        if result is None:
            result = error_result(
                rid, "Sandbox.Timedout", f"Task timed out after {self.cfg.timeout_s:.2f} seconds"
            )
            self._settle(result)
        self._end(Ending(result, "timeout", timeout_ms, True))

    # ---- the end ----

    def _end(self, ending: Ending) -> None:
        self.over = True
        env, rid = self.env, self.handle.request_id
        env.unwatch()
        if ending.status != "timeout":  # a timeout reports exactly the timeout
            ending.duration_ms += self.suppressed_ms
        max_mb = env.measure_runtime_memory()
        env.drain(flush_partial=True)  # what the runtime wrote before it asked for more
        env.line(P.end_line(rid), "platform")
        status_field, error_field = None, None
        if ending.status == "timeout":
            status_field = "timeout"
        elif ending.status == "crash":
            status_field, error_field = "error", ending.result.error_type
        billed = P.billed_ms(ending.duration_ms, self.init_ms)
        env.line(
            P.report_line(
                rid,
                ending.duration_ms,
                billed,
                self.cfg.memory_mb,
                max_mb,
                self.init_ms,
                status_field,
                error_field,
            ),
            "platform",
        )
        over = env.tmp_overfull()
        if over is not None:  # said once per environment: Lambda's /tmp would be full
            env.line(over, "workbench")
        env.request_id = None
        env.collector = None
        if ending.reset:
            self.owner.track(self._reset(ending, billed, max_mb), self.handle)
        else:
            self._record(ending, billed, max_mb)

    async def _reset(self, ending: Ending, billed: int, max_mb: int) -> None:
        await self.env.stop("timeout" if ending.status == "timeout" else "failure")
        self._record(ending, billed, max_mb)

    def _record(self, ending: Ending, billed: int, max_mb: int) -> None:
        record = make_record(
            self.cfg,
            self.req,
            self.handle.request_id,
            ending.result,
            ending.status,
            self.cold,
            self.started_at,
            ending.duration_ms,
            billed,
            self.init_ms,
            max_mb,
            self.log,
        )
        self.env.bus.emit(InvocationFinished(self.cfg.name, record))
        self.owner.run_over(self.env, ending.reset, self.handle, record)


def settle(
    bus: Bus,
    cfg: FunctionConfig,
    req: InvokeRequest,
    handle: InvocationHandle,
    result: InvokeResult,
    started_at: float,
    cold: bool,
    init_ms: float | None,
) -> None:
    """Give the caller its answer, once. InvocationAnswered goes out on the bus first, so
    history has journaled the answer before anyone can have it: the Invoke API writes it to
    the socket from inside handle.settle, and every wrapper's future follows later still."""
    if handle.answer.done():
        return
    bus.emit(
        InvocationAnswered(
            cfg.name, handle.request_id, req, result, started_at, cold, init_ms, cfg.memory_mb
        )
    )
    handle.settle(result)


def make_record(
    cfg: FunctionConfig,
    req: InvokeRequest,
    rid: str,
    result: InvokeResult,
    status: Status,
    cold: bool,
    started_at: float,
    duration_ms: float,
    billed: int,
    init_ms: float | None,
    max_mb: int,
    log: LogCollector,
) -> InvocationRecord:
    lines, truncated = log.finish()
    return InvocationRecord(
        function=cfg.name,
        request_id=rid,
        request=req,
        result=result,
        status=status,
        cold=cold,
        started_at=started_at,
        duration_ms=duration_ms,
        billed_ms=billed,
        init_ms=init_ms,
        memory_mb=cfg.memory_mb,
        max_memory_mb=max_mb,
        log_lines=lines,
        log_truncated=truncated,
    )


def error_result(rid: str, error_type: str, detail: str) -> InvokeResult:
    body = P.json_body(P.platform_error(error_type, detail, rid)).rstrip(b"\n")
    return InvokeResult(rid, body, function_error=True)


def copy_outcome(
    source: asyncio.Future[InvokeResult], target: asyncio.Future[InvokeResult]
) -> None:
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


def log_result_header(record: InvocationRecord) -> str:
    """X-Amz-Log-Result: base64 of the last 4 KB of the invocation's log, read from its end
    (a long log is not joined whole for 4 KB of it)."""
    lines = record.log_lines
    start = P.start_line(record.request_id)
    # the invocation's own log, from START: init output belongs to the environment
    first = next((i for i in range(len(lines) - 1, -1, -1) if lines[i] == start), 0)
    limit = P.LOG_TAIL_BYTES
    out: list[bytes] = []
    size = 0
    for i in range(len(lines) - 1, first - 1, -1):
        data = lines[i][-limit:].encode() + b"\n"  # a character is a byte at least
        out.append(data)
        size += len(data)
        if size >= limit:
            break
    data = b"".join(reversed(out))[-limit:]
    return base64.b64encode(data).decode()
