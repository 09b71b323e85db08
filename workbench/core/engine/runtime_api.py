"""The Lambda Runtime API (2018-06-01) for one execution environment.

The runtime finds us through AWS_LAMBDA_RUNTIME_API, which must be a bare host:port, so each
environment gets its own listener: the port is the only thing that tells environments apart.
State follows the service's runtime state machine (spec 1.7); codes and bodies follow spec 1.2-1.6.
Served by http11 (see why there); every answer here is immediate except a parked /next, and
the runtime's answer reaches the invocation's listener synchronously, from the handler: the
caller's answer is written before the runtime's 202, with no task or loop turn in between.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from workbench.core import protocol as P
from workbench.core.engine import guards, http11
from workbench.core.record import InvokeResult

ERROR_CAUSE_CT = "application/vnd.aws.lambda.error.cause+json"
BASE = f"/{P.API_VERSION}/runtime"
INVOCATION = re.compile(rf"^{BASE}/invocation/([^/]+)/(response|error)$")
JSON_HEADERS = {"Content-Type": "application/json"}
# what the official emulator (Go's net/http and chi) answers for an unknown path and for a
# known path asked with the wrong method (spec 1.6a)
NOT_FOUND = http11.Response(
    404,
    b"404 page not found\n",
    {"Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"},
).freeze()
NOT_ALLOWED = http11.Response(405).freeze()


class State(enum.Enum):
    """The runtime's states, by the names the official emulator's 403 texts use (RIE
    core/statenames.go)."""

    STARTED = "Started"  # spawned, has not called /next yet
    READY = "Ready"  # waiting in /next
    RUNNING = "Running"  # an event was handed out, no answer yet
    RESPONSE_SENT = "RuntimeResponseSentState"
    INIT_ERROR = "InitError"


class RunListener(Protocol):
    """Who hears how an event went, called synchronously from the runtime's own requests."""

    def answered(self, result: InvokeResult) -> None:
        """The runtime posted its response or error (or an oversized one was refused)."""

    def next_called(self, at: float) -> None:
        """The runtime asked for its next event (monotonic time): the invocation is over."""


@dataclass(eq=False, slots=True)
class PendingInvoke:
    """One event on its way to the runtime; `result` is the runtime's answer once given."""

    request_id: str
    payload: bytes
    headers: dict[str, str]
    listener: RunListener | None = None
    result: InvokeResult | None = None
    handed_out_at: float = 0.0


@dataclass(frozen=True, slots=True)
class InitError:
    body: bytes
    content_type: str
    error_type: str


def _reply(status: int, doc: object) -> http11.Response:
    return http11.Response(status, P.json_body(doc), JSON_HEADERS)


ACCEPTED = _reply(202, P.STATUS_OK).freeze()
REFUSED = P.api_error("AccessDenied", "The Runtime API serves the function's own processes only.")


class RuntimeAPI:
    def __init__(
        self,
        host: str = "127.0.0.1",
        on_error: Callable[[http11.Request, Exception], None] | None = None,
    ) -> None:
        self.host = host
        self.port = 0
        self.state = State.STARTED
        self.current: PendingInvoke | None = None
        self.init_error: InitError | None = None
        self._queue: collections.deque[PendingInvoke] = collections.deque()
        self._parked: http11.Later | None = None  # a /next waiting
        loop = asyncio.get_running_loop()
        self.first_next: asyncio.Future[float] = loop.create_future()
        self.init_failed: asyncio.Future[InitError] = loop.create_future()
        # keep the whole oversized body's size, not its bytes (the caller is told the size)
        # no idle timeout: a runtime's connection idles for as long as its function works
        self._server = http11.Server(self._route, P.RESPONSE_LIMIT, on_error, idle_timeout=None)
        self._names = guards.HostNames(host)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def start(self) -> int:
        self.port = await self._server.start(self.host, 0)
        return self.port

    async def stop(self) -> None:
        await self._server.stop()

    def dispatch(self, inv: PendingInvoke) -> None:
        """Hand an event to the runtime: to the /next waiting now, or to the next one."""
        parked, self._parked = self._parked, None
        if parked is not None and not parked.done:
            parked.send(self._hand_out(inv))
        else:
            self._queue.append(inv)

    # ---- routing ----

    def _route(self, req: http11.Request) -> http11.Response | http11.Later:
        headers = req.headers
        host = headers.get("host")
        if "origin" in headers or (
            host is not None and not self._names.allows(guards.host_name(host))
        ):
            # only the function's own processes call this API, and they are not web pages
            return _reply(403, REFUSED)
        path = req.path
        if path == f"{BASE}/invocation/next":
            return self._next() if req.method == "GET" else NOT_ALLOWED
        m = INVOCATION.match(path)
        if m:
            if req.method != "POST":
                return NOT_ALLOWED
            if m.group(2) == "response":
                return self._response(req, m.group(1))
            return self._error(req, m.group(1))
        if path == f"{BASE}/init/error":
            return self._init_error(req) if req.method == "POST" else NOT_ALLOWED
        if path == f"/{P.API_VERSION}/ping":
            return http11.Response(200, b"pong", {"Content-Type": "text/plain"})
        return NOT_FOUND

    # ---- handlers ----

    def _next(self) -> http11.Response | http11.Later:
        if self.state is State.INIT_ERROR:
            return _reply(403, P.invalid_transition(self.state.value, State.READY.value))
        if self.state is State.RUNNING and self.current is not None:
            # The runtime lost the event (a dropped connection, a retry): hand out the same one.
            return self._render(self.current)
        now = time.monotonic()
        done = None
        if self.state is State.RESPONSE_SENT and self.current is not None:
            done, self.current = self.current, None
        self.state = State.READY
        if not self.first_next.done():
            self.first_next.set_result(now)
        if done is not None and done.listener is not None:
            done.listener.next_called(now)  # may dispatch the next event: ready for it
        if self._queue:
            return self._hand_out(self._queue.popleft())
        # Parked until dispatch(); if the runtime hangs up first, the Later is cancelled and
        # the next event waits in the queue for the next /next.
        self._parked = http11.Later()
        return self._parked

    def _hand_out(self, inv: PendingInvoke) -> http11.Response:
        self.current = inv
        self.state = State.RUNNING
        inv.handed_out_at = time.monotonic()
        return self._render(inv)

    def _render(self, inv: PendingInvoke) -> http11.Response:
        return http11.Response(200, inv.payload, inv.headers)

    def _check(self, rid: str, target: str) -> http11.Response | PendingInvoke:
        """The id is checked before the state, as the service does (spec 1.3)."""
        inv = self.current
        if inv is None or rid != inv.request_id:
            return _reply(400, P.INVALID_REQUEST_ID)
        if self.state is not State.RUNNING:
            return _reply(403, P.invalid_transition(self.state.value, target))
        return inv

    def _oversized(self, req: http11.Request, inv: PendingInvoke) -> http11.Response | None:
        if req.body_size <= P.RESPONSE_LIMIT:
            return None
        too_big = P.json_body(P.response_too_large(req.body_size)).rstrip(b"\n")
        self._answer(inv, InvokeResult(inv.request_id, too_big, function_error=True))
        return _reply(413, P.TOO_LARGE_FOR_RUNTIME)

    def _response(self, req: http11.Request, rid: str) -> http11.Response:
        checked = self._check(rid, "InvocationResponse")
        if isinstance(checked, http11.Response):
            return checked
        inv = checked
        mode = req.headers.get("lambda-runtime-function-response-mode")
        if mode is not None and mode != "streaming":
            self._answer(
                inv,
                _error_result(
                    inv, "Runtime.InvalidResponseModeHeader", "Invalid function response mode"
                ),
            )
            return _reply(400, P.INVALID_RESPONSE_MODE)
        error = _trailer_error(req)
        if error is not None:  # a stream that failed part-way: the trailers say how
            self._answer(inv, InvokeResult(inv.request_id, error, function_error=True))
            return ACCEPTED
        refused = self._oversized(req, inv)
        if refused is not None:
            return refused
        ctype = req.headers.get("content-type") or "application/json"
        self._answer(inv, InvokeResult(inv.request_id, req.body, ctype))
        return ACCEPTED

    def _error(self, req: http11.Request, rid: str) -> http11.Response:
        checked = self._check(rid, "InvocationErrorResponse")
        if isinstance(checked, http11.Response):
            return checked
        inv = checked
        refused = self._oversized(req, inv)
        if refused is not None:
            return refused
        body, ctype = _error_document(req)
        self._answer(inv, InvokeResult(inv.request_id, body, ctype, function_error=True))
        return ACCEPTED

    def _init_error(self, req: http11.Request) -> http11.Response:
        if self.state is not State.STARTED:
            return _reply(403, P.invalid_transition(self.state.value, "InitError"))
        error_type = req.headers.get("lambda-runtime-function-error-type") or ""
        try:
            doc = json.loads(req.body)
            ctype = "application/json"
            if isinstance(doc, dict) and isinstance(doc.get("errorType"), str):
                error_type = error_type or doc["errorType"]
        except ValueError:
            ctype = "application/octet-stream"
        self.init_error = InitError(req.body, ctype, _sanitise_error_type(error_type))
        self.state = State.INIT_ERROR
        if not self.init_failed.done():
            self.init_failed.set_result(self.init_error)
        return ACCEPTED

    def _answer(self, inv: PendingInvoke, result: InvokeResult) -> None:
        """Called before the handler returns its answer to the runtime: the caller, who is
        waiting, gets its answer written first; the runtime only goes on to /next."""
        self.state = State.RESPONSE_SENT
        if inv.result is None:
            inv.result = result
            if inv.listener is not None:
                inv.listener.answered(result)


def _error_result(inv: PendingInvoke, error_type: str, message: str) -> InvokeResult:
    doc = P.platform_error(error_type, message, inv.request_id)
    return InvokeResult(inv.request_id, P.json_body(doc).rstrip(b"\n"), function_error=True)


def _trailer_error(req: http11.Request) -> bytes | None:
    """Lambda-Runtime-Function-Error-Type/-Body trailers: set only when a response failed
    mid-body (aws-lambda-go declares them on every post and fills them only then)."""
    error_type = req.trailers.get("lambda-runtime-function-error-type")
    if not error_type:
        return None
    import base64
    import binascii

    encoded = req.trailers.get("lambda-runtime-function-error-body", "")
    try:
        return base64.b64decode(encoded, validate=True) or P.json_body(
            P.api_error(error_type, "")
        ).rstrip(b"\n")
    except (binascii.Error, ValueError):
        return P.json_body(P.api_error(error_type, encoded)).rstrip(b"\n")


def _error_document(req: http11.Request) -> tuple[bytes, str]:
    """Pass the error document through, except one sent as an X-Ray error cause: that is
    re-serialised as the official emulator does (spec 1.6a), compactly, without its
    `errorCause` and without an empty `stackTrace`."""
    ctype = req.headers.get("content-type", "application/json")
    if ctype.split(";")[0].strip() != ERROR_CAUSE_CT:
        return req.body, ctype
    try:
        doc = json.loads(req.body)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        return json.dumps("Invalid error body").encode(), "application/json"
    doc.pop("errorCause", None)
    if doc.get("stackTrace") in ([], None):
        doc.pop("stackTrace", None)
    return json.dumps(doc, separators=(",", ":")).encode(), "application/json"


def _sanitise_error_type(value: str) -> str:
    """The service keeps an error type only if it looks like one of its own (spec 1.4)."""
    if re.search(r"(Runtime|Function)\.[A-Z][a-zA-Z]+", value):
        return value
    if value.startswith("Function."):
        return "Function.Unknown"
    return value or "Runtime.Unknown"
