"""A small HTTP/1.1 server on asyncio.Protocol, for the Runtime API and the Invoke API.

Why not aiohttp here: an invoke crosses these servers three times, and aiohttp's per-request
cost (~100 us of CPU) was most of workbench's overhead (bench/invoke_overhead.py). aiohttp also
drops chunked request trailers, which aws-lambda-go declares on every post and which carry
streaming errors (spec 2.4). The clients are runtime libraries and SDKs speaking plain HTTP/1.1
with Content-Length or chunked bodies; that is all this parses.

A handler returns a Response, or a Later that it (or a callback) fills in with send() when the
answer exists: a parked /next, an invoke waiting for the runtime. send() writes at once, from
whatever callback calls it, so an answer costs no task and no extra turn of the event loop.
Requests on one connection are answered in order.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

log = logging.getLogger(__name__)

MAX_HEAD = 64 * 1024
REASONS = {
    100: "Continue",
    200: "OK",
    202: "Accepted",
    204: "No Content",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Request Entity Too Large",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
}
_STATUS_LINES = {code: f"HTTP/1.1 {code} {reason}\r\n" for code, reason in REASONS.items()}


@dataclass(slots=True)
class Request:
    method: str
    target: str
    headers: dict[str, str]  # lower-cased names
    body: bytes = b""
    body_size: int = 0  # may exceed len(body) when the body was over the size limit
    trailers: dict[str, str] = field(default_factory=dict)

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
        """For an answer given again and again (the runtime's 202): encoded once."""
        self.wire = self.encode_head(True) + self.body
        return self

    def encode_head(self, keep_alive: bool) -> bytes:
        status = _STATUS_LINES.get(self.status) or f"HTTP/1.1 {self.status} Unknown\r\n"
        fields = "".join([f"{k}: {v}\r\n" for k, v in self.headers.items()])
        close = "" if keep_alive else "Connection: close\r\n"
        return f"{status}{fields}Content-Length: {len(self.body)}\r\n{close}\r\n".encode("latin-1")


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


class BadRequest(Exception):
    pass


class _Connection(asyncio.Protocol):
    def __init__(self, server: Server) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.state = "head"
        self.req: Request | None = None
        self.remaining = 0
        self.chunks: list[bytes] = []
        self.queue: collections.deque[Request] = collections.deque()
        self.busy: Later | None = None
        self.closing = False

    # ---- connection ----

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # any stream transport (uvloop's does not subclass asyncio.Transport)
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:  # small answers must not wait for Nagle and delayed ACKs
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self.closing = True
        busy, self.busy = self.busy, None
        if busy is not None:
            busy.cancel()  # a parked /next: its event stays queued for the next caller

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    # ---- parsing ----

    def data_received(self, data: bytes) -> None:
        try:
            if not self.buf:
                if self.state == "head":
                    data = self._from_head(data)
                elif self.state == "length":
                    data = self._body_piece(data)
                if not data:
                    return
            self.buf += data
            while self._step():
                pass
        except BadRequest as exc:
            self._fail(400, str(exc))

    def _from_head(self, data: bytes) -> bytes:
        """The usual case, a read starting with a whole head and a Content-Length body: parsed
        straight from `data`, the body kept as it came (a big one in pieces, joined once),
        never copied through the buffer. Returns what is left for the buffer."""
        end = data.find(b"\r\n\r\n")
        if end < 0:
            return data
        req = _parse_head(data[:end])
        headers = req.headers
        if "transfer-encoding" in headers or "expect" in headers:
            return data  # the buffered parser does those
        self.req = req
        self.remaining = _content_length(headers)
        self.chunks = []
        self.state = "length"
        return self._body_piece(data[end + 4 :])

    def _body_piece(self, data: bytes) -> bytes:
        n = self.remaining
        piece = data if len(data) <= n else data[:n]
        if piece:
            assert self.req is not None
            self.req.body_size += len(piece)
            if self.req.body_size <= self.server.max_body:
                self.chunks.append(piece)
            self.remaining -= len(piece)
        if not self.remaining:
            self._complete()
        return data[len(piece) :] if len(piece) < len(data) else b""

    def _step(self) -> bool:
        """Advance the parser by one piece; False when it needs more bytes."""
        if not self.buf and self.state != "length":
            return False
        if self.state == "head":
            return self._head()
        if self.state == "length":
            return self._length_body()
        if self.state == "chunk-size":
            return self._chunk_size()
        if self.state == "chunk-data":
            return self._chunk_data()
        if self.state == "trailers":
            return self._trailers()
        return False

    def _head(self) -> bool:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buf) > MAX_HEAD:
                raise BadRequest("request head too large")
            return False
        self.req = _parse_head(bytes(self.buf[:end]))
        del self.buf[: end + 4]
        headers = self.req.headers
        if headers.get("expect", "").lower() == "100-continue" and self.transport is not None:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.chunks = []
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self.state = "chunk-size"
            return True
        self.remaining = _content_length(headers)
        self.state = "length"
        return True

    def _take(self, n: int) -> None:
        data = bytes(self.buf[:n])
        del self.buf[:n]
        assert self.req is not None
        self.req.body_size += len(data)
        if self.req.body_size <= self.server.max_body:
            self.chunks.append(data)

    def _length_body(self) -> bool:
        if self.remaining and not self.buf:
            return False
        n = min(self.remaining, len(self.buf))
        self._take(n)
        self.remaining -= n
        if self.remaining:
            return False
        self._complete()
        return True

    def _chunk_size(self) -> bool:
        end = self.buf.find(b"\r\n")
        if end < 0:
            if len(self.buf) > 1024:
                raise BadRequest("bad chunk size line")
            return False
        line = bytes(self.buf[:end]).split(b";", 1)[0].strip()
        del self.buf[: end + 2]
        try:
            self.remaining = int(line, 16)
        except ValueError:
            raise BadRequest("bad chunk size") from None
        self.state = "chunk-data" if self.remaining else "trailers"
        if self.remaining:
            self.remaining += 2  # the CRLF that ends the chunk
        return True

    def _chunk_data(self) -> bool:
        if not self.buf:
            return False
        data_left = self.remaining - 2
        if data_left > 0:
            n = min(data_left, len(self.buf))
            self._take(n)
            self.remaining -= n
            return True
        if len(self.buf) < self.remaining:
            return False
        del self.buf[: self.remaining]
        self.state = "chunk-size"
        return True

    def _trailers(self) -> bool:
        if self.buf.startswith(b"\r\n"):
            del self.buf[:2]
            self._complete()
            return True
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buf) > MAX_HEAD:
                raise BadRequest("trailers too large")
            return False
        assert self.req is not None
        lines = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
        del self.buf[: end + 4]
        self.req.trailers = _parse_fields(lines)
        self._complete()
        return True

    def _complete(self) -> None:
        req, self.req = self.req, None
        assert req is not None
        req.body = b"".join(self.chunks) if req.body_size <= self.server.max_body else b""
        self.chunks = []
        self.state = "head"
        if self.busy is None and not self.queue and not self.closing:
            self._answer(req)
        else:
            self.queue.append(req)
            self._dispatch()

    # ---- answering ----

    def _dispatch(self) -> None:
        while self.queue and self.busy is None and not self.closing:
            self._answer(self.queue.popleft())

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
        if self.transport is None or self.transport.is_closing():
            return
        keep = req.headers.get("connection", "").lower() != "close"
        if keep and resp.wire is not None:
            self.transport.write(resp.wire)
            return
        head = resp.encode_head(keep)
        if len(resp.body) < 64 * 1024:
            self.transport.write(head + resp.body)
        else:  # do not copy a 6 MB body just to glue a head on
            self.transport.write(head)
            self.transport.write(resp.body)
        if not keep:
            self.close()

    def _fail(self, status: int, message: str) -> None:
        if self.transport is not None and not self.transport.is_closing():
            body = f'{{"errorMessage":"{message}","errorType":"InvalidRequest"}}\n'.encode()
            self.transport.write(Response(status, body).encode_head(False) + body)
        self.close()


def _parse_head(head: bytes) -> Request:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest("malformed request line")
    return Request(parts[0], parts[1], _parse_fields(lines, 1))


def _parse_fields(lines: list[str], first: int = 0) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in lines[first:]:
        name, sep, value = line.partition(":")
        # no blank around a name (a folded line starts with one): `<= " "` is the cheap test
        if not sep or not name or name[0] <= " " or name[-1] <= " ":
            raise BadRequest("malformed header line")
        fields[name.lower()] = value.strip()
    return fields


def _content_length(headers: dict[str, str]) -> int:
    try:
        size = int(headers.get("content-length", "0"))
    except ValueError:
        raise BadRequest("bad Content-Length") from None
    if size < 0:
        raise BadRequest("bad Content-Length")
    return size


class Server:
    """Owns the listening socket and every live connection; stop() drops both at once."""

    def __init__(
        self,
        handler: Handler,
        max_body: int,
        on_error: Callable[[Request, Exception], None] | None = None,
    ) -> None:
        self.handler = handler
        self.max_body = max_body
        self.on_error = on_error  # told of a handler that raised (the client gets a 500)
        self.connections: set[_Connection] = set()
        self._server: asyncio.Server | None = None

    def handler_failed(self, req: Request, exc: Exception) -> None:
        log.error("%s %s failed", req.method, req.path, exc_info=exc)
        if self.on_error is not None:
            try:
                self.on_error(req, exc)
            except Exception:
                log.exception("reporting a failed request failed")

    async def start(self, host: str, port: int = 0) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._connection, host, port, reuse_address=True)
        return int(self._server.sockets[0].getsockname()[1])

    def _connection(self) -> _Connection:
        return _Connection(self)

    async def stop(self) -> None:
        if self._server is None:
            return
        server, self._server = self._server, None
        server.close()
        for conn in list(self.connections):
            conn.close()
            conn.connection_lost(None)
        await server.wait_closed()
