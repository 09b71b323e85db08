"""The Lambda Runtime API (2018-06-01) for one execution environment.

The runtime finds us through AWS_LAMBDA_RUNTIME_API, which must be a bare host:port, so each
environment gets its own listener: the port is the only thing that tells environments apart.
State follows the service's runtime state machine (spec 1.7); codes and bodies follow spec 1.2-1.6.
"""

from __future__ import annotations

import asyncio
import enum
import json
import time
from dataclasses import dataclass, field

from aiohttp import web

from workbench.core import protocol as P
from workbench.core.record import InvokeResult
from workbench.core.servers import start_site

ERROR_CAUSE_CT = "application/vnd.aws.lambda.error.cause+json"


class State(enum.Enum):
    STARTED = "RuntimeStartedState"  # spawned, has not called /next yet
    READY = "RuntimeReadyState"  # waiting in /next
    RUNNING = "RuntimeInvokeResponseState"  # an event was handed out, no answer yet
    RESPONSE_SENT = "RuntimeResponseSentState"
    INIT_ERROR = "RuntimeInitErrorState"


@dataclass(eq=False)
class PendingInvoke:
    """One event on its way to the runtime, and the futures that say how it went."""

    request_id: str
    payload: bytes
    headers: dict[str, str]
    answered: asyncio.Future[InvokeResult] = field(init=False)
    next_called: asyncio.Future[float] = field(init=False)  # monotonic time of the next /next
    handed_out_at: float = 0.0

    def __post_init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.answered = loop.create_future()
        self.next_called = loop.create_future()


@dataclass(frozen=True, slots=True)
class InitError:
    body: bytes
    content_type: str
    error_type: str


def _reply(status: int, doc: object) -> web.Response:
    return web.Response(status=status, body=P.json_body(doc), content_type="application/json")


async def read_limited(request: web.Request, limit: int) -> tuple[bytes, int]:
    """Read a body up to `limit` bytes; past that, keep counting (the service reports the size)
    but stop keeping the bytes."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
    return (b"".join(chunks) if size <= limit else b""), size


class RuntimeAPI:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.state = State.STARTED
        self.current: PendingInvoke | None = None
        self.init_error: InitError | None = None
        self._queue: asyncio.Queue[PendingInvoke] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        self.first_next: asyncio.Future[float] = loop.create_future()
        self.init_failed: asyncio.Future[InitError] = loop.create_future()
        self._runner: web.AppRunner | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    # ---- lifecycle ----

    async def start(self) -> int:
        app = web.Application()
        base = f"/{P.API_VERSION}/runtime"
        app.router.add_get(f"{base}/invocation/next", self._next)
        app.router.add_post(f"{base}/invocation/{{rid}}/response", self._response)
        app.router.add_post(f"{base}/invocation/{{rid}}/error", self._error)
        app.router.add_post(f"{base}/init/error", self._init_error)
        app.router.add_get(f"/{P.API_VERSION}/ping", self._ping)
        # shutdown_timeout: a /next long poll never finishes on its own; stopping must not wait
        # for it (aiohttp's default would hold every reset for a minute).
        self._runner, self.port = await start_site(app, self.host, 0, shutdown_timeout=0.05)
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    def dispatch(self, inv: PendingInvoke) -> None:
        """Hand an event to the runtime; it is delivered by the pending (or the next) /next."""
        self._queue.put_nowait(inv)

    # ---- handlers ----

    async def _ping(self, request: web.Request) -> web.Response:
        return web.Response(text="pong")

    async def _next(self, request: web.Request) -> web.StreamResponse:
        now = time.monotonic()
        if self.state is State.INIT_ERROR:
            return _reply(403, P.invalid_transition(self.state.value, State.READY.value))
        if self.state is State.RUNNING and self.current is not None:
            # The runtime lost the event (a dropped connection, a retry): hand out the same one.
            return self._render(self.current)
        if self.state is State.RESPONSE_SENT and self.current is not None:
            done = self.current
            self.current = None
            if not done.next_called.done():
                done.next_called.set_result(now)
        if not self.first_next.done():
            self.first_next.set_result(now)
        self.state = State.READY
        inv = await self._queue.get()
        self.current = inv
        self.state = State.RUNNING
        inv.handed_out_at = time.monotonic()
        return self._render(inv)

    def _render(self, inv: PendingInvoke) -> web.Response:
        return web.Response(status=200, body=inv.payload, headers=inv.headers)

    def _check_invocation(self, request: web.Request, target: str) -> web.Response | PendingInvoke:
        """The id is checked before the state, as the service does (spec 1.3)."""
        rid = request.match_info["rid"]
        inv = self.current
        if inv is None or rid != inv.request_id:
            return _reply(400, P.INVALID_REQUEST_ID)
        if self.state is not State.RUNNING:
            return _reply(403, P.invalid_transition(self.state.value, target))
        return inv

    async def _response(self, request: web.Request) -> web.Response:
        checked = self._check_invocation(request, "InvocationResponse")
        if isinstance(checked, web.Response):
            await request.release()
            return checked
        inv = checked
        mode = request.headers.get("Lambda-Runtime-Function-Response-Mode")
        if mode is not None and mode != "streaming":
            await request.release()
            self._answer(inv, _error_result(inv, "Runtime.InvalidResponseModeHeader",
                                            "Invalid function response mode"))
            return _reply(400, P.INVALID_RESPONSE_MODE)
        body, size = await read_limited(request, P.RESPONSE_LIMIT)
        if self.current is not inv or self.state is not State.RUNNING:
            return _reply(403, P.invalid_transition(self.state.value, "InvocationResponse"))
        if size > P.RESPONSE_LIMIT:
            too_big = P.json_body(P.response_too_large(size)).rstrip(b"\n")
            self._answer(inv, InvokeResult(inv.request_id, too_big, function_error=True))
            return _reply(413, P.TOO_LARGE_FOR_RUNTIME)
        ctype = request.headers.get("Content-Type") or "application/json"
        self._answer(inv, InvokeResult(inv.request_id, body, ctype))
        return _reply(202, P.STATUS_OK)

    async def _error(self, request: web.Request) -> web.Response:
        checked = self._check_invocation(request, "InvocationErrorResponse")
        if isinstance(checked, web.Response):
            await request.release()
            return checked
        inv = checked
        body, size = await read_limited(request, P.RESPONSE_LIMIT)
        if self.current is not inv or self.state is not State.RUNNING:
            return _reply(403, P.invalid_transition(self.state.value, "InvocationErrorResponse"))
        if size > P.RESPONSE_LIMIT:
            too_big = P.json_body(P.response_too_large(size)).rstrip(b"\n")
            self._answer(inv, InvokeResult(inv.request_id, too_big, function_error=True))
            return _reply(413, P.TOO_LARGE_FOR_RUNTIME)
        body, ctype = _error_document(request, body)
        self._answer(inv, InvokeResult(inv.request_id, body, ctype, function_error=True))
        return _reply(202, P.STATUS_OK)

    async def _init_error(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.state is not State.STARTED:
            return _reply(403, P.invalid_transition(self.state.value, "InitError"))
        error_type = request.headers.get("Lambda-Runtime-Function-Error-Type") or ""
        try:
            doc = json.loads(body)
            ctype = "application/json"
            if isinstance(doc, dict) and isinstance(doc.get("errorType"), str):
                error_type = error_type or doc["errorType"]
        except ValueError:
            ctype = "application/octet-stream"
        self.init_error = InitError(body, ctype, _sanitise_error_type(error_type))
        self.state = State.INIT_ERROR
        if not self.init_failed.done():
            self.init_failed.set_result(self.init_error)
        return _reply(202, P.STATUS_OK)

    def _answer(self, inv: PendingInvoke, result: InvokeResult) -> None:
        self.state = State.RESPONSE_SENT
        if not inv.answered.done():
            inv.answered.set_result(result)


def _error_result(inv: PendingInvoke, error_type: str, message: str) -> InvokeResult:
    doc = P.platform_error(error_type, message, inv.request_id)
    return InvokeResult(inv.request_id, P.json_body(doc).rstrip(b"\n"), function_error=True)


def _error_document(request: web.Request, body: bytes) -> tuple[bytes, str]:
    """Pass the error document through, except the X-Ray `errorCause`, which the service strips."""
    ctype = request.headers.get("Content-Type", "application/json")
    if ctype.split(";")[0].strip() != ERROR_CAUSE_CT:
        return body, ctype
    try:
        doc = json.loads(body)
        if not isinstance(doc, dict):
            raise ValueError
        doc.pop("errorCause", None)
        return json.dumps(doc).encode(), "application/json"
    except ValueError:
        return json.dumps("Invalid error body").encode(), "application/json"


def _sanitise_error_type(value: str) -> str:
    """The service keeps an error type only if it looks like one of its own (spec 1.4)."""
    import re

    if re.search(r"(Runtime|Function)\.[A-Z][a-zA-Z]+", value):
        return value
    if value.startswith("Function."):
        return "Function.Unknown"
    return value or "Runtime.Unknown"
