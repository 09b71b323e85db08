"""A lean HTTP/1.1 server on asyncio.Protocol, for the Runtime API and the Invoke API, whose
bytes are parsed by llhttp (through httptools), never by our own code.

Why not aiohttp here: an invoke crosses these servers three times, and aiohttp's per-request
cost was most of workbench's overhead (bench/http_servers.py measures both on one request
loop). aiohttp also drops chunked request trailers, which aws-lambda-go declares on every post
and which carry streaming errors (spec 2.4); llhttp reports them. llhttp is strict: it refuses
two Content-Length headers, Content-Length with Transfer-Encoding, a Transfer-Encoding that
does not end in chunked, signs and underscores in lengths, hex prefixes in chunk sizes, a
missing CRLF after chunk data, header names with blanks or control bytes, NUL and other
control bytes in values, unknown HTTP versions and bare LF line ends. What llhttp leaves to
the server is done here: HTTP versions other than 1.0 and 1.1 (505), transfer codings other
than chunked (501), bounds on the head (431), timeouts, and how many requests one connection
may have waiting.

A handler returns a Response, or a Later that it (or a callback) fills in with send() when the
answer exists: a parked /next, an invoke waiting for the runtime. send() writes at once, from
whatever callback calls it, so an answer costs no task and no extra turn of the event loop.
Requests on one connection are answered in order.

Bounds, per connection: a request head of at most MAX_HEAD bytes and MAX_FIELDS fields; at most
MAX_QUEUED whole requests waiting behind the one being answered, after which the connection is
not read until they are answered; and while the client does not read its answers (the
transport's write buffer is over its high-water mark) nothing more is answered or read. Time
limits (checked once a second by one timer per server, not per request): a request head must
arrive within `head_timeout` of its first byte (of the connection, for the first request); a
body may not stall for more than `body_timeout`; an idle keep-alive connection is closed after
`idle_timeout` (None on the Runtime API, whose connections idle while the function works).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import cast

import httptools

log = logging.getLogger(__name__)

MAX_HEAD = 32 * 1024  # request line and fields, in bytes
MAX_FIELDS = 100
MAX_QUEUED = 2  # whole requests read and waiting behind the one being answered
WRITE_HIGH_WATER = 256 * 1024  # unread answer bytes after which a connection stops being served
HEAD_TIMEOUT = 10.0
BODY_TIMEOUT = 30.0
IDLE_TIMEOUT = 75.0
SWEEP_EVERY = 1.0
VERSIONS = ("1.1", "1.0")
_TOKEN = re.compile(rb"^[!#$%&'*+.^_`|~0-9A-Za-z-]+ ")
_BAD_VERSION = re.compile(r"^Invalid (HTTP|major|minor) version")  # llhttp's words for it

REASONS = {
    100: "Continue",
    200: "OK",
    202: "Accepted",
    204: "No Content",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    417: "Expectation Failed",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    505: "HTTP Version Not Supported",
}
_STATUS_LINES = {code: f"HTTP/1.1 {code} {reason}\r\n".encode() for code, reason in REASONS.items()}
_date_at = 0
_date_line = b""


def date_line() -> bytes:
    """`Date: <IMF-fixdate>\\r\\n` for now, formatted at most once a second."""
    global _date_at, _date_line
    now = int(time.time())
    if now != _date_at:
        _date_at = now
        _date_line = f"Date: {formatdate(now, usegmt=True)}\r\n".encode()
    return _date_line


@dataclass(slots=True)
class Request:
    method: str
    target: str
    headers: dict[str, str]  # lower-cased names; a repeated field's values joined by ", "
    body: bytes = b""
    body_size: int = 0  # may exceed len(body) when the body was over the size limit
    trailers: dict[str, str] = field(default_factory=dict)
    repeated: frozenset[str] = frozenset()  # names of header fields sent more than once
    keep_alive: bool = True

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    wire: bytes | None = field(default=None, init=False, repr=False, compare=False)

    def freeze(self) -> Response:
        """For an answer given again and again (the runtime's 202): encoded once, all but
        its Date."""
        self.wire = self._fields(True) + self.body
        return self

    def status_line(self) -> bytes:
        return _STATUS_LINES.get(self.status) or f"HTTP/1.1 {self.status} Unknown\r\n".encode()

    def _fields(self, keep_alive: bool) -> bytes:
        fields = "".join([f"{k}: {v}\r\n" for k, v in self.headers.items()])
        close = "" if keep_alive else "Connection: close\r\n"
        return f"{fields}Content-Length: {len(self.body)}\r\n{close}\r\n".encode("latin-1")

    def encode_head(self, keep_alive: bool) -> bytes:
        return self.status_line() + date_line() + self._fields(keep_alive)


class Later:
    """An answer given after the handler returned. send() writes it the moment it is called
    (or, called before the handler returned, as soon as the handler returns); if the client
    hangs up first, `on_cancel` runs and send() is refused."""

    __slots__ = ("_conn", "_req", "_resp", "done", "on_cancel")

    def __init__(self, on_cancel: Callable[[], None] | None = None) -> None:
        self._conn: _Connection | None = None
        self._req: Request | None = None
        self._resp: Response | None = None
        self.done = False
        self.on_cancel = on_cancel

    def send(self, resp: Response) -> bool:
        """Answer; False when the request is gone (its client hung up) or answered already."""
        if self.done:
            return False
        self.done = True
        conn = self._conn
        if conn is None:
            self._resp = resp
        else:
            conn.later_sent(self, resp)
        return True

    def cancel(self) -> None:
        if not self.done:
            self.done = True
            if self.on_cancel is not None:
                self.on_cancel()


Handler = Callable[[Request], "Response | Later"]
INTERNAL_ERROR = Response(
    500, b'{"errorMessage":"Internal Server Error","errorType":"InternalServerError"}\n'
)


class Refused(Exception):
    """A request the server will not serve: answered with `status` and closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Connection(asyncio.Protocol):
    """One client connection; also the callback object httptools' parser calls."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.req: Request | None = None  # the request being read
        self.in_head = False  # between a request's first byte and the end of its fields
        self.in_body = False
        self.head_size = 0
        self.fields = 0
        self.began_in_feed = False
        self.requests = 0  # begun on this connection
        self.repeated: set[str] | None = None
        self.chunks: list[bytes] = []
        self.queue: collections.deque[Request] = collections.deque()
        self.busy: Later | None = None
        self.closing = False
        self.read_paused = False
        self.write_paused = False
        now = time.monotonic()
        self.head_since = now  # the first request's head is due within head_timeout of connecting
        self.last_data = now
        self.idle_since: float | None = None  # set while nothing is asked or owed

    # ---- connection ----

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # any stream transport (uvloop's does not subclass asyncio.Transport)
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        sock = transport.get_extra_info("socket")
        if sock is not None:  # small answers must not wait for Nagle and delayed ACKs
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self.closing = True
        self.queue.clear()
        self.chunks = []
        busy, self.busy = self.busy, None
        if busy is not None:
            busy.cancel()  # a parked /next: its event stays queued for the next caller

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    def pause_writing(self) -> None:
        self.write_paused = True
        self._pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        if len(self.queue) < MAX_QUEUED:
            self._resume_reading()
        self._dispatch()

    def _pause_reading(self) -> None:
        if not self.read_paused and self.transport is not None and not self.closing:
            self.read_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self.read_paused and self.transport is not None and not self.closing:
            self.read_paused = False
            self.transport.resume_reading()

    # ---- reading ----

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self.last_data = time.monotonic()
        self.began_in_feed = False
        was_in_head = self.in_head
        try:
            self.parser.feed_data(data)
        except Refused as exc:
            self._fail(exc.status, exc.message)
            return
        except httptools.HttpParserCallbackError as exc:
            inner = exc.__context__
            if isinstance(inner, Refused):
                self._fail(inner.status, inner.message)
            else:
                log.exception("parsing a request failed")
                self._fail(500, "Internal Server Error")
            return
        except httptools.HttpParserUpgrade:
            # CONNECT or an Upgrade request: answered as plain HTTP (it was complete), and
            # whatever follows is not HTTP, so the connection ends after the answer
            for req in self.queue:
                req.keep_alive = False
            if self.busy is not None and self.busy._req is not None:
                self.busy._req.keep_alive = False
            self._pause_reading()
            if not self.queue and self.busy is None:
                self.close()
            return
        except httptools.HttpParserInvalidMethodError:
            if _TOKEN.match(data.lstrip(b"\r\n")):
                self._fail(501, "Method not implemented")
            else:
                self._fail(400, "Malformed request line")
            return
        except httptools.HttpParserError as exc:
            text = str(exc)
            if _BAD_VERSION.match(text):
                self._fail(505, "HTTP version not supported")
            else:
                self._fail(400, f"Malformed request: {text}")
            return
        # a head that goes on and on over several reads, whatever TCP made of it
        if self.in_head and was_in_head and not self.began_in_feed:
            self.head_size += len(data)
            if self.head_size > MAX_HEAD:
                self._fail(431, "Request header fields too large")

    # httptools' callbacks

    def on_message_begin(self) -> None:
        self.req = Request("", "", {})
        self.in_head = True
        self.began_in_feed = True
        self.head_size = 0
        self.fields = 0
        self.repeated = None
        self.chunks = []
        self.idle_since = None
        if self.requests:  # the first one is timed from the connection's opening
            self.head_since = self.last_data
        self.requests += 1

    def on_url(self, url: bytes) -> None:
        req = self.req
        assert req is not None
        self.head_size += len(url)
        if self.head_size > MAX_HEAD:
            raise Refused(431, "Request line too long")
        req.target += url.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        req = self.req
        assert req is not None
        self.head_size += len(name) + len(value) + 4
        self.fields += 1
        if self.fields > MAX_FIELDS or self.head_size > MAX_HEAD:
            raise Refused(431, "Request header fields too large")
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1").rstrip(" \t")
        into = req.trailers if self.in_body else req.headers
        if key in into:
            into[key] = f"{into[key]}, {text}"
            if self.repeated is None:
                self.repeated = set()
            self.repeated.add(key)
        else:
            into[key] = text

    def on_headers_complete(self) -> None:
        req = self.req
        assert req is not None
        self.in_head = False
        self.in_body = True
        parser = self.parser
        if parser.get_http_version() not in VERSIONS:
            raise Refused(505, "HTTP version not supported")
        req.method = parser.get_method().decode("latin-1")
        req.keep_alive = parser.should_keep_alive()
        if self.repeated:
            req.repeated = frozenset(self.repeated)
        headers = req.headers
        coding = headers.get("transfer-encoding")
        if coding is not None and coding.lower() != "chunked":
            raise Refused(501, f"Transfer-Encoding {coding!r} is not supported")
        expect = headers.get("expect")
        if expect is not None:
            if expect.lower() != "100-continue":
                raise Refused(417, f"Expect {expect!r} is not supported")
            if self.transport is not None and not self.queue and self.busy is None:
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        req = self.req
        assert req is not None
        req.body_size += len(body)
        if req.body_size <= self.server.max_body:
            self.chunks.append(body)

    def on_message_complete(self) -> None:
        req, self.req = self.req, None
        assert req is not None
        self.in_body = False
        chunks, self.chunks = self.chunks, []
        if req.body_size <= self.server.max_body:
            req.body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if self.busy is None and not self.queue and not self.closing and not self.write_paused:
            self._answer(req)
        else:
            self.queue.append(req)
            if len(self.queue) >= MAX_QUEUED:
                self._pause_reading()

    # ---- answering ----

    def _dispatch(self) -> None:
        while self.queue and self.busy is None and not self.closing and not self.write_paused:
            self._answer(self.queue.popleft())
        if len(self.queue) < MAX_QUEUED and not self.write_paused:
            self._resume_reading()

    def _answer(self, req: Request) -> None:
        try:
            out = self.server.handler(req)
        except Exception as exc:
            out = INTERNAL_ERROR
            self.server.handler_failed(req, exc)
        if type(out) is Response:
            self._send(out, req)
        else:
            assert isinstance(out, Later)
            if out._resp is not None:  # answered before the handler returned
                self._send(out._resp, req)
            else:
                out._conn, out._req = self, req
                self.busy = out

    def later_sent(self, later: Later, resp: Response) -> None:
        if self.busy is not later or later._req is None:
            return
        self.busy = None
        self._send(resp, later._req)
        if self.queue and not self.closing:
            # a pipelined request: answered on the next turn, not from inside whatever
            # callback (another connection's handler) sent this answer
            asyncio.get_running_loop().call_soon(self._dispatch)

    def _send(self, resp: Response, req: Request) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        keep = req.keep_alive
        if not self.queue and self.req is None:
            self.idle_since = time.monotonic()
        if keep and resp.wire is not None:
            transport.write(resp.status_line() + date_line() + resp.wire)
            return
        head = resp.encode_head(keep)
        if len(resp.body) < 64 * 1024:
            transport.write(head + resp.body)
        else:  # do not copy a 6 MB body just to glue a head on
            transport.write(head)
            transport.write(resp.body)
        if not keep:
            self.close()

    def _fail(self, status: int, message: str) -> None:
        """Refuse what was sent, say why, and close: nothing after it on this connection can
        be trusted to be where the parser thinks it is."""
        transport = self.transport
        if transport is not None and not transport.is_closing():
            text = message.replace("\\", "\\\\").replace('"', '\\"')
            body = f'{{"errorMessage":"{text}","errorType":"InvalidRequest"}}\n'.encode()
            resp = Response(status, body, {"Content-Type": "application/json"})
            transport.write(resp.encode_head(False) + body)
        self.req = None
        self.queue.clear()
        self.close()

    def sweep(self, now: float) -> None:
        """Close a connection that ran out of time (called once a second by the server)."""
        if self.closing:
            return
        server = self.server
        if self.in_head or self.requests == 0:
            if now - self.head_since > server.head_timeout:
                self._fail(408, "The request head did not arrive in time")
        elif self.in_body:
            if now - self.last_data > server.body_timeout:
                self._fail(408, "The request body stalled")
        elif self.idle_since is not None and self._waiting():
            idle = server.idle_timeout
            if idle is not None and now - self.idle_since > idle:
                self.close()

    def _waiting(self) -> bool:
        """Nothing asked of the server and nothing owed by it on this connection."""
        return self.busy is None and not self.queue


class _AcceptFailures:
    """The loop's exception handler, but for accept() failing for want of file descriptors:
    asyncio reports that once per queued connection, each with a traceback (tens of
    thousands a second under a low `ulimit -n`); this says it in one line a second at most,
    with how many it left unsaid. Everything else goes where it went before."""

    def __init__(
        self, previous: Callable[[asyncio.AbstractEventLoop, dict[str, object]], object] | None
    ) -> None:
        self.previous = previous
        self.said_at = -1.0
        self.unsaid = 0

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
        message = str(context.get("message", ""))
        if not message.startswith("socket.accept() out of system resource"):
            if self.previous is not None:
                self.previous(loop, context)
            else:
                loop.default_exception_handler(context)
            return
        now = time.monotonic()
        if now - self.said_at < 1.0:
            self.unsaid += 1
            return
        self.said_at = now
        more = f" ({self.unsaid} more since the last such line)" if self.unsaid else ""
        self.unsaid = 0
        log.warning("workbench: cannot accept a connection: %s%s", context.get("exception"), more)


def _limit_accept_failures(loop: asyncio.AbstractEventLoop) -> None:
    handler = loop.get_exception_handler()
    if not isinstance(handler, _AcceptFailures):
        loop.set_exception_handler(_AcceptFailures(handler))


class Server:
    """Owns the listening socket and every live connection; stop() drops both at once."""

    def __init__(
        self,
        handler: Handler,
        max_body: int,
        on_error: Callable[[Request, Exception], None] | None = None,
        *,
        head_timeout: float = HEAD_TIMEOUT,
        body_timeout: float = BODY_TIMEOUT,
        idle_timeout: float | None = IDLE_TIMEOUT,
    ) -> None:
        self.handler = handler
        self.max_body = max_body
        self.on_error = on_error  # told of a handler that raised (the client gets a 500)
        self.head_timeout = head_timeout
        self.body_timeout = body_timeout
        self.idle_timeout = idle_timeout
        self.connections: set[_Connection] = set()
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.TimerHandle | None = None

    def handler_failed(self, req: Request, exc: Exception) -> None:
        log.error("%s %s failed", req.method, req.path, exc_info=exc)
        if self.on_error is not None:
            try:
                self.on_error(req, exc)
            except Exception:
                log.exception("reporting a failed request failed")

    async def start(self, host: str, port: int = 0) -> int:
        loop = asyncio.get_running_loop()
        _limit_accept_failures(loop)
        self._server = await loop.create_server(self._connection, host, port, reuse_address=True)
        self._sweeper = loop.call_later(SWEEP_EVERY, self._sweep)
        return int(self._server.sockets[0].getsockname()[1])

    def _connection(self) -> _Connection:
        return _Connection(self)

    def _sweep(self) -> None:
        now = time.monotonic()
        for conn in list(self.connections):
            try:
                conn.sweep(now)
            except Exception:
                log.exception("closing a timed-out connection failed")
        if self._server is not None:
            self._sweeper = asyncio.get_running_loop().call_later(SWEEP_EVERY, self._sweep)

    async def stop(self) -> None:
        if self._server is None:
            return
        server, self._server = self._server, None
        if self._sweeper is not None:
            self._sweeper.cancel()
        server.close()
        for conn in list(self.connections):
            conn.close()
            conn.connection_lost(None)
        await server.wait_closed()
