"""The real clients: awslambdaric (PyPI) as the function's runtime client, the AWS CLI as caller.

awslambdaric is the reference implementation of the runtime side; if it works unchanged against
our Runtime API, the API is right where it matters."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, StartServer, lambda_client, run_workbench

# awslambdaric and the AWS CLI: real reference clients, many processes each
pytestmark = pytest.mark.integration

RIC = str(FIXTURES / "api-ric")


def test_awslambdaric_echo_through_invoke() -> None:
    done = run_workbench(
        "invoke",
        RIC,
        "--runtime-client",
        "awslambdaric",
        "--handler",
        "app.echo",
        "-e",
        "-",
        stdin=b'{"via": "awslambdaric"}',
    )
    assert done.returncode == 0, done.stderr.decode()
    body = json.loads(done.stdout)
    assert body["event"] == {"via": "awslambdaric"}
    assert body["memory"] == "128"
    assert body["remaining_ok"] is True
    log = done.stderr.decode()
    assert f"START RequestId: {body['request_id']} Version: $LATEST" in log
    assert f"REPORT RequestId: {body['request_id']}\tDuration:" in log


def test_awslambdaric_error_through_invoke() -> None:
    done = run_workbench("invoke", RIC, "--runtime-client", "awslambdaric", "--handler", "app.fail")
    assert done.returncode == 1
    body = json.loads(done.stdout)
    assert body["errorType"] == "RuntimeError"
    assert body["errorMessage"] == "reference client saw this"
    assert body["requestId"] and isinstance(body["stackTrace"], list)


def test_awslambdaric_import_error_is_an_init_error() -> None:
    done = run_workbench(
        "invoke", RIC, "--runtime-client", "awslambdaric", "--handler", "missing_module.handler"
    )
    assert done.returncode == 1
    body = json.loads(done.stdout)
    assert body["errorType"] == "Runtime.ImportModuleError"
    log = done.stderr.decode()
    assert "Phase: init\tStatus: error\tError Type: Runtime.ImportModuleError" in log
    assert "Phase: invoke\tStatus: error\tError Type: Runtime.ImportModuleError" in log


def test_awslambdaric_through_serve_with_boto3(serve: StartServer) -> None:
    server = serve(RIC, "--port", "0", "--runtime-client", "awslambdaric", "--handler", "app.echo")
    client = lambda_client(server.url)
    for i in range(3):
        resp = client.invoke(FunctionName="api-ric", Payload=json.dumps({"i": i}).encode())
        assert json.loads(resp["Payload"].read())["event"] == {"i": i}
    assert sum(line.startswith("INIT_START") for line in server.lines) == 1


def test_awslambdaric_error_through_serve_with_boto3(serve: StartServer) -> None:
    server = serve(RIC, "--port", "0", "--runtime-client", "awslambdaric", "--handler", "app.fail")
    resp = lambda_client(server.url).invoke(FunctionName="api-ric", LogType="Tail")
    assert resp["FunctionError"] == "Unhandled"
    assert json.loads(resp["Payload"].read())["errorType"] == "RuntimeError"
    assert "[ERROR] RuntimeError: reference client saw this" in (
        base64.b64decode(resp["LogResult"]).decode()
    )


def _aws() -> list[str]:
    exe = shutil.which("aws")
    if exe is None:  # awscli is a test dependency; its entry point may not be on PATH in a venv
        return [sys.executable, "-m", "awscli"]
    return [exe]


def test_aws_cli_invoke(serve: StartServer, tmp_path: Path) -> None:
    server = serve(str(FIXTURES / "api-echo"), "--port", "0")
    out = tmp_path / "out.json"
    env = {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
    }
    done = subprocess.run(
        [
            *_aws(),
            "lambda",
            "invoke",
            "--endpoint-url",
            server.url,
            "--function-name",
            "api-echo",
            "--payload",
            '{"from": "aws-cli"}',
            "--log-type",
            "Tail",
            str(out),
        ],
        capture_output=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode()
    meta = json.loads(done.stdout)
    assert meta["StatusCode"] == 200
    assert meta["ExecutedVersion"] == "$LATEST"
    assert "REPORT RequestId:" in base64.b64decode(meta["LogResult"]).decode()
    assert json.loads(out.read_text())["event"] == {"from": "aws-cli"}


def test_aws_cli_unknown_function(serve: StartServer, tmp_path: Path) -> None:
    server = serve(str(FIXTURES / "api-echo"), "--port", "0")
    env = {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "HOME": str(tmp_path),
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [
            *_aws(),
            "lambda",
            "invoke",
            "--endpoint-url",
            server.url,
            "--function-name",
            "ghost",
            str(tmp_path / "o.json"),
        ],
        capture_output=True,
        env=env,
        timeout=60,
    )
    assert done.returncode != 0
    assert "ResourceNotFoundException" in done.stderr.decode()
    assert "Function not found" in done.stderr.decode()
