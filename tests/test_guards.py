"""Requests a web page makes are refused, whatever --host says; and the wire details the
official emulator has (spec 1.6a) are there. Real servers, real requests."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
from collections.abc import Awaitable, Callable

import pytest

from tests.conftest import FIXTURES, Server, StartServer, lambda_client
from workbench.core.engine.runtime_api import PendingInvoke, RuntimeAPI

ECHO = str(FIXTURES / "api-echo")
ARN = "arn:aws:lambda:us-east-1:012345678912:function:api-echo"
RID = "8476a536-e9f4-11e8-9739-2dfe598c3fcd"
GET_FUNCTION = "/2015-03-31/functions/api-echo"


def ask(
    port: int, path: str, fields: list[tuple[str, str]], method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    """One request with exactly these header fields (repeats allowed), on a fresh connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    for name, value in fields:
        conn.putheader(name, value)
    conn.putheader("Content-Length", "0")
    conn.endheaders()
    resp = conn.getresponse()
    out = resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    conn.close()
    return out


def own_address() -> str | None:
    """This machine's address on its default route, if it has one (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else str(address)


@pytest.fixture
def wide_open(serve: StartServer) -> Server:
    return serve(ECHO, "--port", "0", "--host", "0.0.0.0")


def test_dns_rebinding_is_refused_even_when_serving_every_address(wide_open: Server) -> None:
    """A page whose own name was made to resolve to this machine sends its name as Host;
    GetFunction would show it the function's environment variables."""
    status, headers, body = ask(
        wide_open.port, GET_FUNCTION, [("Host", f"rebind.example:{wide_open.port}")]
    )
    assert status == 403
    assert headers["x-amzn-errortype"] == "AccessDeniedException"
    assert "rebind.example" in json.loads(body)["Message"]
    assert b"Variables" not in body


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
def test_loopback_names_are_served_with_any_host_flag(wide_open: Server, host: str) -> None:
    status, _, body = ask(wide_open.port, GET_FUNCTION, [("Host", f"{host}:{wide_open.port}")])
    assert status == 200 and json.loads(body)["Configuration"]["FunctionName"] == "api-echo"


def test_an_address_of_this_machine_is_served_and_a_foreign_one_is_not(wide_open: Server) -> None:
    foreign, _, _ = ask(wide_open.port, GET_FUNCTION, [("Host", "203.0.113.7")])
    assert foreign == 403
    address = own_address()
    if address is None:
        pytest.skip("this machine has no address but loopback")
    status, _, _ = ask(wide_open.port, GET_FUNCTION, [("Host", f"{address}:{wide_open.port}")])
    assert status == 200


@pytest.mark.parametrize(
    "fields",
    [
        [("Host", "127.0.0.1"), ("Host", "rebind.example")],
        [("Host", "127.0.0.1"), ("Host", "127.0.0.1")],
        [
            ("Host", "127.0.0.1"),
            ("Origin", "http://127.0.0.1:1"),
            ("Origin", "http://evil.example"),
        ],
    ],
    ids=["two hosts", "the same host twice", "two origins"],
)
def test_a_repeated_host_or_origin_is_refused(
    wide_open: Server, fields: list[tuple[str, str]]
) -> None:
    status, headers, body = ask(wide_open.port, GET_FUNCTION, fields)
    assert status == 403 and headers["x-amzn-errortype"] == "AccessDeniedException"
    assert "more than one" in json.loads(body)["Message"]


def test_a_foreign_origin_is_refused_and_its_own_is_not(wide_open: Server) -> None:
    port = wide_open.port
    status, _, _ = ask(
        port, GET_FUNCTION, [("Host", "127.0.0.1"), ("Origin", "http://evil.example")]
    )
    assert status == 403
    status, _, _ = ask(
        port, GET_FUNCTION, [("Host", "127.0.0.1"), ("Origin", f"http://127.0.0.1:{port + 1}")]
    )
    assert status == 403  # another port on this machine is another origin
    status, _, _ = ask(
        port, GET_FUNCTION, [("Host", "127.0.0.1"), ("Origin", f"http://localhost:{port}")]
    )
    assert status == 200


def test_the_qualifier_stays_in_the_invoked_arn(serve: StartServer) -> None:
    client = lambda_client(serve(ECHO, "--port", "0").url)
    plain = json.loads(client.invoke(FunctionName="api-echo", Payload=b"{}")["Payload"].read())
    named = json.loads(
        client.invoke(FunctionName="api-echo:$LATEST", Payload=b"{}")["Payload"].read()
    )
    param = json.loads(
        client.invoke(FunctionName="api-echo", Qualifier="$LATEST", Payload=b"{}")["Payload"].read()
    )
    full = json.loads(client.invoke(FunctionName=f"{ARN}:$LATEST", Payload=b"{}")["Payload"].read())
    assert plain["arn"] == ARN
    assert named["arn"] == param["arn"] == full["arn"] == f"{ARN}:$LATEST"


def test_every_invoke_answer_carries_a_date(serve: StartServer) -> None:
    server = serve(ECHO, "--port", "0")
    for path, method in (
        (GET_FUNCTION, "GET"),
        ("/2015-03-31/functions/api-echo/invocations", "POST"),
        ("/nope", "GET"),
    ):
        _, headers, _ = ask(server.port, path, [("Host", "127.0.0.1")], method)
        assert headers["date"].endswith(" GMT"), (path, headers)


# ---- the Runtime API ------------------------------------------------------------------------


def run(test: Callable[[RuntimeAPI], Awaitable[None]]) -> None:
    async def main() -> None:
        api = RuntimeAPI()
        await api.start()
        try:
            await asyncio.wait_for(test(api), 60)
        finally:
            await api.stop()

    asyncio.run(main())


async def exchange(api: RuntimeAPI, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", api.port)
    writer.write(raw)
    await writer.drain()
    status = int((await reader.readline()).split()[1])
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    writer.close()
    return status, headers, body


NEXT = "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: 127.0.0.1\r\n"


@pytest.mark.parametrize(
    "extra",
    ["Origin: http://127.0.0.1\r\n", "Origin: null\r\n"],
    ids=["a loopback origin", "an opaque origin"],
)
def test_the_runtime_api_refuses_any_request_with_an_origin(extra: str) -> None:
    async def t(api: RuntimeAPI) -> None:
        api.dispatch(PendingInvoke(RID, b'{"secret":1}', {"Lambda-Runtime-Aws-Request-Id": RID}))
        status, _, body = await exchange(api, f"{NEXT}{extra}\r\n".encode())
        assert status == 403 and b"secret" not in body
        assert api.current is None  # the event was not handed out

    run(t)


def test_the_runtime_api_refuses_a_foreign_host() -> None:
    async def t(api: RuntimeAPI) -> None:
        raw = b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: rebind.example\r\n\r\n"
        status, _, _ = await exchange(api, raw)
        assert status == 403

    run(t)


def test_unknown_paths_and_wrong_methods_are_answered_as_rie_answers() -> None:
    async def t(api: RuntimeAPI) -> None:
        status, headers, body = await exchange(
            api, b"GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        )
        assert (status, body) == (404, b"404 page not found\n")
        assert headers["content-type"] == "text/plain; charset=utf-8"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["date"].endswith(" GMT")
        status, headers, body = await exchange(
            api,
            b"POST /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n",
        )
        assert (status, body) == (405, b"") and "content-type" not in headers
        assert headers["date"].endswith(" GMT")

    run(t)


def test_an_error_cause_reaches_the_caller_compacted_as_rie_passes_it() -> None:
    async def t(api: RuntimeAPI) -> None:
        inv = PendingInvoke(RID, b"{}", {"Lambda-Runtime-Aws-Request-Id": RID})
        api.dispatch(inv)
        status, _, _ = await exchange(api, f"{NEXT}\r\n".encode())
        assert status == 200
        doc = {
            "errorMessage": "probe error",
            "errorType": "ProbeError",
            "stackTrace": [],
            "errorCause": {"paths": [], "working_directory": "/var/task", "exceptions": []},
        }
        body = json.dumps(doc, indent=2).encode()
        raw = (
            f"POST /2018-06-01/runtime/invocation/{RID}/error HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/vnd.aws.lambda.error.cause+json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        status, _, _ = await exchange(api, raw)
        assert status == 202
        assert inv.result is not None
        assert inv.result.payload == b'{"errorMessage":"probe error","errorType":"ProbeError"}'

    run(t)


def test_after_an_init_error_the_403_names_rie_states() -> None:
    async def t(api: RuntimeAPI) -> None:
        body = b'{"errorMessage":"no","errorType":"Runtime.ImportModuleError"}'
        raw = (
            "POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        status, _, _ = await exchange(api, raw)
        assert status == 202
        status, _, body = await exchange(api, f"{NEXT}\r\n".encode())
        assert status == 403
        assert json.loads(body) == {
            "errorMessage": "State transition from InitError to Ready failed for runtime. "
            "Error: State transition is not allowed",
            "errorType": "InvalidStateTransition",
        }

    run(t)
