"""The Runtime API's HTTP/1.1 server at the byte level: what real runtime clients send that
the suites through whole runtimes do not reach (trailers, 100-continue, pipelining, hang-ups,
garbage). A real RuntimeAPI on a real socket; the client is a raw socket."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time
from collections.abc import Awaitable, Callable

from workbench.core.engine.runtime_api import PendingInvoke, RuntimeAPI

RID = "8476a536-e9f4-11e8-9739-2dfe598c3fcd"


def run(test: Callable[[RuntimeAPI], Awaitable[None]]) -> None:
    async def main() -> None:
        api = RuntimeAPI()
        await api.start()
        try:
            await asyncio.wait_for(test(api), 60)
        finally:
            await api.stop()

    asyncio.run(main())


async def until(check: Callable[[], object], what: str, timeout: float = 30) -> None:
    """Let the server (in this same event loop) run until `check()` holds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.001)


def parked(api: RuntimeAPI) -> bool:
    """A /next is waiting in the server for an event (the Runtime API keeps it as a Later)."""
    return api._parked is not None and not api._parked.done


async def read_up_to(api: RuntimeAPI, size: int) -> None:
    await until(lambda: received(api) == size, f"the server to read {size} bytes of the body")


def received(api: RuntimeAPI) -> int:
    """Bytes of request body the server has read so far (of the one request being read)."""
    return sum(c.req.body_size for c in api._server.connections if c.req is not None)


async def exchange(
    api: RuntimeAPI, raw: bytes, answers: int = 1
) -> list[tuple[int, dict[str, str], bytes]]:
    """Send raw bytes, read `answers` HTTP responses (Content-Length framed)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", api.port)
    writer.write(raw)
    await writer.drain()
    out = []
    for _ in range(answers):
        status_line = await reader.readline()
        status = int(status_line.split()[1])
        headers = {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        out.append((status, headers, body))
    writer.close()
    return out


async def hand_out(api: RuntimeAPI, payload: bytes = b'{"k":1}') -> PendingInvoke:
    inv = PendingInvoke(
        RID, payload, {"Lambda-Runtime-Aws-Request-Id": RID, "Lambda-Runtime-Deadline-Ms": "1"}
    )
    api.dispatch(inv)
    [(status, headers, body)] = await exchange(
        api, b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    )
    assert status == 200 and body == payload
    assert headers["lambda-runtime-aws-request-id"] == RID
    return inv


def chunked(path: str, pieces: list[bytes], trailers: dict[str, str]) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
        "Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n"
        "\r\n"
    ).encode()
    body = b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in pieces) + b"0\r\n"
    tail = "".join(f"{k}: {v}\r\n" for k, v in trailers.items()).encode() + b"\r\n"
    return head + body + tail


def test_chunked_response_is_reassembled() -> None:
    async def t(api: RuntimeAPI) -> None:
        inv = await hand_out(api)
        [(status, _, body)] = await exchange(
            api,
            chunked(
                f"/2018-06-01/runtime/invocation/{RID}/response", [b'{"hel', b'lo": ', b'"go"}'], {}
            ),
        )
        assert status == 202 and json.loads(body) == {"status": "OK"}
        result = inv.result
        assert result is not None
        assert result.payload == b'{"hello": "go"}' and not result.function_error

    run(t)


def test_error_trailers_turn_a_response_into_a_function_error() -> None:
    async def t(api: RuntimeAPI) -> None:
        inv = await hand_out(api)
        doc = {"errorMessage": "stream broke", "errorType": "StreamError"}
        trailers = {
            "Lambda-Runtime-Function-Error-Type": "StreamError",
            "Lambda-Runtime-Function-Error-Body": base64.b64encode(
                json.dumps(doc).encode()
            ).decode(),
        }
        [(status, _, _)] = await exchange(
            api, chunked(f"/2018-06-01/runtime/invocation/{RID}/response", [b"partial"], trailers)
        )
        assert status == 202
        result = inv.result
        assert result is not None
        assert result.function_error and json.loads(result.payload) == doc

    run(t)


def test_expect_100_continue_is_answered_before_the_body() -> None:
    async def t(api: RuntimeAPI) -> None:
        inv = await hand_out(api)
        reader, writer = await asyncio.open_connection("127.0.0.1", api.port)
        writer.write(
            f"POST /2018-06-01/runtime/invocation/{RID}/response HTTP/1.1\r\n"
            "Host: 127.0.0.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n".encode()
        )
        assert await reader.readline() == b"HTTP/1.1 100 Continue\r\n"
        assert await reader.readline() == b"\r\n"
        writer.write(b"true")
        assert (await reader.readline()).startswith(b"HTTP/1.1 202")
        writer.close()
        assert inv.result is not None and inv.result.payload == b"true"

    run(t)


def test_pipelined_requests_are_answered_in_order() -> None:
    async def t(api: RuntimeAPI) -> None:
        await hand_out(api)
        post = (
            f"POST /2018-06-01/runtime/invocation/{RID}/response HTTP/1.1\r\n"
            "Host: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}"
        ).encode()
        answers = await exchange(api, post + post + b"GET /2018-06-01/ping HTTP/1.1\r\n\r\n", 3)
        assert [a[0] for a in answers] == [202, 403, 200]
        assert json.loads(answers[1][2])["errorType"] == "InvalidStateTransition"
        assert answers[2][2] == b"pong"

    run(t)


def test_garbage_gets_400_and_the_server_keeps_serving() -> None:
    async def t(api: RuntimeAPI) -> None:
        [(status, _, _)] = await exchange(api, b"NONSENSE\r\n\r\n")
        assert status == 400
        [(status, _, _)] = await exchange(api, b"POST /x HTTP/1.1\r\nContent-Length: -5\r\n\r\n")
        assert status == 400
        [(status, _, body)] = await exchange(api, b"GET /2018-06-01/ping HTTP/1.1\r\n\r\n")
        assert status == 200 and body == b"pong"

    run(t)


def test_a_next_that_hangs_up_loses_no_event() -> None:
    async def t(api: RuntimeAPI) -> None:
        sock = socket.create_connection(("127.0.0.1", api.port))
        sock.sendall(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        await until(lambda: parked(api), "the /next to be parked")
        later = api._parked
        sock.close()
        await until(lambda: not api._server.connections, "the server to see the hang-up")
        assert later is not None and later.done  # cancelled: it can no longer take an event
        inv = await hand_out(api, b'{"survived":true}')  # delivered to the next /next
        assert inv.request_id == RID

    run(t)


def test_wrong_method_and_unknown_path() -> None:
    async def t(api: RuntimeAPI) -> None:
        [(status, _, _)] = await exchange(
            api, b"POST /2018-06-01/runtime/invocation/next HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
        )
        assert status == 405
        [(status, _, body)] = await exchange(api, b"GET /nope HTTP/1.1\r\n\r\n")
        assert status == 404 and body == b"404 page not found\n"

    run(t)


def test_oversized_response_is_counted_not_kept() -> None:
    async def t(api: RuntimeAPI) -> None:
        inv = await hand_out(api)
        size = 6_291_556 + 10
        raw = (
            f"POST /2018-06-01/runtime/invocation/{RID}/response HTTP/1.1\r\n"
            f"Host: 127.0.0.1\r\nContent-Length: {size}\r\n\r\n"
        ).encode() + b"x" * size
        [(status, _, body)] = await exchange(api, raw)
        assert status == 413
        assert json.loads(body)["errorType"] == "RequestEntityTooLarge"
        assert inv.result is not None
        doc = json.loads(inv.result.payload)
        assert doc["errorType"] == "Function.ResponseSizeTooLarge"
        assert f"({size} bytes)" in doc["errorMessage"]

    run(t)


def test_a_request_pipelined_behind_a_parked_next_waits_its_turn() -> None:
    """A parked /next is answered from a callback (dispatch); what the same connection sent
    after it is answered after it, in order."""

    async def t(api: RuntimeAPI) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", api.port)
        writer.write(
            b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            b"GET /2018-06-01/ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        )
        await writer.drain()
        await until(lambda: parked(api), "the first request to be parked")
        api.dispatch(PendingInvoke(RID, b'{"k":1}', {"Lambda-Runtime-Aws-Request-Id": RID}))
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ") and RID.encode() in head
        assert await reader.readexactly(7) == b'{"k":1}'
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ")
        assert await reader.readexactly(4) == b"pong"
        writer.close()

    run(t)


def test_a_body_in_pieces_with_a_request_behind_it() -> None:
    """A Content-Length body that arrives over several reads is kept as it came and joined
    once; what follows it in the last read is the next request."""

    async def t(api: RuntimeAPI) -> None:
        inv = await hand_out(api)
        body = b'"' + b"x" * 300_000 + b'"'
        raw = (
            f"POST /2018-06-01/runtime/invocation/{RID}/response HTTP/1.1\r\n"
            f"Host: 127.0.0.1\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        head_size = len(raw) - len(body)
        reader, writer = await asyncio.open_connection("127.0.0.1", api.port)
        for at in range(0, len(raw) - 1000, 70_000):
            end = min(at + 70_000, len(raw) - 1000)
            writer.write(raw[at:end])
            await writer.drain()
            # separate reads on the server's side: it has read this piece before the next
            await read_up_to(api, end - head_size)
        writer.write(
            raw[len(raw) - 1000 :] + b"GET /2018-06-01/ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 202 ")
        await reader.readexactly(int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0]))
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ") and await reader.readexactly(4) == b"pong"
        writer.close()
        assert inv.result is not None and inv.result.payload == body

    run(t)
