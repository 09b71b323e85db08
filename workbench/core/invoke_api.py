"""The Lambda Invoke API (2015-03-31) that boto3 and the AWS CLI speak, over local functions.

Function failures are HTTP 200 with X-Amz-Function-Error, never 5xx: SDKs retry 5xx and would run
the function again. Service errors carry X-Amzn-ErrorType and a {"Type","Message"} body (spec 3.2).
Served by http11, like the Runtime API: an invoke's answer is an http11.Later that the runtime's
/response fills in and writes, with no task or framework in between (see
bench/invoke_overhead.py).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import math
import os
import re
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from workbench.core import protocol as P
from workbench.core.bus import Bus, InvocationAccepted, LogLine, WorkerFailed, failure_text
from workbench.core.engine import guards, http11
from workbench.core.engine.event_queue import EventQueue
from workbench.core.engine.function import Invocable, log_result_header
from workbench.core.engine.payloads import (
    ServiceError,
    decode_client_context,
    enum_error,
    validate_payload,
)
from workbench.core.record import InvocationRecord, InvokeRequest, InvokeResult
from workbench.core.vocab import INVOCATION_TYPES

LOG_TYPES = ("None", "Tail")
FUNCTIONS = "/2015-03-31/functions"
NAME = r"/([^/]+)"
Reply = http11.Response | http11.Later
Route = tuple[str, re.Pattern[str], Callable[..., Reply]]


def error_response(err: ServiceError, request_id: str | None = None) -> http11.Response:
    headers = {
        "X-Amzn-ErrorType": err.code,
        "X-Amzn-RequestId": request_id or str(uuid.uuid4()),
        "Content-Type": "application/json",
    }
    return http11.Response(err.status, err.body(), headers)


def _refused(message: str) -> http11.Response:
    return error_response(ServiceError(403, "AccessDeniedException", message))


def json_response(doc: object, status: int = 200) -> http11.Response:
    return http11.Response(
        status,
        json.dumps(doc).encode(),
        {"Content-Type": "application/json", "X-Amzn-RequestId": str(uuid.uuid4())},
    )


class InvokeAPI:
    def __init__(
        self,
        functions: Mapping[str, Invocable],
        host: str = "127.0.0.1",
        port: int = 9001,
        region: str = P.DEFAULT_REGION,
        account: str = P.DEFAULT_ACCOUNT,
        bus: Bus | None = None,
    ) -> None:
        """`bus`: where a route that fails unexpectedly is said (its caller gets a 500)."""
        self.functions = functions
        self.bus = bus
        self.host = host
        self.port = port
        self.region = region
        self.account = account
        self._names = guards.HostNames(host)
        self._events: dict[str, EventQueue] = {}  # per function: its Event invokes waiting
        # payloads over the sync limit are counted, not kept: the error names their size
        self._server = http11.Server(self._route, P.SYNC_PAYLOAD_LIMIT, self._route_failed)
        self._routes: list[Route] = [
            ("POST", re.compile(rf"^{FUNCTIONS}{NAME}/invocations$"), self._invoke),
            (
                "POST",
                re.compile(rf"^/2014-11-13/functions{NAME}/invoke-async/?$"),
                self._invoke_async,
            ),
            ("GET", re.compile(rf"^{FUNCTIONS}/?$"), self._list),
            ("GET", re.compile(rf"^{FUNCTIONS}{NAME}/?$"), self._get),
            ("GET", re.compile(rf"^{FUNCTIONS}{NAME}/configuration$"), self._get_configuration),
        ]

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> int:
        self.port = await self._server.start(self.host, self.port)
        return self.port

    async def stop(self) -> None:
        await self._server.stop()

    # ---- routing, behind the guard ----

    def _route(self, request: http11.Request) -> Reply:
        refused = self._guard(request)
        if refused is not None:
            return refused
        path = request.path
        for method, pattern, handler in self._routes:
            m = pattern.match(path)
            if m and request.method == method:
                args = [unquote(g) for g in m.groups()]
                try:
                    return handler(request, *args)
                except ServiceError as err:
                    return error_response(err)
        return error_response(
            ServiceError(
                404, "UnknownOperationException", f"Unknown operation {request.method} {path}"
            )
        )

    def _route_failed(self, request: http11.Request, exc: Exception) -> None:
        if self.bus is not None:
            worker = f"Invoke API ({request.method} {request.path})"
            self.bus.emit(WorkerFailed("", worker, failure_text(exc), stopped=False))

    def _guard(self, request: http11.Request) -> http11.Response | None:
        """A web page can reach a local port; refuse anything a browser marks as foreign.
        DNS rebinding shows up as a Host that names no address this server listens on (with
        any --host, 0.0.0.0 included), a cross-site fetch as an Origin. A field sent twice
        is refused outright: which copy counts is exactly what an attacker would play on."""
        for name in ("host", "origin"):
            if name in request.repeated:
                return _refused(f"Requests with more than one {name.title()} header are refused.")
        origin = request.headers.get("origin")
        if origin is not None and not self._is_own_origin(origin):
            return _refused(f"Requests from web pages are refused (Origin: {origin}).")
        host = guards.host_name(request.headers.get("host", ""))
        if not self._names.allows(host):
            return _refused(
                f"Requests for host {host!r} are refused: name this server by an address it "
                "listens on, or localhost."
            )
        return None

    def _is_own_origin(self, origin: str) -> bool:
        parts = urlsplit(origin)
        try:
            port = parts.port
        except ValueError:
            return False
        hostname = parts.hostname or ""
        host = f"[{hostname}]" if ":" in hostname else hostname
        return parts.scheme == "http" and port == self.port and self._names.allows(host)

    # ---- name resolution ----

    def _arn(self, name: str, qualifier: str | None = None) -> str:
        arn = f"arn:aws:lambda:{self.region}:{self.account}:function:{name}"
        return f"{arn}:{qualifier}" if qualifier else arn

    def _resolve(self, request: http11.Request, raw: str) -> Invocable:
        return self._resolve_qualified(request, raw)[0]

    def _resolve_qualified(self, request: http11.Request, raw: str) -> tuple[Invocable, str | None]:
        """name, name:qualifier, account:function:name[:q] or the full ARN (spec 3.2); with
        the qualifier it was named by, if any."""
        parts = raw.split(":")
        qualifier = None
        if "?" in request.target:
            qualifier = parse_qs(urlsplit(request.target).query).get("Qualifier", [None])[0]
        if raw.startswith("arn:") and len(parts) >= 7 and parts[5] == "function":
            name, rest = parts[6], parts[7:]
        elif len(parts) >= 3 and parts[1] == "function":
            name, rest = parts[2], parts[3:]
        else:
            name, rest = parts[0], parts[1:]
        if rest:
            qualifier = qualifier or rest[0]
        function = self.functions.get(name)
        if function is None or (qualifier not in (None, "$LATEST")):
            raise ServiceError(
                404,
                "ResourceNotFoundException",
                f"Function not found: {self._arn(name, qualifier)}",
            )
        return function, qualifier

    # ---- Invoke ----

    def _invoke(self, request: http11.Request, raw_name: str) -> Reply:
        function, qualifier = self._resolve_qualified(request, raw_name)
        headers = request.headers
        itype = headers.get("x-amz-invocation-type", "RequestResponse")
        if itype not in INVOCATION_TYPES:  # narrows it to an InvocationType
            raise enum_error(itype, "invocationType", INVOCATION_TYPES)
        log_type = headers.get("x-amz-log-type", "None")
        if log_type not in LOG_TYPES:
            raise enum_error(log_type, "logType", LOG_TYPES)
        payload = validate_payload(request.body, itype, request.body_size)
        context = decode_client_context(headers.get("x-amz-client-context"))
        req = InvokeRequest(
            payload=payload,
            invocation_type=itype,
            source="invoke-api",
            client_context=context if itype == "RequestResponse" else None,
            trace_id=headers.get("x-amzn-trace-id"),
            tenant_id=headers.get("x-amz-tenant-id"),
            qualifier=qualifier,
        )
        if itype == "DryRun":
            return http11.Response(204, b"", {"X-Amzn-RequestId": str(uuid.uuid4())})
        if itype == "Event":  # queued (bounded: 429 past it), run when the function has room
            rid = self._event_queue(function).submit(req)
            self._accepted(function, rid, req)
            return http11.Response(202, b"", {"X-Amzn-RequestId": rid})
        handle = function.start_invoke(req)
        reply = http11.Later()
        if log_type == "Tail":
            handle.record.add_done_callback(lambda t: _settle(reply, t, _tailed))
        else:
            handle.when_answered(lambda f: _settle(reply, f, _answered))
        return reply

    def _invoke_async(self, request: http11.Request, raw_name: str) -> Reply:
        """The deprecated InvokeAsync: 202 and {"Status": 202}."""
        function = self._resolve(request, raw_name)
        payload = validate_payload(request.body, "Event", request.body_size)
        req = InvokeRequest(payload, "Event", source="invoke-api")
        self._accepted(function, self._event_queue(function).submit(req), req)
        return json_response({"Status": 202}, status=202)

    def _accepted(self, function: Invocable, rid: str, req: InvokeRequest) -> None:
        """Said before the 202 goes out: history journals what it accepted."""
        if self.bus is not None:
            self.bus.emit(
                InvocationAccepted(function.name, rid, req, time.time(), function.cfg.memory_mb)
            )

    def _event_queue(self, function: Invocable) -> EventQueue:
        queue = self._events.get(function.name)
        if queue is None or queue.function is not function:
            name = function.name
            queue = EventQueue(function, lambda rid, exc: self._event_lost(name, rid, exc))
            self._events[name] = queue
        return queue

    def _event_lost(self, function: str, rid: str, exc: BaseException) -> None:
        """A queued Event invoke the function refused when its turn came (a reload left it
        with no build): said in the log, since its caller had its 202 long ago."""
        if self.bus is None:
            return
        why = exc.message if isinstance(exc, ServiceError) else failure_text(exc)
        line = f"[workbench] the queued Event invoke {rid} did not run: {why}"
        self.bus.emit(LogLine(function, line, "workbench", rid, time.time()))

    # ---- discovery ----

    def _list(self, request: http11.Request) -> Reply:
        return json_response(
            {"Functions": [self._configuration(f) for f in self.functions.values()]}
        )

    def _get(self, request: http11.Request, raw_name: str) -> Reply:
        function = self._resolve(request, raw_name)
        return json_response(
            {
                "Configuration": self._configuration(function),
                "Code": {"RepositoryType": "Local", "Location": function.cfg.code_dir.as_uri()},
            }
        )

    def _get_configuration(self, request: http11.Request, raw_name: str) -> Reply:
        return json_response(self._configuration(self._resolve(request, raw_name)))

    def _configuration(self, function: Invocable) -> dict[str, object]:
        cfg = function.cfg
        modified = time.strftime(
            "%Y-%m-%dT%H:%M:%S.000+0000", time.gmtime(cfg.code_dir.stat().st_mtime)
        )
        return {
            "FunctionName": cfg.name,
            "FunctionArn": self._arn(cfg.name),
            "Runtime": cfg.runtime,
            "Role": f"arn:aws:iam::{self.account}:role/{cfg.name}-role",
            "Handler": cfg.handler,
            "CodeSize": _code_size(cfg.code_dir),
            "Description": f"local function in {cfg.code_dir}",
            "Timeout": math.ceil(cfg.timeout_s),
            "MemorySize": cfg.memory_mb,
            "LastModified": modified,
            "CodeSha256": _code_digest(cfg.code_dir),
            "Version": "$LATEST",
            "Environment": {"Variables": dict(cfg.env)},
            "TracingConfig": {"Mode": "PassThrough"},
            "PackageType": "Zip",
            "Architectures": [cfg.architecture],
            "State": "Active",
            "LastUpdateStatus": "Successful",
            "EphemeralStorage": {"Size": 512},
            "LoggingConfig": {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{cfg.name}"},
        }


SKIP_DIRS = {".git", "node_modules", "__pycache__", ".workbench", ".venv", "target"}


def _code_files(folder: os.PathLike[str]) -> list[tuple[str, os.stat_result]]:
    out = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in sorted(files):
            path = os.path.join(root, name)
            try:
                out.append((os.path.relpath(path, folder), os.stat(path)))
            except OSError:
                continue
            if len(out) >= 5000:
                return out
    return out


def _code_size(folder: os.PathLike[str]) -> int:
    return sum(st.st_size for _, st in _code_files(folder))


def _code_digest(folder: os.PathLike[str]) -> str:
    """A fingerprint of the code (names, sizes, times): cheap, and changes when the code does."""
    h = hashlib.sha256()
    for rel, st in _code_files(folder):
        h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return base64.b64encode(h.digest()).decode()


def _result_response(result: InvokeResult, log: str | None = None) -> http11.Response:
    headers = {
        "X-Amzn-RequestId": result.request_id,
        "X-Amz-Executed-Version": "$LATEST",
        "Content-Type": result.content_type or "application/json",
    }
    if result.function_error:
        headers["X-Amz-Function-Error"] = "Unhandled"
    if log is not None:
        headers["X-Amz-Log-Result"] = log
    return http11.Response(200, result.payload, headers)


def _answered(fut: asyncio.Future[InvokeResult]) -> http11.Response:
    return _result_response(fut.result())


def _tailed(task: asyncio.Future[InvocationRecord]) -> http11.Response:
    record = task.result()
    return _result_response(record.result, log_result_header(record))


def _settle(
    reply: http11.Later, source: asyncio.Future[Any], render: Callable[..., http11.Response]
) -> None:
    """Turn the invocation's outcome into the HTTP answer; a failure inside workbench is a
    ServiceException (500), which SDKs do retry, as they would with the service."""
    if reply.done:
        return
    if source.cancelled() or source.exception() is not None:
        reply.send(
            error_response(
                ServiceError(500, "ServiceException", "The invocation did not complete.")
            )
        )
        return
    reply.send(render(source))
