"""Facts of the Lambda service: limits, error documents, billing and the platform log lines.

Numbers and texts come from the Runtime API reference (shared/spec/runtime-api.md, sections 1, 3
and 5). Keeping them in one place lets the Runtime API, the Invoke API and the supervisor agree.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

API_VERSION = "2018-06-01"

# Invoke payloads (request side) and buffered responses (runtime side).
SYNC_PAYLOAD_LIMIT = 6_291_456
ASYNC_PAYLOAD_LIMIT = 1_048_576
RESPONSE_LIMIT = 6_291_556
CLIENT_CONTEXT_LIMIT = 3583
LOG_TAIL_BYTES = 4096
INIT_TIMEOUT_S = 10.0

DEFAULT_TIMEOUT_S = 3.0
DEFAULT_MEMORY_MB = 128
DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT = "012345678912"

# Keys the service sets itself; a function's configuration may not set them (spec 4).
RESERVED_KEYS = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    }
)


def json_body(doc: object) -> bytes:
    """Runtime API answers are compact JSON followed by a newline, as the service sends them."""
    return json.dumps(doc, separators=(",", ":")).encode() + b"\n"


def api_error(error_type: str, message: str) -> dict[str, str]:
    return {"errorMessage": message, "errorType": error_type}


STATUS_OK = {"status": "OK"}
INVALID_REQUEST_ID = api_error("InvalidRequestID", "Invalid request ID")
TOO_LARGE_FOR_RUNTIME = api_error(
    "RequestEntityTooLarge", f"Exceeded maximum allowed payload size ({RESPONSE_LIMIT} bytes)."
)
INVALID_RESPONSE_MODE = api_error("InvalidFunctionResponseMode", "Invalid function response mode")


def invalid_transition(from_state: str, to_state: str) -> dict[str, str]:
    return api_error(
        "InvalidStateTransition",
        f"State transition from {from_state} to {to_state} failed for runtime. "
        "Error: State transition is not allowed",
    )


def platform_error(error_type: str, detail: str, request_id: str | None) -> dict[str, str]:
    """The error document the platform writes itself (crash, timeout), as the service words it."""
    prefix = f"RequestId: {request_id} " if request_id else ""
    return {"errorType": error_type, "errorMessage": f"{prefix}Error: {detail}"}


def response_too_large(size: int) -> dict[str, str]:
    return api_error(
        "Function.ResponseSizeTooLarge",
        f"Response payload size ({size} bytes) exceeded maximum allowed payload size "
        f"({RESPONSE_LIMIT} bytes).",
    )


def exit_detail(returncode: int | None) -> str:
    """Go's os/exec wording, which the service uses for a runtime that went away."""
    if returncode is None or returncode == 0:
        return "Runtime exited without providing a reason"
    if returncode < 0:
        import signal

        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"Runtime exited with error: signal: {_go_signal_name(name)}"
    return f"Runtime exited with error: exit status {returncode}"


_GO_SIGNAL_NAMES = {
    "SIGKILL": "killed",
    "SIGTERM": "terminated",
    "SIGSEGV": "segmentation fault",
    "SIGABRT": "aborted",
    "SIGINT": "interrupt",
    "SIGBUS": "bus error",
    "SIGFPE": "floating point exception",
    "SIGHUP": "hangup",
    "SIGPIPE": "broken pipe",
    "SIGILL": "illegal instruction",
    "SIGQUIT": "quit",
}


def _go_signal_name(name: str) -> str:
    return _GO_SIGNAL_NAMES.get(name, name.lower())


def billed_ms(duration_ms: float, init_ms: float | None) -> int:
    """1 ms granularity, rounded up; since 2025-08-01 the INIT phase is billed too."""
    return math.ceil(round(duration_ms + (init_ms or 0.0), 6))


def iso_now() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


# ---- platform log lines (text format, tab separated) ----


def init_start_line(runtime_version: str, runtime_arn: str) -> str:
    return f"INIT_START Runtime Version: {runtime_version}\tRuntime Version ARN: {runtime_arn}"


def start_line(request_id: str, version: str = "$LATEST") -> str:
    return f"START RequestId: {request_id} Version: {version}"


def end_line(request_id: str) -> str:
    return f"END RequestId: {request_id}"


def report_line(
    request_id: str,
    duration_ms: float,
    billed: int,
    memory_mb: int,
    max_used_mb: int,
    init_ms: float | None = None,
    status: str | None = None,
    error_type: str | None = None,
) -> str:
    parts = [
        f"REPORT RequestId: {request_id}",
        f"Duration: {duration_ms:.2f} ms",
        f"Billed Duration: {billed} ms",
        f"Memory Size: {memory_mb} MB",
        f"Max Memory Used: {max_used_mb} MB",
    ]
    if init_ms is not None:
        parts.append(f"Init Duration: {init_ms:.2f} ms")
    if status:
        parts.append(f"Status: {status}")
    if error_type:
        parts.append(f"Error Type: {error_type}")
    return "\t".join(parts) + "\t"


def init_report_line(init_ms: float, phase: str, status: str, error_type: str | None = None) -> str:
    parts = [f"INIT_REPORT Init Duration: {init_ms:.2f} ms", f"Phase: {phase}", f"Status: {status}"]
    if error_type:
        parts.append(f"Error Type: {error_type}")
    return "\t".join(parts)


def timeout_line(request_id: str, timeout_s: float) -> str:
    return f"{iso_now()} {request_id} Task timed out after {timeout_s:.2f} seconds"
