"""What one invocation was: the result to hand back, and the record kept for history."""

from __future__ import annotations

import json
from dataclasses import dataclass, field


@dataclass(slots=True)
class InvokeRequest:
    payload: bytes
    invocation_type: str = "RequestResponse"
    client_context: str | None = None  # decoded JSON text
    trace_id: str | None = None
    tenant_id: str | None = None
    content_type: str = "application/json"
    source: str = "cli"


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
    function: str
    request_id: str
    request: InvokeRequest
    result: InvokeResult
    status: str  # "ok", "error", "timeout", "crash"
    cold: bool
    started_at: float  # epoch seconds
    duration_ms: float
    billed_ms: int
    init_ms: float | None
    memory_mb: int
    max_memory_mb: int
    log_lines: list[str] = field(default_factory=list)
    log_truncated: bool = False

    @property
    def error_type(self) -> str | None:
        return self.result.error_type

    def log_text(self) -> str:
        return "".join(line + "\n" for line in self.log_lines)
