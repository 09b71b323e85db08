"""Custom runtimes (provided.al2023) against the real Runtime API: a shell bootstrap, a Go runtime
built here from source, and runtimes that probe the API's answers (spec 1.2-1.6, 4, 5)."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import builds_go
from tests.rt_helpers import (
    INIT_START_RE,
    REPORT_RE,
    UUID_RE,
    Harness,
    billed_from_printed,
    body,
    cli,
    fixture,
    report_of,
    run,
)

ARN_PREFIX = "arn:aws:lambda:us-east-1:012345678912:function:"
GENERATED_TRACE = r"Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0"

# builds Go; shell runtimes that fork and probe
pytestmark = pytest.mark.integration


# ---- 1. a shell bootstrap -------------------------------------------------------------------


def test_shell_bootstrap_answers_through_the_cli() -> None:
    r = cli(fixture("rt-shell-echo"), event=b'{"greeting": "hi"}')
    assert r.returncode == 0, r.stderr
    answer = json.loads(r.stdout)
    rid = answer["requestId"]
    assert re.fullmatch(UUID_RE, rid)
    assert answer["echo"] == {"greeting": "hi"}
    lines = r.stderr.splitlines()
    assert len(lines) == 5, r.stderr
    assert INIT_START_RE.fullmatch(lines[0]), lines[0]
    assert lines[1:4] == [
        f"START RequestId: {rid} Version: $LATEST",
        f"handling {rid}",
        f"END RequestId: {rid}",
    ]
    report = REPORT_RE.fullmatch(lines[4])
    assert report and report["rid"] == rid and report["init"] is not None, lines[4]


# ---- 2. a Go runtime, standard library only -------------------------------------------------


def build_go_bootstrap(tmp_path: Path) -> Path:
    go = shutil.which("go")
    assert go, "the Go toolchain is required (apt-get install golang-go); CI installs it"
    folder = tmp_path / "rt-go"
    folder.mkdir()
    # GOCACHE and GOPATH come from the environment: one cache for the whole run (conftest.py)
    env = {
        **os.environ,
        "CGO_ENABLED": "0",
        "GOFLAGS": "",
        "GO111MODULE": "on",
        "GOPROXY": "off",
        "GOTOOLCHAIN": "local",
    }
    proc = subprocess.run(
        [go, "build", "-o", str(folder / "bootstrap"), "."],
        cwd=fixture("rt-go"),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return folder


@builds_go
def test_go_runtime_cold_then_warm_in_one_process(tmp_path: Path) -> None:
    folder = build_go_bootstrap(tmp_path)

    async def body_() -> None:
        async with Harness(folder) as h:
            records = [await h.invoke({"n": n}) for n in range(3)]
            for n, rec in enumerate(records):
                assert rec.status == "ok", rec.result.payload
                answer = body(rec)
                assert answer["event"] == {"n": n}
                assert answer["requestId"] == rec.request_id
                assert answer["count"] == n + 1  # the same process counted every event
            assert len({body(rec)["pid"] for rec in records}) == 1
            assert records[0].cold and records[0].init_ms is not None
            assert records[0].init_ms > 0
            for rec in records[1:]:
                assert not rec.cold and rec.init_ms is None
            assert sum(1 for line in h.lines() if line.startswith("INIT_START")) == 1
            for rec in records:
                report = report_of(h.lines(), rec.request_id)
                assert (report["init"] is not None) == rec.cold
                assert f"go runtime handling {rec.request_id}" in rec.log_lines

    run(body_)


# ---- 11. what the runtime sees: /next headers and environment -------------------------------


def test_next_headers_and_environment(tmp_path: Path) -> None:
    folder = fixture("rt-introspect")
    days = {datetime.now(UTC).strftime("%Y/%m/%d")}
    host_env = {**os.environ, "WB_HOST_ONLY": "must-not-leak"}
    r = cli(
        folder,
        "--timeout",
        "5",
        "--memory",
        "256",
        "--handler",
        "function.handler",
        "--env",
        "MY_SETTING=on",
        event=b'{"k": [1, 2]}',
        env=host_env,
    )
    days.add(datetime.now(UTC).strftime("%Y/%m/%d"))
    assert r.returncode == 0, r.stderr
    seen = json.loads(r.stdout)
    assert seen["status"] == 200
    assert seen["event"] == {"k": [1, 2]}

    headers = seen["headers"]
    lower = {k.lower(): v for k, v in headers.items()}
    rid = lower["lambda-runtime-aws-request-id"]
    assert str(uuid.UUID(rid)) == rid
    assert f"START RequestId: {rid} Version: $LATEST" in r.stderr.splitlines()
    assert lower["lambda-runtime-invoked-function-arn"] == ARN_PREFIX + "rt-introspect"
    assert lower["content-type"] == "application/json"
    deadline = int(lower["lambda-runtime-deadline-ms"])
    # epoch milliseconds, the function timeout (5 s) ahead of when the event arrived
    assert 4000 < deadline - seen["received_ms"] <= 5000, (deadline, seen["received_ms"])
    # the caller sent no trace header: one is made, as the service makes one
    assert re.fullmatch(GENERATED_TRACE, lower["lambda-runtime-trace-id"]), headers
    for absent in (
        "lambda-runtime-client-context",
        "lambda-runtime-cognito-identity",
        "lambda-runtime-aws-tenant-id",
    ):
        assert absent not in lower, headers
    assert all(v for k, v in lower.items() if k.startswith("lambda-runtime-")), headers

    env = seen["env"]
    assert env["TZ"] == ":UTC"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "rt-introspect"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/rt-introspect"
    stream = re.fullmatch(
        r"(\d{4}/\d\d/\d\d)/\[\$LATEST\][0-9a-f]{32}", env["AWS_LAMBDA_LOG_STREAM_NAME"]
    )
    assert stream and stream[1] in days, env["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
    assert env["_HANDLER"] == "function.handler"
    assert env["LAMBDA_TASK_ROOT"] == str(folder.resolve())
    assert env["LANG"] == "en_US.UTF-8"
    assert re.fullmatch(r"127\.0\.0\.1:\d+", env["AWS_LAMBDA_RUNTIME_API"])  # host:port only
    assert env["MY_SETTING"] == "on"
    assert "AWS_EXECUTION_ENV" not in env  # unset for provided runtimes
    assert "WB_HOST_ONLY" not in env  # the workbench's own environment does not leak in
    for unset in ("_LAMBDA_SERVER_PORT", "_LAMBDA_TELEMETRY_LOG_FD", "_X_AMZN_TRACE_ID"):
        assert unset not in env


def test_reserved_env_keys_are_refused() -> None:
    for key in ("AWS_REGION", "AWS_LAMBDA_RUNTIME_API"):
        r = cli(fixture("rt-introspect"), "--env", f"{key}=x")
        assert r.returncode == 2, (key, r.stdout, r.stderr)
        assert r.stdout == ""
        assert key in r.stderr and "reserve" in r.stderr, r.stderr
        assert "INIT_START" not in r.stderr  # refused before anything ran


# ---- 7, 8. protocol errors answered to the runtime ------------------------------------------


def test_second_response_for_the_same_id_is_refused() -> None:
    r = cli(fixture("rt-double-response"))
    assert r.returncode == 0, r.stderr
    assert r.stdout == '"first"\n'  # the caller got the first answer
    lines = r.stderr.splitlines()
    assert "first response: 202 " + repr(b'{"status":"OK"}\n') in lines, r.stderr
    refused = (
        b'{"errorMessage":"State transition from RuntimeResponseSentState to '
        b'InvocationResponse failed for runtime. Error: State transition is not allowed",'
        b'"errorType":"InvalidStateTransition"}\n'
    )
    second = lines.index("second response: 403 " + repr(refused))
    start = next(i for i, line in enumerate(lines) if line.startswith("START RequestId: "))
    end = next(i for i, line in enumerate(lines) if line.startswith("END RequestId: "))
    assert start < second < end  # the runtime printed it inside the invocation


def test_response_for_a_wrong_request_id_is_refused() -> None:
    r = cli(fixture("rt-bogus-id"))
    assert r.returncode == 0, r.stderr
    assert r.stdout == '"right"\n'
    refused = b'{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}\n'
    assert "bogus id response: 400 " + repr(refused) in r.stderr.splitlines(), r.stderr


# ---- 9. response size limit -----------------------------------------------------------------


def test_oversized_response_is_a_function_error_without_reset() -> None:
    too_big = (
        b'{"errorMessage":"Exceeded maximum allowed payload size (6291556 bytes).",'
        b'"errorType":"RequestEntityTooLarge"}\n'
    )

    async def body_() -> None:
        async with Harness(fixture("rt-big-response")) as h:
            over = await h.invoke({"size": 6_291_557})
            assert over.status == "error"
            assert over.result.function_error
            assert body(over) == {
                "errorMessage": "Response payload size (6291557 bytes) exceeded maximum "
                "allowed payload size (6291556 bytes).",
                "errorType": "Function.ResponseSizeTooLarge",
            }
            said = [line for line in over.log_lines if "response of 6291557 bytes" in line]
            assert len(said) == 1 and said[0].endswith(": 413 " + repr(too_big)), said
            pid = said[0].split(":")[0]

            at_limit = await h.invoke({"size": 6_291_556})
            assert at_limit.status == "ok"
            assert not at_limit.cold and at_limit.init_ms is None  # no reset after the 413
            assert at_limit.result.payload == b'"' + b"a" * 6_291_554 + b'"'
            said = [line for line in at_limit.log_lines if "response of 6291556 bytes" in line]
            assert said == [f"{pid}: response of 6291556 bytes: 202 " + repr(b'{"status":"OK"}\n')]

    run(body_)


# ---- 14. platform lines, billing and memory -------------------------------------------------


def test_platform_lines_cold_then_warm() -> None:
    async def body_() -> None:
        async with Harness(fixture("rt-shell-echo")) as h:
            cold = await h.invoke({"n": 1})
            warm = await h.invoke({"n": 2})
            assert cold.status == warm.status == "ok"
            platform = h.lines("platform")
            assert len(platform) == 7, platform
            assert INIT_START_RE.fullmatch(platform[0]), platform[0]
            for offset, rec in ((1, cold), (4, warm)):
                rid = rec.request_id
                assert platform[offset] == f"START RequestId: {rid} Version: $LATEST"
                assert platform[offset + 1] == f"END RequestId: {rid}"
                report = REPORT_RE.fullmatch(platform[offset + 2])
                assert report and report["rid"] == rid, platform[offset + 2]
                assert report["status"] is None
                assert report["memory"] == "128"
                assert report["duration"] == f"{rec.duration_ms:.2f}"
                used = int(report["used"])
                assert 0 < used < 128 and used == rec.max_memory_mb
            # the function's own line sits between START and END
            assert cold.log_lines[0] == platform[0]
            assert cold.log_lines[1:] == [
                platform[1],
                f"handling {cold.request_id}",
                platform[2],
                platform[3],
            ]
            assert warm.log_lines == [
                platform[4],
                f"handling {warm.request_id}",
                platform[5],
                platform[6],
            ]

            cold_report = REPORT_RE.fullmatch(platform[3])
            warm_report = REPORT_RE.fullmatch(platform[6])
            assert cold_report and warm_report
            assert cold.init_ms is not None and cold_report["init"] == f"{cold.init_ms:.2f}"
            assert warm_report["init"] is None and warm.init_ms is None
            # 1 ms granularity rounded up; the INIT phase is billed on the cold invoke
            assert cold.billed_ms == math.ceil(cold.duration_ms + cold.init_ms)
            assert int(cold_report["billed"]) == cold.billed_ms
            assert cold.billed_ms in billed_from_printed(
                cold_report["duration"], cold_report["init"]
            )
            assert warm.billed_ms == math.ceil(warm.duration_ms)
            assert int(warm_report["billed"]) == warm.billed_ms
            assert warm.billed_ms in billed_from_printed(warm_report["duration"], None)

    run(body_)


def test_max_memory_used_is_the_real_peak() -> None:
    r = cli(fixture("rt-memory"))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"held_bytes": 60 * 1024 * 1024}
    reports = [m for m in map(REPORT_RE.fullmatch, r.stderr.splitlines()) if m]
    assert len(reports) == 1, r.stderr
    assert int(reports[0]["used"]) >= 60


def test_env_names_lambda_would_refuse_are_refused() -> None:
    # Lambda's API takes [a-zA-Z]([a-zA-Z0-9_])+ only: a leading _ never reaches a function
    r = cli(fixture("rt-introspect"), "--env", "_PRIVATE=dropped")
    assert r.returncode == 2
    assert "'_PRIVATE' is not a name Lambda accepts" in r.stderr
