"""The Invoke API through `workbench serve`, spoken to by boto3, exactly as the service answers."""

from __future__ import annotations

import base64
import http.client
import json
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from mypy_boto3_lambda import LambdaClient
from mypy_boto3_lambda.type_defs import InvocationResponseTypeDef

from tests.conftest import FIXTURES, Server, StartServer, lambda_client

ECHO = str(FIXTURES / "api-echo")
ARN = "arn:aws:lambda:us-east-1:012345678912:function:api-echo"


Echo = tuple[Server, LambdaClient]


@pytest.fixture
def echo(serve: StartServer) -> Echo:
    server = serve(ECHO, "--port", "0")
    return server, lambda_client(server.url)


def _payload(resp: InvocationResponseTypeDef) -> Any:
    return json.loads(resp["Payload"].read())


def test_request_response_returns_the_result(echo: Echo) -> None:
    server, client = echo
    resp = client.invoke(FunctionName="api-echo", Payload=b'{"hello": "world"}')
    body = _payload(resp)
    assert resp["StatusCode"] == 200
    assert resp["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in resp
    assert body["event"] == {"hello": "world"}
    assert body["arn"] == ARN
    assert resp["ResponseMetadata"]["RequestId"] == body["request_id"]
    assert resp["ResponseMetadata"]["HTTPHeaders"]["content-type"] == "application/json"
    server.wait_for_line(rf"^REPORT RequestId: {body['request_id']}\tDuration: ")


def test_second_invoke_is_warm_and_reuses_the_environment(echo: Echo) -> None:
    server, client = echo
    first = _payload(client.invoke(FunctionName="api-echo", Payload=b"{}"))
    second = _payload(client.invoke(FunctionName="api-echo", Payload=b"{}"))
    cold = server.wait_for_line(rf"^REPORT RequestId: {first['request_id']}")
    warm = server.wait_for_line(rf"^REPORT RequestId: {second['request_id']}")
    assert "Init Duration" in cold
    assert "Init Duration" not in warm
    assert sum(line.startswith("INIT_START") for line in server.lines) == 1


def test_function_error_is_200_with_unhandled(echo: Echo) -> None:
    _, client = echo
    resp = client.invoke(FunctionName="api-echo", Payload=b'{"fail": "bad input"}')
    body = _payload(resp)
    assert resp["StatusCode"] == 200
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "ValueError"
    assert body["errorMessage"] == "bad input"
    assert isinstance(body["stackTrace"], list) and body["stackTrace"]


def test_event_invocation_is_202_and_runs_in_the_background(echo: Echo, tmp_path: Path) -> None:
    server, client = echo
    marker = tmp_path / "ran"
    event = json.dumps({"touch": str(marker)}).encode()
    resp = client.invoke(FunctionName="api-echo", InvocationType="Event", Payload=event)
    assert resp["StatusCode"] == 202
    assert resp["Payload"].read() == b""
    rid = resp["ResponseMetadata"]["RequestId"]
    server.wait_for_line(rf"^END RequestId: {rid}")
    assert marker.read_text() == rid


def test_dry_run_is_204_and_runs_nothing(echo: Echo, tmp_path: Path) -> None:
    server, client = echo
    marker = tmp_path / "ran"
    event = json.dumps({"touch": str(marker)}).encode()
    resp = client.invoke(FunctionName="api-echo", InvocationType="DryRun", Payload=event)
    assert resp["StatusCode"] == 204
    # invokes run one at a time: once this one is done, a queued dry run would have run too
    client.invoke(FunctionName="api-echo", Payload=b"{}")
    assert not marker.exists()
    assert not any(
        line.startswith("START") and "echo got keys ['touch']" in line for line in server.lines
    )


def test_tail_returns_the_last_4kb_of_this_invocations_log(echo: Echo) -> None:
    _, client = echo
    resp = client.invoke(FunctionName="api-echo", LogType="Tail", Payload=b'{"k": 1}')
    rid = _payload(resp)["request_id"]
    log = base64.b64decode(resp["LogResult"]).decode()
    assert log.startswith(f"START RequestId: {rid} Version: $LATEST\n")
    assert "echo got keys ['k']\n" in log
    assert f"\nEND RequestId: {rid}\n" in log
    assert f"\nREPORT RequestId: {rid}\tDuration: " in log

    lines = json.dumps({"big": 20000}).encode()
    resp = client.invoke(FunctionName="api-echo", LogType="Tail", Payload=lines)
    assert len(base64.b64decode(resp["LogResult"])) <= 4096


def test_no_tail_header_without_log_type(echo: Echo) -> None:
    _, client = echo
    resp = client.invoke(FunctionName="api-echo", Payload=b"{}")
    assert "LogResult" not in resp
    assert "x-amz-log-result" not in resp["ResponseMetadata"]["HTTPHeaders"]


def test_client_context_reaches_the_function_decoded(echo: Echo) -> None:
    _, client = echo
    ctx = {"custom": {"tenant": "a"}, "env": {"platform": "test"}, "client": {}}
    resp = client.invoke(
        FunctionName="api-echo",
        Payload=b"{}",
        ClientContext=base64.b64encode(json.dumps(ctx).encode()).decode(),
    )
    assert _payload(resp)["client_context"] == {
        "custom": {"tenant": "a"},
        "env": {"platform": "test"},
    }


def test_bad_client_context_is_rejected(echo: Echo) -> None:
    _, client = echo
    with pytest.raises(client.exceptions.InvalidRequestContentException):
        client.invoke(FunctionName="api-echo", Payload=b"{}", ClientContext="%%%not base64")


def test_unknown_function_is_resource_not_found(echo: Echo) -> None:
    _, client = echo
    with pytest.raises(client.exceptions.ResourceNotFoundException) as info:
        client.invoke(FunctionName="nope", Payload=b"{}")
    err = info.value.response
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert err["Error"]["Message"] == (
        "Function not found: arn:aws:lambda:us-east-1:012345678912:function:nope"
    )


@pytest.mark.parametrize(
    "name",
    ["api-echo", "api-echo:$LATEST", ARN, f"{ARN}:$LATEST", "012345678912:function:api-echo"],
)
def test_every_function_name_form_is_understood(echo: Echo, name: str) -> None:
    _, client = echo
    resp = client.invoke(FunctionName=name, Payload=b'{"n": 1}')
    assert _payload(resp)["event"] == {"n": 1}


def test_unknown_qualifier_is_not_found(echo: Echo) -> None:
    _, client = echo
    with pytest.raises(client.exceptions.ResourceNotFoundException) as info:
        client.invoke(FunctionName="api-echo", Qualifier="7", Payload=b"{}")
    assert info.value.response["Error"]["Message"].endswith(":function:api-echo:7")


def test_sync_payload_over_6mb_is_request_too_large(echo: Echo) -> None:
    _, client = echo
    payload = b'"' + b"x" * (6_291_456 - 1) + b'"'  # 6,291,457 bytes of valid JSON
    with pytest.raises(ClientError) as info:
        client.invoke(FunctionName="api-echo", Payload=payload)
    err = info.value.response
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert err["Error"]["Code"] == "RequestEntityTooLargeException"
    assert err["Error"]["Message"] == (
        "6291457 byte payload is too large for the RequestResponse "
        "invocation type (limit 6291456 bytes)"
    )


def test_sync_payload_of_exactly_6mb_is_accepted(echo: Echo) -> None:
    _, client = echo
    payload = b'"' + b"x" * (6_291_456 - 2) + b'"'
    resp = client.invoke(FunctionName="api-echo", Payload=payload)
    assert len(_payload(resp)["event"]) == 6_291_454


def test_async_payload_over_1mb_is_request_too_large(echo: Echo) -> None:
    _, client = echo
    payload = b'"' + b"x" * 1_048_576 + b'"'
    with pytest.raises(ClientError) as info:
        client.invoke(FunctionName="api-echo", InvocationType="Event", Payload=payload)
    assert info.value.response["Error"]["Code"] == "RequestEntityTooLargeException"
    assert (
        "for the Event invocation type (limit 1048576 bytes)"
        in (info.value.response["Error"]["Message"])
    )


def test_invalid_json_payload_is_invalid_request_content(echo: Echo) -> None:
    server, client = echo
    with pytest.raises(client.exceptions.InvalidRequestContentException) as info:
        client.invoke(FunctionName="api-echo", Payload=b"{not json")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert info.value.response["Error"]["Message"].startswith(
        "Could not parse request body into json: Could not parse payload into json:"
    )
    assert not any(line.startswith("START") for line in server.lines)


def test_empty_payload_is_delivered_as_an_empty_object(echo: Echo) -> None:
    _, client = echo
    assert _payload(client.invoke(FunctionName="api-echo"))["event"] == {}


def test_response_over_the_limit_is_a_function_error(echo: Echo) -> None:
    _, client = echo
    resp = client.invoke(FunctionName="api-echo", Payload=json.dumps({"big": 6_291_600}).encode())
    body = _payload(resp)
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Function.ResponseSizeTooLarge"
    assert "exceeded maximum allowed payload size (6291556 bytes)" in body["errorMessage"]
    # an oversized response does not reset the environment: the next invoke is warm
    ok = _payload(client.invoke(FunctionName="api-echo", Payload=b"{}"))
    assert "request_id" in ok


def test_list_and_get_function_describe_what_is_served(echo: Echo) -> None:
    _, client = echo
    functions = client.list_functions()["Functions"]
    assert [f["FunctionName"] for f in functions] == ["api-echo"]
    config = client.get_function(FunctionName="api-echo")["Configuration"]
    assert config["FunctionArn"] == ARN
    assert config["Handler"] == "app.handler"
    assert config["Runtime"].startswith("python3.")
    assert config["Timeout"] == 3 and config["MemorySize"] == 128
    assert client.get_function_configuration(FunctionName=ARN)["FunctionName"] == "api-echo"
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_function(FunctionName="nope")


def test_concurrent_invokes_wait_their_turn(echo: Echo) -> None:
    from concurrent.futures import ThreadPoolExecutor

    _, client = echo
    with ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(
                lambda i: _payload(
                    client.invoke(FunctionName="api-echo", Payload=json.dumps({"i": i}).encode())
                ),
                range(8),
            )
        )
    assert sorted(r["event"]["i"] for r in results) == list(range(8))
    assert len({r["request_id"] for r in results}) == 8


def _raw(port: int, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", "/2015-03-31/functions/api-echo/invocations", body=b"{}", headers=headers)
    resp = conn.getresponse()
    return resp.status, dict(resp.getheaders()), resp.read()


def test_requests_from_web_pages_are_refused(echo: Echo) -> None:
    server, _ = echo
    status, _headers, body = _raw(server.port, {"Origin": "https://evil.example"})
    assert status == 403
    assert "web pages" in json.loads(body)["Message"]
    status, _, _ = _raw(server.port, {"Host": "evil.example"})  # DNS rebinding
    assert status == 403
    status, _, _ = _raw(server.port, {"Host": f"localhost:{server.port}"})
    assert status == 200
    assert not any(line.startswith("START") and "evil" in line for line in server.lines)


def test_serve_listens_on_loopback_only(echo: Echo) -> None:
    server, _ = echo
    hex_port = f"{server.port:04X}"
    listening = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as fh:
            for row in fh.readlines()[1:]:
                local, state = row.split()[1], row.split()[3]
                if state == "0A" and local.endswith(":" + hex_port):
                    listening.append(local.split(":")[0])
    assert listening == ["0100007F"]


def test_quit_leaves_no_function_process(serve: StartServer) -> None:
    from tests.conftest import processes_with_env

    server = serve(ECHO, "--port", "0", "--env", "WB_TEST_MARK=serve-quit")
    client = lambda_client(server.url)
    client.invoke(FunctionName="api-echo", Payload=b"{}")
    assert processes_with_env("WB_TEST_MARK=serve-quit")
    assert server.stop() == 0
    deadline = time.monotonic() + 60
    while processes_with_env("WB_TEST_MARK=serve-quit") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_with_env("WB_TEST_MARK=serve-quit") == []
