"""Time limits, memory bounds, guards and wire details of workbench's own HTTP servers.

Time limits are checked on http11.Server itself (the server both APIs run on) with timeouts
of a second, and on a real RuntimeAPI for its parked /next; memory bounds on a real
`workbench serve` whose resident size is read from /proc while clients misbehave; guards
and wire details through real requests. Nothing here asserts how long anything took."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, StartServer
from workbench.core.engine import http11
from workbench.core.engine.runtime_api import PendingInvoke, RuntimeAPI

ECHO = str(FIXTURES / "api-echo")
RID = "8476a536-e9f4-11e8-9739-2dfe598c3fcd"


class Loop:
    """An event loop on a thread, for servers the test talks to with blocking sockets."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: object, timeout: float = 30) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def loop() -> Iterator[Loop]:
    running = Loop()
    yield running
    running.close()


def ok(req: http11.Request) -> http11.Response:
    return http11.Response(200, b"ok")


def start_server(loop: Loop, **timeouts: float | None) -> tuple[http11.Server, int]:
    server = http11.Server(ok, 1024 * 1024, **timeouts)  # type: ignore[arg-type]

    async def start() -> int:
        return await server.start("127.0.0.1", 0)

    port = loop.run(start())
    assert isinstance(port, int)
    return server, port


def read_until_closed(sock: socket.socket, limit: float = 30) -> bytes:
    sock.settimeout(limit)
    got = b""
    try:
        while chunk := sock.recv(65536):
            got += chunk
    except ConnectionResetError:
        pass
    return got


def is_closed(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(65536) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    finally:
        sock.setblocking(True)


# ---- time limits ----------------------------------------------------------------------------


def test_slowloris_connections_are_closed_while_they_still_trickle(loop: Loop) -> None:
    """Fifty clients each send a head one field at a time, slowly, and would go on for a
    minute; the head timeout (1 s here) closes every one with a 408 long before."""
    _, port = start_server(loop, head_timeout=1.0)
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(50)]
    for sock in socks:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    open_ = set(range(len(socks)))
    answers: dict[int, bytes] = {}
    for step in range(600):  # up to a minute of trickling, 0.1 s a field
        for i in list(open_):
            try:
                socks[i].sendall(f"X-Slow-{step}: v\r\n".encode())
            except OSError:
                pass
            if _answered(socks[i], answers, i):
                open_.discard(i)
        if not open_:
            break
        time.sleep(0.1)
    assert not open_, f"{len(open_)} slow connections still open after a minute"
    for i, sock in enumerate(socks):
        answers[i] = answers.get(i, b"") + read_until_closed(sock, 5)
        assert answers[i].startswith(b"HTTP/1.1 408 "), answers[i][:100]
        sock.close()


def _answered(sock: socket.socket, answers: dict[int, bytes], i: int) -> bool:
    """Keep what the server sent on connection i; True once it answered or closed."""
    sock.setblocking(False)
    try:
        data = sock.recv(65536)
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    finally:
        sock.setblocking(True)
    answers[i] = answers.get(i, b"") + data
    return data == b"" or b"\r\n\r\n" in answers[i]


@pytest.mark.parametrize(
    "sent",
    [b"", b"GET /\r\n", b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"],
    ids=["nothing", "an HTTP/0.9 line", "half a head"],
)
def test_a_head_that_never_completes_is_closed(loop: Loop, sent: bytes) -> None:
    _, port = start_server(loop, head_timeout=1.0)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(sent)
        got = read_until_closed(sock)
    assert got.startswith(b"HTTP/1.1 408 Request Timeout\r\n")


def test_a_stalled_body_is_closed(loop: Loop) -> None:
    _, port = start_server(loop, body_timeout=1.0)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n0123456789")
        got = read_until_closed(sock)
    assert got.startswith(b"HTTP/1.1 408 ")


def test_an_idle_keep_alive_connection_is_closed(loop: Loop) -> None:
    _, port = start_server(loop, idle_timeout=1.0)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        got = read_until_closed(sock)
    assert got.startswith(b"HTTP/1.1 200 OK\r\n") and got.endswith(b"\r\n\r\nok")


def test_a_busy_connection_is_not_idle(loop: Loop) -> None:
    """Keep-alive traffic more often than the idle timeout keeps the connection open."""
    _, port = start_server(loop, idle_timeout=1.0)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(30)
        for _ in range(8):
            sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            got = b""
            while not got.endswith(b"ok"):
                chunk = sock.recv(4096)
                assert chunk, "closed while in use"
                got += chunk
            time.sleep(0.4)


def test_the_runtime_apis_parked_next_outlives_every_timeout(loop: Loop) -> None:
    """A runtime waits in /next for as long as no event comes: no timeout applies to it,
    and its connection is not idle while its function works either."""

    async def make() -> RuntimeAPI:
        api = RuntimeAPI()
        await api.start()
        api._server.head_timeout = api._server.body_timeout = 0.5
        return api

    api = loop.run(make())
    assert isinstance(api, RuntimeAPI)
    assert api._server.idle_timeout is None
    with socket.create_connection(("127.0.0.1", api.port)) as sock:
        sock.sendall(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        time.sleep(3)  # several sweeps of the timer
        assert not is_closed(sock)
        inv = PendingInvoke(RID, b'{"late":true}', {"Lambda-Runtime-Aws-Request-Id": RID})
        loop.loop.call_soon_threadsafe(api.dispatch, inv)
        sock.settimeout(30)
        got = b""
        while not got.endswith(b'{"late":true}'):
            chunk = sock.recv(4096)
            assert chunk
            got += chunk
        assert got.startswith(b"HTTP/1.1 200 OK\r\n")
        time.sleep(2)  # the function "works": the connection is idle, and stays open
        sock.sendall(
            f"POST /2018-06-01/runtime/invocation/{RID}/response HTTP/1.1\r\n"
            "Host: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}".encode()
        )
        assert sock.recv(4096).startswith(b"HTTP/1.1 202 Accepted\r\n")
    loop.run(api.stop())


# ---- memory bounds, on a real serve ---------------------------------------------------------


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


class Sampler:
    """The highest resident size of a process, sampled every few milliseconds."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = rss_mb(pid)
        self.baseline = self.peak
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss_mb(self.pid))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(5)
        return self.peak


def invoke_bytes(event: object) -> bytes:
    body = json.dumps(event).encode()
    return (
        b"POST /2015-03-31/functions/api-echo/invocations HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


def answered_normally(url: str) -> bool:
    import urllib.request

    req = urllib.request.Request(
        f"{url}/2015-03-31/functions/api-echo/invocations", data=b'{"after": 1}', method="POST"
    )
    with urllib.request.urlopen(req, timeout=60) as res:
        return bool(json.loads(res.read())["event"] == {"after": 1})


@pytest.mark.integration
def test_a_client_that_never_reads_its_answers_does_not_grow_serve(serve: StartServer) -> None:
    """300 pipelined invokes whose answers are 1 MiB each, never read (the fault run saw
    serve grow to 490 MB): serve stops answering that connection once the answers pile up."""
    server = serve(ECHO, "--port", "0")
    assert answered_normally(server.url)  # warm, and the baseline is the warm size
    sampler = Sampler(server.proc.pid)
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.sendall(invoke_bytes({"big": 1024 * 1024}) * 300)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # time enough for the 300 to grow serve, had they
        time.sleep(0.2)
    peak = sampler.stop()
    assert peak - sampler.baseline < 60, (sampler.baseline, peak)
    assert answered_normally(server.url)  # everyone else is still served
    sock.close()


@pytest.mark.integration
def test_pipelined_bodies_behind_a_slow_invoke_are_not_all_read(serve: StartServer) -> None:
    """A slow invoke, and 100 pipelined 5 MB requests behind it on the same connection (the
    fault run saw 535 MB): serve reads a few, then stops reading until it answers them."""
    server = serve(ECHO, "--port", "0")
    assert answered_normally(server.url)
    sampler = Sampler(server.proc.pid)
    sock = socket.create_connection(("127.0.0.1", server.port))
    big = invoke_bytes({"pad": "x" * (5 * 1024 * 1024)})
    sent = 0

    def send() -> None:
        nonlocal sent
        try:
            sock.sendall(invoke_bytes({"sleep": 8}))
            for _ in range(100):
                sock.sendall(big)
                sent += 1
        except OSError:
            pass

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    time.sleep(6)  # while the first invoke sleeps
    peak = sampler.stop()
    assert sent < 100, "serve read every body while the first invoke was still running"
    assert peak - sampler.baseline < 80, (sampler.baseline, peak)
    sock.close()
    sender.join(30)
    assert answered_normally(server.url)


# ---- out of file descriptors ----------------------------------------------------------------


@pytest.mark.integration
def test_accept_failures_are_one_line_a_second_and_serve_recovers() -> None:
    """Under a low `ulimit -n`, connections beyond it cannot be accepted; asyncio would print
    a traceback for each (33,226 of them in 17 s in the fault run)."""
    import re
    import resource
    import subprocess

    from tests.conftest import workbench_cmd

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    proc = subprocess.Popen(
        workbench_cmd("serve", ECHO, "--port", "0"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=low_limit,
    )
    assert proc.stderr is not None
    lines: list[str] = []

    def read() -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            lines.append(raw.decode(errors="replace"))

    threading.Thread(target=read, daemon=True).start()
    try:
        deadline = time.monotonic() + 90
        url = ""
        while not url and time.monotonic() < deadline:
            found = [m.group(1) for line in lines if (m := re.search(r"API on (http://\S+)", line))]
            url = found[0] if found else ""
            time.sleep(0.05)
        assert url, "".join(lines)
        port = int(url.rsplit(":", 1)[1])
        started = time.monotonic()
        socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(150)]
        while sum("cannot accept" in line for line in lines) < 3:
            time.sleep(0.1)
            assert time.monotonic() - started < 120, "".join(lines[-20:])
        for sock in socks:
            sock.close()
        elapsed = time.monotonic() - started
        said = sum("cannot accept" in line for line in lines)
        assert answered_normally(url)
    finally:
        proc.send_signal(2)
        proc.wait(60)
    text = "".join(lines)
    assert "Traceback" not in text
    assert said <= elapsed + 2, (said, elapsed)
    assert "Too many open files" in text


def test_the_limits_the_readme_states_are_the_servers_own(loop: Loop) -> None:
    from workbench.core.invoke_api import InvokeAPI

    async def make() -> tuple[http11.Server, http11.Server]:
        return InvokeAPI({}, port=0)._server, RuntimeAPI()._server

    made = loop.run(make())
    assert isinstance(made, tuple)
    invoke, runtime = made
    assert (invoke.head_timeout, invoke.body_timeout, invoke.idle_timeout) == (10.0, 30.0, 75.0)
    assert (runtime.head_timeout, runtime.body_timeout, runtime.idle_timeout) == (10.0, 30.0, None)
    assert (http11.MAX_HEAD, http11.MAX_FIELDS, http11.MAX_QUEUED) == (32 * 1024, 100, 2)
