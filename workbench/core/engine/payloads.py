"""The checks the Lambda service makes on an invoke before anything runs, and the errors it
answers with. No server code here: `workbench invoke` uses these without loading aiohttp."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from workbench.core import protocol as P


@dataclass(frozen=True, slots=True)
class ServiceError(Exception):
    status: int
    code: str
    message: str
    reason: str | None = None  # a throttle's Reason (TooManyRequestsException)

    def body(self) -> bytes:
        doc = {"Type": "User", "Message": self.message}
        if self.reason is not None:
            doc["Reason"] = self.reason
        return json.dumps(doc).encode()


def validate_payload(
    data: bytes, invocation_type: str = "RequestResponse", size: int | None = None
) -> bytes:
    """The checks the service makes before anything runs; returns the payload to deliver.
    `size` is the body's full size when only part of it was kept (over the limit)."""
    size = len(data) if size is None else size
    limit = P.ASYNC_PAYLOAD_LIMIT if invocation_type == "Event" else P.SYNC_PAYLOAD_LIMIT
    if size > limit:
        raise ServiceError(
            413,
            "RequestEntityTooLargeException",
            f"{size} byte payload is too large for the {invocation_type} "
            f"invocation type (limit {limit} bytes)",
        )
    if not data.strip():
        return b"{}"
    try:
        # decoding first is faster than json.loads on bytes (which sniffs the encoding)
        json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ServiceError(
            400,
            "InvalidRequestContentException",
            "Could not parse request body into json: Could not parse payload into "
            "json: the payload is not valid UTF-8",
        ) from None
    except ValueError as exc:
        raise ServiceError(
            400,
            "InvalidRequestContentException",
            f"Could not parse request body into json: Could not parse payload into json: {exc}",
        ) from None
    return data


def decode_client_context(value: str | None) -> str | None:
    if not value:
        return None
    try:
        text = base64.b64decode(value, validate=True).decode()
        if not isinstance(json.loads(text), dict):
            raise ValueError
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ServiceError(
            400,
            "InvalidRequestContentException",
            "Client context must be a valid Base64-encoded JSON object.",
        ) from None
    if len(value) > P.CLIENT_CONTEXT_LIMIT:
        raise ServiceError(
            400,
            "InvalidRequestContentException",
            f"Client context must be {P.CLIENT_CONTEXT_LIMIT} bytes or less.",
        )
    return text


def enum_error(value: str, field: str, allowed: tuple[str, ...]) -> ServiceError:
    return ServiceError(
        400,
        "ValidationException",
        f"1 validation error detected: Value '{value}' at '{field}' failed to "
        f"satisfy constraint: Member must satisfy enum value set: "
        f"[{', '.join(allowed)}]",
    )
