"""The floor for bench/invoke_overhead.py: the smallest HTTP/1.1 server that answers a POST with
its own body, on a keep-alive connection. Run as a separate process:

    python bench/floor_server.py [--mode asyncio|threads]

It binds 127.0.0.1 on a free port, prints the port on stdout and serves until SIGTERM/SIGINT.
Only what the benchmark's client sends is understood: requests with Content-Length (or none).

  asyncio  one asyncio.Protocol (the event-loop machinery any asyncio server pays; TCP_NODELAY
           is set by asyncio), the floor the benchmark's ratios are taken against
  threads  a blocking socket per connection in a thread (TCP_NODELAY set)
  aiohttp  a one-route aiohttp.web application (what the framework alone costs; a reference,
           never taken as the floor)
  relay    a minimal Lambda emulator on one asyncio.Protocol: the Invoke API and the Runtime API
           on the same port, no validation, no logs, the invoke's answer written before the
           runtime's 202. Not a floor: a reference for what a lean Python emulator can reach
           with the same runtime loop (AWS_LAMBDA_RUNTIME_API=127.0.0.1:<port>)
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import signal
import socket
import sys
import threading
import time

MAX_BODY = 16 * 1024 * 1024
HEADER_LIMIT = 64 * 1024


def _response(body: bytes | memoryview) -> list[bytes | memoryview]:
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
    )
    return [head, body]


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            n = int(value.strip())
            if not 0 <= n <= MAX_BODY:
                raise ValueError("body too large")
            return n
    return 0


class EchoProtocol(asyncio.Protocol):
    """Body chunks are kept as they arrive and joined once; a large answer goes out as two
    writes (head, body) so the body is not copied into one buffer first."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.head = b""
        self.chunks: list[bytes] = []
        self.have = 0
        self.need: int | None = None  # body size, once the head is read
        self.path = b""

    def data_received(self, data: bytes) -> None:
        while data:
            if self.need is None:
                buf = self.head + data
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    self.head = buf
                    if len(buf) > HEADER_LIMIT:
                        self.transport.close()
                    return
                try:
                    self.need = _content_length(buf[:end])
                    self.path = buf[: buf.find(b"\r\n")].split(b" ")[1]
                except (ValueError, IndexError):
                    self.transport.close()
                    return
                self.head, data = b"", buf[end + 4 :]
            take = self.need - self.have
            piece = data[:take] if len(data) > take else data
            data = data[len(piece) :]
            if piece:
                self.chunks.append(piece)
                self.have += len(piece)
            if self.have < self.need:
                return
            body = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
            self.chunks, self.have, self.need = [], 0, None
            self._answer(body)

    def _answer(self, body: bytes) -> None:
        head, _ = _response(body)
        if len(body) < 65536:
            self.transport.write(bytes(head) + body)  # one segment for a small answer
        else:
            self.transport.write(head)
            self.transport.write(body)


class RelayState:
    def __init__(self) -> None:
        self.queue: collections.deque[tuple[str, bytes]] = collections.deque()
        self.parked: RelayProtocol | None = None  # a runtime waiting in /next
        self.callers: dict[str, RelayProtocol] = {}  # request id -> the invoke's connection
        self.counter = 0


class RelayProtocol(EchoProtocol):
    """Same request framing as EchoProtocol; answers by path."""

    state: RelayState

    def _answer(self, body: bytes) -> None:  # called by EchoProtocol once a request is whole
        st, path = self.state, self.path
        if path.endswith(b"/invocations"):
            st.counter += 1
            rid = f"00000000-0000-0000-0000-{st.counter:012d}"
            st.callers[rid] = self
            if st.parked is not None:
                runtime, st.parked = st.parked, None
                runtime._event(rid, body)
            else:
                st.queue.append((rid, body))
        elif path.endswith(b"/invocation/next"):
            if st.queue:
                self._event(*st.queue.popleft())
            else:
                st.parked = self
        elif path.endswith(b"/response"):
            rid = path.split(b"/")[-2].decode()
            caller = st.callers.pop(rid, None)
            if caller is not None:  # the invoke's answer first, then the runtime's 202
                caller.transport.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
                )
            self.transport.write(
                b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\n"
                b'Content-Length: 16\r\n\r\n{"status":"OK"}\n'
            )
        else:
            self.transport.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")

    def _event(self, rid: str, body: bytes) -> None:
        head = (
            f"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: {rid}\r\n"
            f"Lambda-Runtime-Deadline-Ms: {int(time.time() * 1000) + 3000}\r\n"
            "Lambda-Runtime-Invoked-Function-Arn: "
            "arn:aws:lambda:us-east-1:012345678912:function:echo-loop\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.transport.write(head.encode() + body)


async def serve_asyncio(protocol: type[EchoProtocol] = EchoProtocol) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(protocol, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


async def serve_aiohttp() -> None:
    from aiohttp import web

    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read(), content_type="application/json")

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post("/{tail:.*}", echo)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None and server.sockets
    print(server.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def _handle(conn: socket.socket) -> None:
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = bytearray()
    try:
        while True:
            end = buf.find(b"\r\n\r\n")
            while end < 0:
                chunk = conn.recv(262144)
                if not chunk or len(buf) > HEADER_LIMIT:
                    return
                buf += chunk
                end = buf.find(b"\r\n\r\n")
            need = _content_length(bytes(buf[:end]))
            total = end + 4 + need
            while len(buf) < total:
                chunk = conn.recv(max(262144, total - len(buf)))
                if not chunk:
                    return
                buf += chunk
            body = bytes(buf[end + 4 : total])
            del buf[:total]
            head, _ = _response(body)
            if len(body) < 65536:
                conn.sendall(bytes(head) + body)  # one segment for a small answer
            else:
                conn.sendall(head)
                conn.sendall(body)
    except (OSError, ValueError):
        return
    finally:
        conn.close()


def serve_threads() -> None:
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    print(lsock.getsockname()[1], flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            conn, _ = lsock.accept()
            threading.Thread(target=_handle, args=(conn,), daemon=True).start()
    except KeyboardInterrupt:
        pass
    finally:
        lsock.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mode", choices=("asyncio", "threads", "aiohttp", "relay"), default="asyncio")
    args = ap.parse_args()
    if args.mode == "asyncio":
        asyncio.run(serve_asyncio())
    elif args.mode == "relay":
        RelayProtocol.state = RelayState()
        asyncio.run(serve_asyncio(RelayProtocol))
    elif args.mode == "aiohttp":
        asyncio.run(serve_aiohttp())
    else:
        serve_threads()


if __name__ == "__main__":
    main()
