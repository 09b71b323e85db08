"""Both of workbench's own HTTP servers (the Runtime API and the Invoke API) at the byte
level, answering malformed input as a strict HTTP/1.1 server does (RFC 9112): refused with
400, 408, 417, 431, 501 or 505, and closed, so nothing smuggled behind a bad request is ever
answered. Every case is also fed to h11, an independent parser (test-only), and the verdicts
compared: whatever h11 refuses, workbench refuses; where workbench is stricter than h11, the
table says why.

The servers are the real ones on real sockets, in an event loop on a thread of this process;
the client is a raw socket."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import h11
import pytest

from workbench.core.engine.runtime_api import RuntimeAPI
from workbench.core.invoke_api import InvokeAPI

REFUSALS = (400, 408, 417, 431, 501, 505)


@dataclass
class Servers:
    loop: asyncio.AbstractEventLoop
    runtime: RuntimeAPI
    invoke: InvokeAPI


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> Servers:
        runtime = RuntimeAPI()
        await runtime.start()
        invoke = InvokeAPI({}, port=0)
        await invoke.start()
        return Servers(loop, runtime, invoke)

    started = asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    yield started

    async def stop() -> None:
        await started.runtime.stop()
        await started.invoke.stop()

    asyncio.run_coroutine_threadsafe(stop(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def _ports(s: Servers) -> dict[str, tuple[int, str]]:
    return {
        "runtime": (s.runtime.port, "/2018-06-01/ping"),
        "invoke": (s.invoke.port, "/2015-03-31/functions/nope/invocations"),
    }


@dataclass
class Answer:
    statuses: list[int]
    closed: bool  # the server closed the connection after answering
    raw: bytes


def exchange(port: int, data: bytes, pieces: int = 1, wait_close: float = 15.0) -> Answer:
    """Send `data` (in `pieces` writes), read until the server closes or `wait_close`
    passes, and report every status line seen."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        step = max(1, len(data) // pieces)
        for at in range(0, len(data), step):
            try:
                sock.sendall(data[at : at + step])
            except OSError:
                break  # refused and closed part-way through a big request: read the answer
            if pieces > 1:
                time.sleep(0.001)
        got = b""
        closed = False
        sock.settimeout(wait_close)
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    closed = True
                    break
                got += chunk
        except TimeoutError:
            pass
        except ConnectionResetError:
            closed = True
    finally:
        sock.close()
    statuses = [
        int(line.split()[1])
        for line in got.split(b"\r\n")
        if line.startswith(b"HTTP/1.1 ") and line[9:12].isdigit()
    ]
    return Answer(statuses, closed, got)


def h11_refuses(data: bytes) -> bool:
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(data)
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA or isinstance(event, h11.EndOfMessage):
                return False
    except h11.RemoteProtocolError:
        return True


HEAD = "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
SMUGGLED = "GET /smuggled HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@dataclass(frozen=True)
class Case:
    name: str
    text: str  # {path} is the API's own path
    status: int
    stricter_than_h11: str = ""  # why workbench refuses what h11 lets through

    def data(self, path: str) -> bytes:
        return self.text.replace("{path}", path).encode("latin-1")


CASES = [
    Case(
        "two different Content-Length",
        HEAD + "Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        400,
    ),
    Case(
        "Content-Length twice with one value",
        HEAD + "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
        400,
        "llhttp refuses any repeated Content-Length; RFC 9112 6.3 allows refusing it",
    ),
    Case(
        "Content-Length and Transfer-Encoding, a request smuggled behind",
        HEAD + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
        400,
        "RFC 9112 6.1: a server may process the chunked body or refuse; refusing, it must close",
    ),
    Case("Transfer-Encoding xchunked", HEAD + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 501),
    Case(
        "Transfer-Encoding gzip, chunked",
        HEAD + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        501,
    ),
    Case("Content-Length +3", HEAD + "Content-Length: +3\r\n\r\nabc", 400),
    Case("Content-Length 1_0", HEAD + "Content-Length: 1_0\r\n\r\n0123456789", 400),
    Case("Content-Length -1", HEAD + "Content-Length: -1\r\n\r\n", 400),
    Case(
        "Content-Length overflowing 64 bits",
        HEAD + "Content-Length: 99999999999999999999999\r\n\r\n",
        400,
    ),
    Case("chunk size 0x3", HEAD + "Transfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n", 400),
    Case(
        "garbage where a chunk's CRLF belongs",
        HEAD + "Transfer-Encoding: chunked\r\n\r\n3\r\nabcXY0\r\n\r\n",
        400,
    ),
    Case("space inside a header name", HEAD + "Foo Bar: 1\r\n\r\n", 400),
    Case("space before the colon", HEAD + "Foo : 1\r\n\r\n", 400),
    Case("control byte in a header name", HEAD + "Fo\x01o: 1\r\n\r\n", 400),
    Case("NUL in a header value", HEAD + "A: b\x00c\r\n\r\n", 400),
    Case("DEL in a header value", HEAD + "A: b\x7fc\r\n\r\n", 400, "h11 refuses it too"),
    Case(
        "obsolete line folding",
        HEAD + "A: b\r\n c\r\n\r\n",
        400,
        "RFC 9112 5.2: a server may refuse obs-fold with 400",
    ),
    Case(
        "bare LF line ends",
        "POST {path} HTTP/1.1\nHost: 127.0.0.1\n\n",
        400,
        "RFC 9112 2.2 allows a bare LF; llhttp refuses it, and no runtime client sends one",
    ),
    Case(
        "HTTP/1.7",
        "GET {path} HTTP/1.7\r\nHost: 127.0.0.1\r\n\r\n",
        505,
        "h11 leaves versions to the server",
    ),
    Case(
        "HTTP/2.0 on the HTTP/1.1 port",
        "GET {path} HTTP/2.0\r\nHost: 127.0.0.1\r\n\r\n",
        505,
        "h11 leaves versions to the server",
    ),
    Case("HTTP/0.9 request line", "GET {path}\r\n\r\n", 505),
    Case(
        "10,000 header fields",
        HEAD + "".join(f"X-{i}: v\r\n" for i in range(10_000)) + "\r\n",
        431,
        "h11 bounds only bytes; workbench also bounds fields (100)",
    ),
    Case(
        "101 header fields",
        HEAD + "".join(f"X-{i}: v\r\n" for i in range(101)) + "\r\n",
        431,
        "h11 bounds only bytes; workbench also bounds fields (100)",
    ),
    Case(
        "a 70 KB header line",
        HEAD + "X-Big: " + "a" * 70_000 + "\r\n\r\n",
        431,
        "h11's 16 KB bound applies to what it buffers, not to a head handed over whole",
    ),
    Case("a space inside the target", "GET /a b HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400),
    Case("a method that is no token", "G@T {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400),
    Case(
        "an Expect other than 100-continue",
        HEAD + "Expect: 200-ok\r\nContent-Length: 0\r\n\r\n",
        417,
        "h11 leaves Expect to the server; RFC 9110 10.1.1 says 417",
    ),
]


@pytest.mark.parametrize("api", ["runtime", "invoke"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_malformed_request_is_refused_and_closed(servers: Servers, api: str, case: Case) -> None:
    port, path = _ports(servers)[api]
    answer = exchange(port, case.data(path))
    assert answer.statuses == [case.status], answer.raw[:300]
    assert answer.closed, "a refused connection is closed"
    assert b"Connection: close\r\n" in answer.raw
    assert b"\r\nDate: " in answer.raw


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_workbench_refuses_all_that_h11_refuses(case: Case) -> None:
    """The differential check: h11 never refuses what workbench lets through, and every case
    workbench refuses beyond h11 is a known, stated difference."""
    data = case.data("/x")
    if h11_refuses(data):
        assert not case.stricter_than_h11 or case.stricter_than_h11 == "h11 refuses it too"
    else:
        assert case.stricter_than_h11, f"h11 accepts {case.name!r}; say why workbench does not"


GOOD = [
    ("plain GET", "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
    (
        "chunked with trailers",
        HEAD + "Transfer-Encoding: chunked\r\nTrailer: X-A\r\n\r\n3\r\nabc\r\n0\r\nX-A: 1\r\n\r\n",
    ),
    ("chunk extension", HEAD + "Transfer-Encoding: chunked\r\n\r\n3;a=b\r\nabc\r\n0\r\n\r\n"),
    (
        "HTTP/1.0 with keep-alive",
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n",
    ),
    (
        "100 header fields",
        HEAD + "".join(f"X-{i}: v\r\n" for i in range(97)) + "Content-Length: 0\r\n\r\n",
    ),
    ("obs-text in a value", HEAD + "A: caf\xe9\r\nContent-Length: 0\r\n\r\n"),
]


@pytest.mark.parametrize("api", ["runtime", "invoke"])
@pytest.mark.parametrize(("name", "text"), GOOD, ids=[g[0] for g in GOOD])
def test_well_formed_requests_are_served_and_kept_open(
    servers: Servers, api: str, name: str, text: str
) -> None:
    port, path = _ports(servers)[api]
    data = text.replace("{path}", path).encode("latin-1")
    assert not h11_refuses(data)
    answer = exchange(port, data, wait_close=1.0)
    assert len(answer.statuses) == 1 and answer.statuses[0] not in REFUSALS, answer.raw[:300]
    assert not answer.closed


@pytest.mark.parametrize("api", ["runtime", "invoke"])
def test_a_long_head_gets_the_same_answer_however_tcp_splits_it(servers: Servers, api: str) -> None:
    port, path = _ports(servers)[api]
    data = (HEAD.replace("{path}", path) + "X-Big: " + "a" * 70_000 + "\r\n\r\n").encode()
    for pieces in (1, 7, 70, 700):
        answer = exchange(port, data, pieces=pieces)
        assert answer.statuses == [431], (pieces, answer.raw[:200])
        assert answer.closed


@pytest.mark.parametrize("api", ["runtime", "invoke"])
def test_http_1_0_without_keep_alive_is_answered_then_closed(servers: Servers, api: str) -> None:
    port, path = _ports(servers)[api]
    answer = exchange(port, f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
    assert len(answer.statuses) == 1 and answer.statuses[0] not in REFUSALS
    assert answer.closed


@pytest.mark.parametrize("api", ["runtime", "invoke"])
def test_nothing_behind_a_smuggling_attempt_is_answered(servers: Servers, api: str) -> None:
    port, path = _ports(servers)[api]
    case = next(c for c in CASES if c.name.startswith("Content-Length and Transfer-Encoding"))
    answer = exchange(port, case.data(path))
    assert answer.statuses == [400] and b"smuggled" not in answer.raw
    # and the server goes on serving everyone else
    good = exchange(
        port, f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode(), wait_close=1.0
    )
    assert len(good.statuses) == 1 and good.statuses[0] not in REFUSALS
