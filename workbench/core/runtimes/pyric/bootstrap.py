"""workbench's Lambda runtime client for Python functions.

The emulator runs this file as ``python3 -u bootstrap.py`` with the function folder as cwd and the
Lambda environment variables set. It behaves like the managed Python runtime (awslambdaric): same
handler resolution, same error documents, same context object and the same log line formats.

It must stay standalone and stdlib-only: it runs under whatever python3 (>= 3.9) the function
targets, where neither workbench nor any third-party package is installed.
"""

from __future__ import annotations

import decimal
import importlib
import io
import json
import logging
import os
import re
import socket
import sys
import time
import traceback
from typing import Any, Callable, Dict, List, NoReturn, Optional, Tuple

RUNTIME_PATH = "/2018-06-01/runtime"
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
XRAY_CAUSE_HEADER = "Lambda-Runtime-Function-XRay-Error-Cause"
XRAY_CAUSE_LIMIT = 1024 * 1024  # the managed runtime drops the header past 1 MiB

# Printed by the managed runtime before every init failure; kept so logs read the same.
UNHANDLED_INIT_WARNING = (
    "LAMBDA_WARNING: Unhandled exception. The most likely cause is an issue in the function code. "
    "However, in rare cases, a Lambda runtime update can cause unexpected function behavior. "
    "For functions using managed runtimes, runtime updates can be triggered by a function change, "
    "or can be applied automatically. To determine if the runtime has been updated, check the "
    "runtime version in the INIT_START log entry. If this error correlates with a change in the "
    "runtime version, you may be able to mitigate this error by temporarily rolling back to the "
    "previous runtime version. For more information, see "
    "https://docs.aws.amazon.com/lambda/latest/dg/runtimes-update.html"
)

_OWN_FILES = {__file__, os.path.abspath(__file__)}
ErrorDoc = Dict[str, Any]
Headers = Dict[str, str]
Handler = Callable[[Any, Any], Any]


class Fault(Exception):
    """An error the runtime reports with its own errorType instead of the exception's class."""

    def __init__(self, error_type: str, message: str, trace: Optional[List[str]] = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace or []


class Invocation:
    """Who is asking: the current request id is read by the log handler at every record."""

    request_id = ""
    tenant_id: Optional[str] = None


# --- JSON -------------------------------------------------------------------------------------


class _Encoder(json.JSONEncoder):
    """json.dumps plus Decimal written as the exact number text, as the managed runtime does.

    The stdlib encoder cannot emit raw text, so each Decimal becomes a unique placeholder string
    that is swapped for the number after encoding; the swap only runs when a Decimal was seen.
    """

    _token = os.urandom(8).hex()
    _placeholder = re.compile('"__wb_decimal_%s_([0-9]+)__"' % _token)

    def __init__(self, ensure_ascii: bool) -> None:
        super().__init__(ensure_ascii=ensure_ascii, allow_nan=True)
        self._numbers: List[str] = []

    def default(self, o: Any) -> Any:
        if isinstance(o, bytes):  # the managed runtime's simplejson writes bytes as UTF-8 text
            return o.decode("utf-8")
        if isinstance(o, decimal.Decimal):
            self._numbers.append("NaN" if o.is_nan() else str(o))
            return "__wb_decimal_%s_%d__" % (self._token, len(self._numbers) - 1)
        return super().default(o)

    def encode(self, o: Any) -> str:
        self._numbers = []
        text = super().encode(o)
        if self._numbers:
            numbers = self._numbers
            text = self._placeholder.sub(lambda m: numbers[int(m.group(1))], text)
        return text


def _ensure_ascii() -> bool:
    # Python 3.12+ runtimes emit UTF-8 as is; older ones escape non-ASCII characters.
    env = os.environ.get("AWS_EXECUTION_ENV", "")
    match = re.fullmatch(r"AWS_Lambda_python3\.(\d+)", env)
    return not (match and int(match.group(1)) >= 12)


# --- Runtime API client -----------------------------------------------------------------------


class ProtocolError(OSError):
    """The Runtime API answered something that is not HTTP/1.1 as we speak it."""


class RuntimeAPI:
    """One keep-alive HTTP/1.1 connection to the Runtime API, reopened once if it was dropped.

    A plain socket rather than http.client: http.client parses every answer's headers with the
    email package, which was most of this client's cost per invoke."""

    def __init__(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        self._addr = (host, int(port))
        self._host = address
        self._sock: Optional[socket.socket] = None
        self._buf = bytearray()

    def call(
        self,
        method: str,
        path: str,
        body: Optional[bytes] = None,
        headers: Optional[Dict[str, str]] = None,
    ) -> Tuple[int, Headers, bytes]:
        """Status, headers (lower-cased names) and body of one request."""
        for attempt in (1, 2):
            try:
                if self._sock is None:
                    self._connect()
                self._send(method, RUNTIME_PATH + path, body or b"", headers or {})
                return self._receive()
            except ConnectionError:
                # A stale keep-alive socket fails on first use: reconnect once.
                self._close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _connect(self) -> None:
        # No timeout: /next is a long poll that may block for as long as the function is idle.
        sock = socket.create_connection(self._addr)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        self._buf = bytearray()

    def _close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _send(self, method: str, target: str, body: bytes, headers: Dict[str, str]) -> None:
        lines = ["%s %s HTTP/1.1" % (method, target), "Host: " + self._host]
        lines += ["%s: %s" % item for item in headers.items()]
        lines.append("Content-Length: %d" % len(body))
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        assert self._sock is not None
        if len(body) < 65536:
            self._sock.sendall(head + body)
        else:  # do not copy a large result just to glue the head on
            self._sock.sendall(head)
            self._sock.sendall(body)

    def _fill(self) -> None:
        assert self._sock is not None
        data = self._sock.recv(262144)
        if not data:
            raise ConnectionResetError("the Runtime API closed the connection")
        self._buf += data

    def _take(self, n: int) -> bytes:
        while len(self._buf) < n:
            self._fill()
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    def _line(self) -> bytes:
        while True:
            end = self._buf.find(b"\r\n")
            if end >= 0:
                return self._take(end + 2)[:-2]
            self._fill()

    def _receive(self) -> Tuple[int, Headers, bytes]:
        status_line = self._line().split(b" ", 2)
        if len(status_line) < 2 or not status_line[0].startswith(b"HTTP/1."):
            raise ProtocolError("bad status line %r" % b" ".join(status_line))
        status = int(status_line[1])
        headers: Headers = {}
        while True:
            line = self._line()
            if not line:
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if status == 100:  # an interim answer: the real one follows
            return self._receive()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._chunked()
        else:
            body = self._take(int(headers.get("content-length") or 0))
        if headers.get("connection", "").lower() == "close":
            self._close()
        return status, headers, body

    def _chunked(self) -> bytes:
        parts: List[bytes] = []
        while True:
            size = int(self._line().split(b";", 1)[0].strip(), 16)
            if size == 0:
                while self._line():  # trailers, up to the blank line
                    pass
                return b"".join(parts)
            parts.append(self._take(size))
            self._take(2)

    def post(self, path: str, body: bytes, headers: Dict[str, str]) -> None:
        _flush_output()  # whatever the function printed must be in the pipe before its result
        try:
            status, _, answer = self.call("POST", path, body, headers)
        except (OSError, ProtocolError) as exc:
            _runtime_log("POST %s failed: %r" % (RUNTIME_PATH + path, exc))
            sys.exit(1)
        if status == 202:
            return
        text = answer.decode("utf-8", "replace").strip()
        _runtime_log("POST %s answered %d: %s" % (RUNTIME_PATH + path, status, text))
        if not 400 <= status < 500:
            sys.exit(1)  # 5xx means the environment is broken: exit like the managed runtime


def _runtime_log(message: str) -> None:
    sys.stderr.write("[workbench python runtime] %s\n" % message)


def _flush_output() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # the function may have replaced or closed the stream
            pass


# --- Context ----------------------------------------------------------------------------------


class CognitoIdentity:
    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")

    def __init__(self, doc: Dict[str, Any]) -> None:
        self.cognito_identity_id = doc.get("cognitoIdentityId")
        self.cognito_identity_pool_id = doc.get("cognitoIdentityPoolId")

    def __repr__(self) -> str:
        return "CognitoIdentity([%s])" % _fields(self)


class Client:
    __slots__ = (  # noqa: RUF023 - the order Lambda's repr shows
        "installation_id",
        "app_title",
        "app_version_name",
        "app_version_code",
        "app_package_name",
    )

    def __init__(self, doc: Dict[str, Any]) -> None:
        for name in self.__slots__:
            setattr(self, name, doc.get(name))

    def __repr__(self) -> str:
        return "Client([%s])" % _fields(self)


class ClientContext:
    __slots__ = ("custom", "env", "client")  # noqa: RUF023 - the order Lambda's repr shows

    def __init__(self, doc: Dict[str, Any]) -> None:
        self.custom = doc.get("custom")
        self.env = doc.get("env")
        client = doc.get("client")
        self.client = None if client is None else Client(client)

    def __repr__(self) -> str:
        return "ClientContext([%s])" % _fields(self)


def _fields(obj: Any) -> str:
    return ",".join("%s=%s" % (name, getattr(obj, name)) for name in obj.__slots__)


class LambdaContext:
    """The ``context`` argument, with the managed runtime's attribute names and types."""

    def __init__(self, headers: Headers, request_id: str) -> None:
        env = os.environ
        self.aws_request_id = request_id
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")  # a str in Lambda too
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = headers.get("lambda-runtime-invoked-function-arn")
        self.tenant_id = headers.get("lambda-runtime-aws-tenant-id")
        try:
            self._deadline_ms = int(headers.get("lambda-runtime-deadline-ms") or 0)
        except ValueError:
            self._deadline_ms = 0

        client_context = _json_header(headers, "lambda-runtime-client-context", "Client Context")
        # The W3C trace context rides in the client context but is not part of it for the function.
        w3c = client_context.pop("w3c", None) if isinstance(client_context, dict) else None
        self._w3c = {
            k: v
            for k, v in (w3c if isinstance(w3c, dict) else {}).items()
            if k in ("traceparent", "tracestate", "baggage") and isinstance(v, str)
        }
        self.client_context = None if client_context is None else ClientContext(client_context)
        identity = _json_header(headers, "lambda-runtime-cognito-identity", "Cognito Identity")
        self.identity = CognitoIdentity(identity or {})

    def get_remaining_time_in_millis(self) -> int:
        return max(self._deadline_ms - int(time.time() * 1000), 0)

    def w3c(self) -> Dict[str, str]:
        return dict(self._w3c)

    def log(self, msg: Any) -> None:
        sys.stdout.write(str(msg))

    def __repr__(self) -> str:
        names = (
            "aws_request_id",
            "log_group_name",
            "log_stream_name",
            "function_name",
            "memory_limit_in_mb",
            "function_version",
            "invoked_function_arn",
            "client_context",
            "identity",
            "tenant_id",
        )
        return "LambdaContext([%s])" % ",".join("%s=%s" % (n, getattr(self, n)) for n in names)


def _json_header(headers: Headers, name: str, label: str) -> Any:
    text = headers.get(name)
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise Fault(
            "Runtime.LambdaContextUnmarshalError", "Unable to parse %s JSON: %s" % (label, exc)
        ) from None


# --- Logging ----------------------------------------------------------------------------------


def _utc(seconds: Optional[float]) -> time.struct_time:
    return time.gmtime(seconds)


class _TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
            "%Y-%m-%dT%H:%M:%S",
        )
        self.converter = _utc  # Lambda logs in UTC whatever TZ says


# LogRecord attributes that are not "extra" fields of the caller.
_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "aws_request_id",
    "tenant_id",
}


class _JsonFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(datefmt="%Y-%m-%dT%H:%M:%SZ")
        self.converter = _utc
        self._encode = json.JSONEncoder(ensure_ascii=False, default=str).encode

    def format(self, record: logging.LogRecord) -> str:
        level = min(50, max(0, record.levelno)) // 10 * 10  # custom levels fold onto standard ones
        message = record.msg if isinstance(record.msg, dict) and not record.args else None
        exc = record.exc_info
        doc: Dict[str, Any] = {
            "timestamp": self.formatTime(record, self.datefmt),
            "level": logging.getLevelName(level),
            "message": record.getMessage() if message is None else message,
            "logger": record.name,
            "stackTrace": traceback.format_tb(exc[2]) if exc else None,
            "errorType": exc[0].__name__ if exc and exc[0] else None,
            "errorMessage": str(exc[1]) if exc else None,
            "requestId": getattr(record, "aws_request_id", None),
            "location": "%s:%s:%s" % (record.pathname, record.funcName, record.lineno)
            if exc
            else None,
            "tenantId": getattr(record, "tenant_id", None),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and key not in doc:
                doc[key] = value
        return self._encode({k: v for k, v in doc.items() if v is not None})


class _LambdaLogHandler(logging.Handler):
    """Root handler writing one record per line on stdout, tagged with the current request."""

    def emit(self, record: logging.LogRecord) -> None:
        record.aws_request_id = Invocation.request_id
        record.tenant_id = Invocation.tenant_id
        try:
            sys.stdout.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


_LOG_LEVELS = {
    "TRACE": 10,
    "DEBUG": 10,
    "INFO": 20,
    "WARN": 30,
    "WARNING": 30,
    "ERROR": 40,
    "FATAL": 50,
    "CRITICAL": 50,
}


def setup_logging(json_format: bool) -> None:
    handler = _LambdaLogHandler()
    handler.setFormatter(_JsonFormatter() if json_format else _TextFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    # Without AWS_LAMBDA_LOG_LEVEL the root logger keeps Python's default, WARNING, as in Lambda.
    level = _LOG_LEVELS.get(os.environ.get("AWS_LAMBDA_LOG_LEVEL", "").upper())
    if level is not None:
        root.setLevel(level)


def error_lines(error: ErrorDoc) -> List[str]:
    """How the managed runtime prints an error document in the text log format."""
    head = "[ERROR]"
    if error["errorType"]:
        head += " " + error["errorType"] + (":" if error["errorMessage"] else "")
    if error["errorMessage"]:
        head += " " + error["errorMessage"]
    # The managed runtime always prints the Traceback header, even with no frames to show.
    lines = [head, "Traceback (most recent call last):"]
    for frame in error["stackTrace"]:
        lines.extend(frame.splitlines() or [""])
    return lines


# --- Errors -----------------------------------------------------------------------------------


def error_doc(exc: Exception, request_id: str) -> Tuple[ErrorDoc, List[traceback.FrameSummary]]:
    """The error document the managed runtime posts, and the frames it was built from."""
    frames: List[traceback.FrameSummary] = []
    if isinstance(exc, Fault):
        message, error_type, trace = exc.message, exc.error_type, exc.trace
    else:
        frames = traceback.extract_tb(exc.__traceback__)
        # The function's author has no use for the runtime's own frames.
        while frames and frames[0].filename in _OWN_FILES:
            frames.pop(0)
        # Plain tuples, as the managed runtime formats them: no 3.11+ column carets.
        rows = [(f.filename, f.lineno or 0, f.name, f.line) for f in frames]
        message, error_type, trace = str(exc), type(exc).__name__, traceback.format_list(rows)
    doc = {
        "errorMessage": message,
        "errorType": error_type,
        "requestId": request_id,
        "stackTrace": trace,
    }
    return doc, frames


def xray_cause(exc: Exception, error: ErrorDoc, frames: List[traceback.FrameSummary]) -> str:
    # The managed runtime files its own faults under one X-Ray type.
    error_type = "LambdaValidationError" if isinstance(exc, Fault) else error["errorType"]
    stack = [{"label": f.name, "path": f.filename, "line": f.lineno} for f in frames]
    return json.dumps(
        {
            "working_directory": os.getcwd(),
            "exceptions": [{"message": error["errorMessage"], "type": error_type, "stack": stack}],
            "paths": sorted({f.filename for f in frames}),
        }
    )


# --- Handler loading --------------------------------------------------------------------------


def load_handler(spec: str) -> Handler:
    try:
        modname, fname = spec.rsplit(".", 1)
    except ValueError as exc:
        raise Fault("Runtime.MalformedHandlerName", "Bad handler '%s': %s" % (spec, exc)) from None
    if modname.split(".")[0] in sys.builtin_module_names:
        raise Fault(
            "Runtime.BuiltInModuleConflict",
            "Cannot use built-in module %s as a handler module" % modname,
        )
    try:
        module = importlib.import_module(modname.replace("/", "."))
    except ImportError as exc:
        raise Fault(
            "Runtime.ImportModuleError", "Unable to import module '%s': %s" % (modname, exc)
        ) from None
    except SyntaxError as exc:
        trace = ['  File "%s" Line %s\n    %s' % (exc.filename, exc.lineno, exc.text)]
        raise Fault(
            "Runtime.UserCodeSyntaxError", "Syntax error in module '%s': %s" % (modname, exc), trace
        ) from None
    try:
        handler: Handler = getattr(module, fname)
    except AttributeError:
        raise Fault(
            "Runtime.HandlerNotFound", "Handler '%s' missing on module '%s'" % (fname, modname)
        ) from None
    return handler


# --- The runtime ------------------------------------------------------------------------------


class Runtime:
    def __init__(self, api: RuntimeAPI, json_format: bool) -> None:
        self.api = api
        self.json_format = json_format
        self.encoder = _Encoder(_ensure_ascii())

    def init(self, spec: str) -> Handler:
        """Import the handler, or report why not and exit: an init error is fatal in Lambda."""
        try:
            return load_handler(spec)
        except Exception as exc:
            error, _ = error_doc(exc, "")
        logging.warning(UNHANDLED_INIT_WARNING)
        self.log_error(error)
        self.api.post(
            "/init/error",
            self.encoder.encode(error).encode(),
            {ERROR_TYPE_HEADER: error["errorType"]},
        )
        sys.exit(1)

    def serve(self, handler: Handler) -> NoReturn:
        while True:
            try:
                status, headers, body = self.api.call("GET", "/invocation/next")
            except (OSError, ProtocolError) as exc:
                _runtime_log("GET /invocation/next failed: %r" % exc)
                sys.exit(1)
            if status != 200:
                text = body[:500].decode("utf-8", "replace")
                _runtime_log("GET /invocation/next answered %d: %s" % (status, text))
                sys.exit(1)
            request_id = headers.get("lambda-runtime-aws-request-id") or ""
            Invocation.request_id = request_id
            Invocation.tenant_id = headers.get("lambda-runtime-aws-tenant-id")
            trace_id = headers.get("lambda-runtime-trace-id")
            if trace_id is not None:
                os.environ["_X_AMZN_TRACE_ID"] = trace_id
            else:
                os.environ.pop("_X_AMZN_TRACE_ID", None)
            self.invoke(handler, headers, body, request_id)

    def invoke(self, handler: Handler, headers: Headers, body: bytes, request_id: str) -> None:
        try:
            payload, content_type = self.run_handler(handler, headers, body, request_id)
        except Exception as exc:
            self.post_error(exc, request_id)
            return
        self.api.post(
            "/invocation/%s/response" % request_id, payload, {"Content-Type": content_type}
        )

    def run_handler(
        self, handler: Handler, headers: Headers, body: bytes, request_id: str
    ) -> Tuple[bytes, str]:
        context = LambdaContext(headers, request_id)
        event: Any = body  # a payload declared as non-JSON reaches the handler as bytes
        if _is_json(headers.get("content-type")):
            try:
                event = json.loads(body)
            except ValueError as exc:
                message = "Unable to unmarshal input: %s" % exc
                raise Fault("Runtime.UnmarshalError", message) from None
        result = handler(event, context)
        if isinstance(result, bytes):
            return result, "application/unknown"
        try:
            return self.encoder.encode(result).encode(), "application/json"
        except Exception as exc:
            raise Fault("Runtime.MarshalError", "Unable to marshal response: %s" % exc) from None

    def post_error(self, exc: Exception, request_id: str) -> None:
        error, frames = error_doc(exc, request_id)
        self.log_error(error)
        headers = {"Content-Type": "application/json"}
        cause = xray_cause(exc, error, frames)
        if len(cause) < XRAY_CAUSE_LIMIT:
            headers[XRAY_CAUSE_HEADER] = cause
        self.api.post(
            "/invocation/%s/error" % request_id, self.encoder.encode(error).encode(), headers
        )

    def log_error(self, error: ErrorDoc) -> None:
        if self.json_format:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            record = {"timestamp": stamp, "level": "ERROR", **error}
            sys.stdout.write(self.encoder.encode(record) + "\n")
        else:
            sys.stdout.write("\n".join(error_lines(error)) + "\n")


def _is_json(content_type: Optional[str]) -> bool:
    return content_type is None or content_type.split(";")[0].strip().lower() == "application/json"


def _set_sys_path(task_root: str) -> None:
    # Running as a script put this folder first; the function's folder takes that place, as
    # /var/task does in Lambda, so no runtime file can shadow a function module. The
    # interpreter's site-packages go too: Lambda's Python has none the function could use, and
    # here they would bring whatever was installed for this Python. What the managed runtime
    # ships (boto3...) arrives through PYTHONPATH, after the layers.
    own_dir = os.path.dirname(os.path.abspath(__file__))
    dropped = {own_dir}
    try:
        import site

        dropped.update(os.path.abspath(p) for p in site.getsitepackages())
        dropped.add(os.path.abspath(site.getusersitepackages()))
    except (ImportError, AttributeError):  # -S, or an embedded build without these
        pass
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") not in dropped]
    sys.path.insert(0, task_root)


def main() -> None:
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(line_buffering=True)
    _set_sys_path(os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd())
    json_format = os.environ.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON"
    setup_logging(json_format)
    address = os.environ.get("AWS_LAMBDA_RUNTIME_API")
    if not address:
        _runtime_log("AWS_LAMBDA_RUNTIME_API is not set: this program is started by workbench")
        sys.exit(1)
    runtime = Runtime(RuntimeAPI(address), json_format)
    try:
        runtime.serve(runtime.init(os.environ.get("_HANDLER", "")))
    except KeyboardInterrupt:  # Ctrl-C in the terminal reaches the whole process group
        sys.exit(130)


if __name__ == "__main__":
    main()
