"""A Go net/rpc client for the two methods a go1.x function serves: Function.Ping and
Function.Invoke, the messages shaped as aws-lambda-go's `lambda/messages` package.

One connection carries two gob streams, ours and the function's, each with its own type ids.
A call is a request header (`rpc.Request`: ServiceMethod, Seq) and the argument; the answer
is a response header (`rpc.Response`: ServiceMethod, Seq, Error) and a reply. One call is in
flight at a time, as Lambda never runs two invokes in one process; Seq still counts up from
0 and each answer must carry its call's. A header with an Error is net/rpc's own failure (a
method that does not exist, an argument it could not decode): RpcFault. The function's own
errors come inside the reply, as InvokeReply.error.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from workbench.core.runtimes.gorpc import gob

# The ids of our stream's types: any distinct ids from 65 up will do, since the receiver reads
# them off the wire; these are the ones Go's own client uses when its first call is a Ping.
REQUEST, PING_REQUEST, INVOKE_REQUEST, TIMESTAMP = 65, 66, 67, 68
PING = "Function.Ping"
INVOKE = "Function.Invoke"


class RpcError(Exception):
    """The call did not complete as a net/rpc call."""


class RpcClosed(RpcError):
    """The connection ended, broke, or carried something that is not gob: it is of no more
    use (the stream's type state cannot be trusted). `size`: a message was refused for its
    length (a reply over the payload limit)."""

    def __init__(self, message: str, size: int | None = None) -> None:
        super().__init__(message)
        self.size = size


class RpcFault(RpcError):
    """net/rpc answered with an error of its own (`Response.Error`)."""


@dataclass(slots=True)
class InvokeArgs:
    """messages.InvokeRequest."""

    payload: bytes
    request_id: str
    deadline_s: int  # the deadline as Unix time: seconds, and nanoseconds past them
    deadline_ns: int
    invoked_function_arn: str
    trace_id: str = ""
    cognito_identity_id: str = ""
    cognito_identity_pool_id: str = ""
    client_context: bytes = b""  # JSON

    def message(self) -> dict[str, Any]:
        return {
            "Payload": self.payload,
            "RequestId": self.request_id,
            "XAmznTraceId": self.trace_id,
            "Deadline": {"Seconds": self.deadline_s, "Nanos": self.deadline_ns},
            "InvokedFunctionArn": self.invoked_function_arn,
            "CognitoIdentityId": self.cognito_identity_id,
            "CognitoIdentityPoolId": self.cognito_identity_pool_id,
            "ClientContext": self.client_context,
        }


@dataclass(frozen=True, slots=True)
class Frame:
    path: str
    line: int
    label: str


@dataclass(frozen=True, slots=True)
class FunctionError:
    """messages.InvokeResponse_Error: what the handler returned as an error, or its panic."""

    message: str
    type: str
    stack: tuple[Frame, ...] = ()
    should_exit: bool = False  # a panic: the process is to be thrown away

    def document(self) -> dict[str, Any]:
        """Lambda's error shape, as aws-lambda-go writes this error as JSON."""
        doc: dict[str, Any] = {"errorMessage": self.message, "errorType": self.type}
        if self.stack:
            doc["stackTrace"] = [
                {"path": f.path, "line": f.line, "label": f.label} for f in self.stack
            ]
        return doc


@dataclass(frozen=True, slots=True)
class InvokeReply:
    """messages.InvokeResponse."""

    payload: bytes = b""
    error: FunctionError | None = None


def _text(doc: dict[str, Any], key: str) -> str:
    value = doc.get(key, "")
    return value if isinstance(value, str) else ""


def reply_of(doc: Any) -> InvokeReply:
    """Read an InvokeResponse by field name, a missing field as its zero value."""
    if not isinstance(doc, dict):
        raise RpcClosed("the Invoke reply is not a struct")
    payload = doc.get("Payload", b"")
    err = doc.get("Error")
    if not isinstance(err, dict):
        return InvokeReply(payload if isinstance(payload, bytes) else b"")
    frames = []
    for f in err.get("StackTrace", []) if isinstance(err.get("StackTrace"), list) else []:
        if isinstance(f, dict):
            line = f.get("Line", 0)
            frames.append(
                Frame(_text(f, "Path"), line if isinstance(line, int) else 0, _text(f, "Label"))
            )
    error = FunctionError(
        _text(err, "Message"), _text(err, "Type"), tuple(frames), err.get("ShouldExit") is True
    )
    return InvokeReply(payload if isinstance(payload, bytes) else b"", error)


def _encoder() -> gob.Encoder:
    enc = gob.Encoder()
    enc.define(
        REQUEST, gob.struct_wire_type("Request", REQUEST, [("ServiceMethod", 6), ("Seq", 3)])
    )
    enc.define(PING_REQUEST, gob.struct_wire_type("PingRequest", PING_REQUEST, []))
    enc.define(
        INVOKE_REQUEST,
        gob.struct_wire_type(
            "InvokeRequest",
            INVOKE_REQUEST,
            [
                ("Payload", gob.BYTES),
                ("RequestId", gob.STRING),
                ("XAmznTraceId", gob.STRING),
                ("Deadline", TIMESTAMP),
                ("InvokedFunctionArn", gob.STRING),
                ("CognitoIdentityId", gob.STRING),
                ("CognitoIdentityPoolId", gob.STRING),
                ("ClientContext", gob.BYTES),
            ],
        ),
    )
    enc.define(
        TIMESTAMP,
        gob.struct_wire_type(
            "InvokeRequest_Timestamp", TIMESTAMP, [("Seconds", gob.INT), ("Nanos", gob.INT)]
        ),
    )
    return enc


@dataclass(eq=False)
class RpcClient:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    max_message: int = gob.MAX_MESSAGE
    seq: int = 0
    _enc: gob.Encoder = field(default_factory=_encoder)
    _dec: gob.Decoder = field(init=False)
    _busy: bool = False
    closed: bool = False

    def __post_init__(self) -> None:
        self._dec = gob.Decoder(self.max_message)

    @classmethod
    async def connect(cls, host: str, port: int, max_message: int = gob.MAX_MESSAGE) -> RpcClient:
        """Open a connection (OSError when nothing listens there)."""
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, max_message)

    async def ping(self) -> None:
        await self.call(PING, PING_REQUEST, {})

    async def invoke(self, args: InvokeArgs) -> InvokeReply:
        return reply_of(await self.call(INVOKE, INVOKE_REQUEST, args.message()))

    async def call(self, method: str, arg_type: int, arg: Any) -> Any:
        """One call and its answer. Cancelled part-way, the connection is closed: the rest of
        the answer would arrive with nobody to read it."""
        if self.closed:
            raise RpcClosed("the connection is closed")
        if self._busy:
            raise RpcError("a call is already in flight on this connection")
        self._busy = True
        seq, self.seq = self.seq, self.seq + 1
        done = False
        try:
            data = self._enc.encode(REQUEST, {"ServiceMethod": method, "Seq": seq})
            data += self._enc.encode(arg_type, arg)
            try:
                self.writer.write(data)
                await self.writer.drain()
            except (OSError, RuntimeError) as exc:
                raise RpcClosed(f"cannot send the call: {exc}") from None
            header = await self._read_value()
            body = await self._read_value()  # read even after an error: it may define a type
            if not isinstance(header, dict):
                raise RpcClosed("the answer's header is not a net/rpc response")
            got = header.get("Seq", 0)
            if got != seq:
                raise RpcClosed(f"an answer to call {got} for call {seq}")
            error = header.get("Error", "")
            if error:
                done = True  # the stream itself is intact
                raise RpcFault(str(error))
            done = True
            return body
        finally:
            self._busy = False
            if not done:
                self.close()

    async def _read_value(self) -> Any:
        try:
            while True:
                first = (await self.reader.readexactly(1))[0]
                more = gob.uint_size(first)
                n = int.from_bytes(await self.reader.readexactly(more), "big") if more else first
                self._dec.check_length(n)
                message = self._dec.message(await self.reader.readexactly(n))
                if isinstance(message, gob.Value):
                    return message.value
        except gob.GobError as exc:
            raise RpcClosed(f"the function's answer is not readable: {exc}", exc.size) from None
        except asyncio.IncompleteReadError:
            raise RpcClosed("the connection closed in the middle of a call") from None
        except OSError as exc:
            raise RpcClosed(f"the connection broke: {exc}") from None

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            with contextlib.suppress(Exception):
                self.writer.close()
