"""What one invocation was: the result to hand back, and the record kept for history."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

from workbench.core.vocab import CheckStatus, InvocationType, Source, Status


@dataclass(slots=True)
class InvokeRequest:
    payload: bytes
    invocation_type: InvocationType = "RequestResponse"
    client_context: str | None = None  # decoded JSON text
    trace_id: str | None = None
    tenant_id: str | None = None
    content_type: str = "application/json"
    source: Source = "cli"
    qualifier: str | None = None  # the version or alias it was invoked as ($LATEST only here)


@dataclass(slots=True)
class InvokeResult:
    """What the caller gets: the body, and whether it is a function error."""

    request_id: str
    payload: bytes
    content_type: str = "application/json"
    function_error: bool = False

    @property
    def error_type(self) -> str | None:
        if not self.function_error:
            return None
        try:
            doc = json.loads(self.payload)
        except ValueError:
            return "Unhandled"
        if isinstance(doc, dict) and isinstance(doc.get("errorType"), str):
            return str(doc["errorType"])
        return "Unhandled"


@dataclass(slots=True)
class InvocationRecord:
    """One invocation: the only shape there is of one. The engine makes it when the invocation
    ends; history stores it and reads it back (then `id`, `code_version` and `check_result`
    are set); the Invoke API answers from it; the UI shows it as a row."""

    function: str
    request_id: str
    request: InvokeRequest
    result: InvokeResult
    status: Status
    cold: bool
    started_at: float  # epoch seconds
    duration_ms: float
    billed_ms: int
    init_ms: float | None
    memory_mb: int
    max_memory_mb: int
    log_lines: list[str] = field(default_factory=list)
    log_truncated: bool = False
    event_name: str | None = None  # the saved event it was sent, when it was one
    # what history adds when it reads one back
    id: int | None = None
    code_version: str | None = None
    check_result: CheckStatus | Literal["ok"] | None = None  # set by `replay --check`

    @property
    def error_type(self) -> str | None:
        return self.result.error_type

    @property
    def measured(self) -> bool:
        """Its duration, billing and memory were measured: false for an unfinished one, whose
        figures are zeros standing for "unknown"."""
        return self.status != "unfinished"

    @property
    def outcome(self) -> str:
        """ok, the error type, timeout, crash or unfinished: what a history table's status
        column says."""
        if self.status in ("timeout", "crash", "unfinished"):
            return self.status
        return "ok" if not self.result.function_error else (self.error_type or "error")

    # flat names for what a reader of one invocation asks most
    @property
    def source(self) -> Source:
        return self.request.source

    @property
    def event(self) -> bytes:
        return self.request.payload

    @property
    def response(self) -> bytes:
        return self.result.payload

    @property
    def function_error(self) -> bool:
        return self.result.function_error

    def log_text(self) -> str:
        return "".join(line + "\n" for line in self.log_lines)

    def replay_request(self, source: Source = "replay") -> InvokeRequest:
        """The same event again, as a synchronous invoke (a replay wants the response)."""
        req = self.request
        return InvokeRequest(
            req.payload,
            client_context=req.client_context,
            tenant_id=req.tenant_id,
            content_type=req.content_type,
            source=source,
        )
