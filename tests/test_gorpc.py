"""go1.x end to end: a real Go binary (tests/fixtures/functions/go-rpc: net/rpc + encoding/gob
with aws-lambda-go's message shapes, standard library only), built here, run by workbench over
net/rpc with no Go involved at run time."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import StartServer, builds_go, lambda_client
from tests.rt_helpers import INIT_START_RE, Harness, alive, body, cli, fixture, report_of, run
from workbench.core.record import InvokeRequest

ARN = "arn:aws:lambda:us-east-1:012345678912:function:"
GO_ENV = {
    "CGO_ENABLED": "0",
    "GOFLAGS": "",
    "GO111MODULE": "on",
    "GOPROXY": "off",
    "GOTOOLCHAIN": "local",
}


def build(tmp_path: Path, *tags: str, name: str = "fn") -> Path:
    """The fixture compiled into a folder of its own, as `bootstrap` (no go.mod beside it:
    what runs is the binary alone)."""
    go = shutil.which("go")
    assert go, "the Go toolchain is required (apt-get install golang-go)"
    folder = tmp_path / name
    folder.mkdir()
    argv = [
        go,
        "build",
        *(["-tags", ",".join(tags)] if tags else []),
        "-o",
        str(folder / "bootstrap"),
        ".",
    ]
    done = subprocess.run(
        argv,
        cwd=fixture("go-rpc"),
        env={**os.environ, **GO_ENV},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (folder / "workbench.toml").write_text('runtime = "go1.x"\ntimeout = 60\n')
    return folder


def event(op: str, **more: object) -> bytes:
    return json.dumps({"op": op, **more}).encode()


@builds_go
def test_success_with_the_deadline_context_and_environment_the_handler_sees(tmp_path: Path) -> None:
    folder = build(tmp_path)

    async def body_() -> None:
        async with Harness(folder, runtime="go1.x", overrides={"timeout_s": 7.0}) as h:
            assert h.fn is not None
            context = '{"custom":{"k":"v"},"client":{"app_title":"t"}}'
            before = time.time()
            rec = await h.fn.invoke(
                InvokeRequest(
                    event("echo"), client_context=context, trace_id="Root=1-abc;Sampled=1"
                )
            )
            assert rec.status == "ok", rec.result.payload
            seen = body(rec)
            assert seen["requestId"] == rec.request_id
            deadline = seen["deadlineSeconds"] + seen["deadlineNanos"] / 1e9
            assert before + 6 < deadline < time.time() + 7.01  # the real deadline, in s and ns
            assert 0 < seen["remainingMs"] <= 7000
            assert seen["invokedFunctionArn"] == ARN + "fn"
            assert seen["clientContext"] == json.loads(context)
            assert seen["traceId"] == "Root=1-abc;Sampled=1"
            env = seen["env"]
            assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_go1.x"
            assert "AWS_LAMBDA_RUNTIME_API" not in env
            assert int(env["_LAMBDA_SERVER_PORT"]) > 0
            assert env["AWS_LAMBDA_FUNCTION_NAME"] == "fn"
            assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128"
            assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/fn"
            assert env["TZ"] == ":UTC"
            # stdout and stderr, between START and END, and in the record
            assert f"handling {rec.request_id}" in rec.log_lines
            assert f"on stderr for {rec.request_id}" in rec.log_lines
            lines = h.lines()
            assert INIT_START_RE.fullmatch(lines[0]), lines[0]
            assert (
                lines.index(f"START RequestId: {rec.request_id} Version: $LATEST")
                < lines.index(f"handling {rec.request_id}")
                < lines.index(f"END RequestId: {rec.request_id}")
            )
            report = report_of(lines, rec.request_id)
            assert report["init"] is not None and int(report["used"]) > 0
            # warm: the same process, counting
            again = await h.invoke({"op": "upper", "text": "daniel"})
            assert again.result.payload == b'"DANIEL"' and not again.cold
            third = body(await h.invoke({"op": "echo"}))
            assert (third["pid"], third["count"]) == (seen["pid"], 3)

    run(body_)


@builds_go
def test_a_handler_error_keeps_the_process_and_a_panic_ends_it(tmp_path: Path) -> None:
    folder = build(tmp_path)

    async def body_() -> None:
        async with Harness(folder, runtime="go1.x") as h:
            first = body(await h.invoke({"op": "echo"}))
            failed = await h.invoke({"op": "fail"})
            assert failed.status == "error" and failed.result.function_error
            assert json.loads(failed.result.payload) == {
                "errorMessage": "handler failed: fail",
                "errorType": "errorString",
            }
            assert body(await h.invoke({"op": "echo"}))["pid"] == first["pid"]
            panicked = await h.invoke({"op": "panic"})
            assert panicked.status == "error"
            doc = json.loads(panicked.result.payload)
            assert (doc["errorMessage"], doc["errorType"]) == ("boom", "string")
            labels = [f["label"] for f in doc["stackTrace"]]
            assert "(*Function).Invoke" in labels and "handle" in labels
            assert all(set(f) == {"path", "line", "label"} for f in doc["stackTrace"])
            assert not alive(first["pid"])  # thrown away, as go1.x did
            after = await h.invoke({"op": "echo"})
            assert after.cold and after.init_ms is not None
            assert body(after)["pid"] != first["pid"] and body(after)["count"] == 1
            assert sum(1 for line in h.lines() if line.startswith("INIT_START")) == 2

    run(body_)


@builds_go
def test_a_timeout_kills_the_process_and_a_crash_is_an_exit_error(tmp_path: Path) -> None:
    folder = build(tmp_path)

    async def body_() -> None:
        async with Harness(folder, runtime="go1.x", overrides={"timeout_s": 1.0}) as h:
            pid = body(await h.invoke({"op": "echo"}))["pid"]
            slow = await h.invoke({"op": "sleep", "ms": 30_000})
            assert slow.status == "timeout"
            assert json.loads(slow.result.payload)["errorType"] == "Sandbox.Timedout"
            assert "Status: timeout" in report_of(h.lines(), slow.request_id).group(0)
            assert not alive(pid)
            fresh = await h.invoke({"op": "echo"})
            assert fresh.cold and body(fresh)["pid"] != pid
            crashed = await h.invoke({"op": "exit"})
            assert crashed.status == "crash"
            doc = json.loads(crashed.result.payload)
            assert doc["errorType"] == "Runtime.ExitError"
            assert "exit status 3" in doc["errorMessage"]
            assert (await h.invoke({"op": "echo"})).cold

    run(body_)


@builds_go
def test_a_norpc_binary_under_go1x_says_to_use_provided(tmp_path: Path) -> None:
    folder = build(tmp_path, "lambda.norpc")
    r = cli(folder)
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    assert doc["errorType"] == "Runtime.ExitError"
    assert "lambda.norpc" in doc["errorMessage"] and "provided.al2023" in doc["errorMessage"]
    assert "expected AWS Lambda environment variables [AWS_LAMBDA_RUNTIME_API]" in r.stderr
    assert "workbench: this binary has no go1.x (RPC) mode" in r.stderr


@builds_go
def test_a_go_module_under_go1x_is_built_with_its_rpc_mode(tmp_path: Path) -> None:
    folder = tmp_path / "mod"
    shutil.copytree(fixture("go-rpc"), folder)
    (folder / "workbench.toml").write_text('runtime = "go1.x"\ntimeout = 60\n')
    r = cli(folder, event=event("upper", text="built"), env={**os.environ, **GO_ENV})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == '"BUILT"'
    assert "-tags lambda.norpc" not in r.stderr and "go build -o" in r.stderr
    # the same module as provided.al2023 is built without RPC mode, and says it has none
    r = cli(folder, "--runtime", "provided.al2023", env={**os.environ, **GO_ENV})
    assert "-tags lambda.norpc" in r.stderr
    assert "this test function has no Runtime API mode" in r.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def started(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """The go1.x binary as a user starts it by hand (_LAMBDA_SERVER_PORT=N ./bootstrap)."""
    folder = build(tmp_path, name="mine")
    port = _free_port()
    proc = subprocess.Popen(
        [str(folder / "bootstrap")],
        env={**os.environ, "_LAMBDA_SERVER_PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.02)
    yield proc, port
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


@builds_go
def test_attach_invokes_a_process_it_does_not_own_and_never_kills_it(
    tmp_path: Path, started: tuple[subprocess.Popen[bytes], int]
) -> None:
    proc, port = started
    here = tmp_path / "here"
    here.mkdir()
    target = f"127.0.0.1:{port}"

    def invoke(*args: str, payload: bytes) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [*cli_argv(), "--rpc", target, *args, "-e", "-"],
            input=payload,
            capture_output=True,
            timeout=100,
            cwd=here,
        )

    r = invoke(payload=event("echo"))
    assert r.returncode == 0, r.stderr
    seen = json.loads(r.stdout)
    assert seen["pid"] == proc.pid
    assert f"attached to the go1.x function at {target}".encode() in r.stderr
    assert json.loads(invoke(payload=event("panic")).stdout)["errorType"] == "string"
    r = invoke("--timeout", "1", payload=event("sleep", ms=3000))
    assert json.loads(r.stdout)["errorType"] == "Sandbox.Timedout"
    assert b"was not stopped" in r.stderr
    assert proc.poll() is None  # neither the panic nor the timeout ended it: it is the user's
    again = json.loads(invoke(payload=event("echo")).stdout)
    assert again["pid"] == proc.pid and again["count"] > seen["count"]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    r = invoke(payload=event("echo"))
    assert r.returncode == 1
    assert json.loads(r.stdout)["errorType"] == "Runtime.Unavailable"
    assert f"nothing listens on {target}".encode() in r.stderr
    assert f"_LAMBDA_SERVER_PORT={port}".encode() in r.stderr


def cli_argv() -> list[str]:
    import sys

    return [sys.executable, "-m", "workbench", "invoke"]


@builds_go
def test_serve_passes_boto3s_client_context_and_attach_works_through_serve(
    tmp_path: Path, serve: StartServer, started: tuple[subprocess.Popen[bytes], int]
) -> None:
    folder = build(tmp_path)
    server = serve(str(folder), "--port", "0")
    client = lambda_client(server.url)
    context = {"custom": {"from": "boto3"}, "env": {"k": "v"}}
    answer = client.invoke(
        FunctionName="fn",
        Payload=event("echo"),
        ClientContext=base64.b64encode(json.dumps(context).encode()).decode(),
        LogType="Tail",
    )
    assert "FunctionError" not in answer
    seen = json.loads(answer["Payload"].read())
    assert seen["clientContext"] == context
    assert seen["invokedFunctionArn"] == ARN + "fn"
    assert f"handling {seen['requestId']}" in base64.b64decode(answer["LogResult"]).decode()
    failed = client.invoke(FunctionName="fn", Payload=event("fail"))
    assert failed["FunctionError"] == "Unhandled"
    assert json.loads(failed["Payload"].read())["errorType"] == "errorString"
    # the same, against a process the user runs
    proc, port = started
    attached = serve(str(folder), "--port", "0", "--rpc", f"127.0.0.1:{port}")
    answer = lambda_client(attached.url).invoke(FunctionName="fn", Payload=event("echo"))
    assert json.loads(answer["Payload"].read())["pid"] == proc.pid


def test_go1x_is_a_runtime_name_and_rpc_needs_it(tmp_path: Path) -> None:
    """No Go needed: the configuration side."""
    from workbench.core.config.function import ConfigError
    from workbench.core.config.resolve import resolve_functions
    from workbench.core.runtimes import launch_for

    folder = tmp_path / "f"
    folder.mkdir()
    exe = folder / "main"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    (folder / "template.yaml").write_text(
        "AWSTemplateFormatVersion: '2010-09-09'\nTransform: AWS::Serverless-2016-10-31\n"
        "Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n"
        "      CodeUri: .\n      Handler: main\n      Runtime: go1.x\n"
    )
    (cfg,) = [fn.config for fn in resolve_functions([folder])]
    assert cfg.runtime == "go1.x" and cfg.go_rpc
    launch = launch_for(cfg)
    assert launch.kind == "go-rpc" and launch.argv == [str(exe)]
    assert launch.execution_env == "AWS_Lambda_go1.x"
    with pytest.raises(ConfigError, match=r"attaches to a go1\.x function"):
        resolve_functions(
            [folder], overrides={"rpc": "127.0.0.1:8001", "runtime": "provided.al2023"}
        )
    (attached,) = [fn.config for fn in resolve_functions([folder], overrides={"rpc": "8001"})]
    assert launch_for(attached).attach == ("127.0.0.1", 8001)


def test_attach_with_nothing_listening_says_so_and_exits_1(tmp_path: Path) -> None:
    port = _free_port()
    r = subprocess.run(
        [*cli_argv(), "--rpc", f"127.0.0.1:{port}"], capture_output=True, timeout=100, cwd=tmp_path
    )
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert doc["errorType"] == "Runtime.Unavailable"
    assert f"nothing listens on 127.0.0.1:{port}" in doc["errorMessage"]
