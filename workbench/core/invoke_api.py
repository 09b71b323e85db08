"""The Lambda Invoke API (2015-03-31) that boto3 and the AWS CLI speak, over local functions.

Function failures are HTTP 200 with X-Amz-Function-Error, never 5xx: SDKs retry 5xx and would run
the function again. Service errors carry X-Amzn-ErrorType and a {"Type","Message"} body (spec 3.2).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web

from workbench.core import protocol as P
from workbench.core.function import Function, log_result_header
from workbench.core.record import InvokeRequest
from workbench.core.runtime_api import read_limited
from workbench.core.servers import start_site

INVOCATION_TYPES = ("RequestResponse", "Event", "DryRun")
LOG_TYPES = ("None", "Tail")
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]", "::1")


@dataclass(frozen=True, slots=True)
class ServiceError(Exception):
    status: int
    code: str
    message: str

    def response(self, request_id: str | None = None) -> web.Response:
        headers = {"X-Amzn-ErrorType": self.code, "X-Amzn-RequestId": request_id or str(uuid.uuid4())}
        body = json.dumps({"Type": "User", "Message": self.message}).encode()
        return web.Response(status=self.status, body=body, headers=headers,
                            content_type="application/json")


def validate_payload(data: bytes, invocation_type: str = "RequestResponse") -> bytes:
    """The checks the service makes before anything runs; returns the payload to deliver."""
    limit = P.ASYNC_PAYLOAD_LIMIT if invocation_type == "Event" else P.SYNC_PAYLOAD_LIMIT
    if len(data) > limit:
        raise ServiceError(413, "RequestEntityTooLargeException",
                           f"{len(data)} byte payload is too large for the {invocation_type} "
                           f"invocation type (limit {limit} bytes)")
    if not data.strip():
        return b"{}"
    try:
        json.loads(data)
    except UnicodeDecodeError:
        raise ServiceError(400, "InvalidRequestContentException",
                           "Could not parse request body into json: Could not parse payload into "
                           "json: the payload is not valid UTF-8") from None
    except ValueError as exc:
        raise ServiceError(400, "InvalidRequestContentException",
                           "Could not parse request body into json: Could not parse payload into "
                           f"json: {exc}") from None
    return data


def decode_client_context(value: str | None) -> str | None:
    if not value:
        return None
    try:
        text = base64.b64decode(value, validate=True).decode()
        if not isinstance(json.loads(text), dict):
            raise ValueError
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ServiceError(400, "InvalidRequestContentException",
                           "Client context must be a valid Base64-encoded JSON object.") from None
    if len(value) > P.CLIENT_CONTEXT_LIMIT:
        raise ServiceError(400, "InvalidRequestContentException",
                           f"Client context must be {P.CLIENT_CONTEXT_LIMIT} bytes or less.")
    return text


def _validation(value: str, field: str, allowed: tuple[str, ...]) -> ServiceError:
    return ServiceError(400, "ValidationException",
                        f"1 validation error detected: Value '{value}' at '{field}' failed to "
                        f"satisfy constraint: Member must satisfy enum value set: "
                        f"[{', '.join(allowed)}]")


class InvokeAPI:
    def __init__(self, functions: dict[str, Function], host: str = "127.0.0.1", port: int = 9001,
                 region: str = P.DEFAULT_REGION, account: str = P.DEFAULT_ACCOUNT) -> None:
        self.functions = functions
        self.host = host
        self.port = port
        self.region = region
        self.account = account
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> int:
        app = web.Application(middlewares=[self._guard], client_max_size=P.SYNC_PAYLOAD_LIMIT * 2)
        fn = "/2015-03-31/functions/{name}"
        app.router.add_post(fn + "/invocations", self._invoke)
        app.router.add_post("/2014-11-13/functions/{name}/invoke-async{slash:/?}", self._invoke_async)
        app.router.add_get("/2015-03-31/functions{slash:/?}", self._list)
        app.router.add_get(fn, self._get)
        app.router.add_get(fn + "/configuration", self._get_configuration)
        self._runner, self.port = await start_site(app, self.host, self.port,
                                                   shutdown_timeout=1.0)
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    # ---- guard: nothing from a web page ----

    @web.middleware
    async def _guard(self, request: web.Request,
                     handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                     ) -> web.StreamResponse:
        """A web page can reach a loopback port; refuse anything a browser marks as foreign.
        DNS rebinding shows up as a foreign Host header, a cross-site fetch as an Origin."""
        origin = request.headers.get("Origin")
        if origin is not None and not self._is_own_origin(origin):
            return ServiceError(403, "AccessDeniedException",
                                f"Requests from web pages are refused (Origin: {origin}).").response()
        host = (request.headers.get("Host") or "").rsplit(":", 1)[0]
        if self.host in LOOPBACK_NAMES and host not in LOOPBACK_NAMES:
            return ServiceError(403, "AccessDeniedException",
                                f"Requests for host {host!r} are refused; use 127.0.0.1.").response()
        return await handler(request)

    def _is_own_origin(self, origin: str) -> bool:
        parts = urlsplit(origin)
        return parts.hostname in LOOPBACK_NAMES and parts.port == self.port

    # ---- name resolution ----

    def _arn(self, name: str, qualifier: str | None = None) -> str:
        arn = f"arn:aws:lambda:{self.region}:{self.account}:function:{name}"
        return f"{arn}:{qualifier}" if qualifier else arn

    def _resolve(self, request: web.Request) -> Function:
        """name, name:qualifier, account:function:name[:q] or the full ARN (spec 3.2)."""
        raw = request.match_info["name"]
        parts = raw.split(":")
        qualifier = request.query.get("Qualifier")
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
            raise ServiceError(404, "ResourceNotFoundException",
                               f"Function not found: {self._arn(name, qualifier)}")
        return function

    # ---- Invoke ----

    async def _invoke(self, request: web.Request) -> web.StreamResponse:
        rid = None
        try:
            function = self._resolve(request)
            itype = request.headers.get("X-Amz-Invocation-Type", "RequestResponse")
            if itype not in INVOCATION_TYPES:
                raise _validation(itype, "invocationType", INVOCATION_TYPES)
            log_type = request.headers.get("X-Amz-Log-Type", "None")
            if log_type not in LOG_TYPES:
                raise _validation(log_type, "logType", LOG_TYPES)
            data, size = await read_limited(request, P.SYNC_PAYLOAD_LIMIT)
            payload = validate_payload(data if size == len(data) else b"\0" * size, itype)
            context = decode_client_context(request.headers.get("X-Amz-Client-Context"))
        except ServiceError as err:
            return err.response(rid)
        req = InvokeRequest(
            payload=payload, invocation_type=itype, source="invoke-api",
            client_context=context if itype == "RequestResponse" else None,
            trace_id=request.headers.get("X-Amzn-Trace-Id"),
            tenant_id=request.headers.get("X-Amz-Tenant-Id"))
        if itype == "DryRun":
            return web.Response(status=204, headers={"X-Amzn-RequestId": str(uuid.uuid4())})
        handle = function.start_invoke(req)
        headers = {"X-Amzn-RequestId": handle.request_id}
        if itype == "Event":
            return web.Response(status=202, headers=headers)
        if log_type == "Tail":
            record = await handle.record
            result = record.result
            headers["X-Amz-Log-Result"] = log_result_header(record)
        else:
            result = await handle.answer
        headers["X-Amz-Executed-Version"] = "$LATEST"
        if result.function_error:
            headers["X-Amz-Function-Error"] = "Unhandled"
        headers["Content-Type"] = result.content_type or "application/json"
        return web.Response(status=200, body=result.payload, headers=headers)

    async def _invoke_async(self, request: web.Request) -> web.StreamResponse:
        """The deprecated InvokeAsync: 202 and {"Status": 202}."""
        try:
            function = self._resolve(request)
            data, size = await read_limited(request, P.ASYNC_PAYLOAD_LIMIT)
            payload = validate_payload(data if size == len(data) else b"\0" * size, "Event")
        except ServiceError as err:
            return err.response()
        function.start_invoke(InvokeRequest(payload, "Event", source="invoke-api"))
        return web.json_response({"Status": 202}, status=202)

    # ---- discovery ----

    async def _list(self, request: web.Request) -> web.Response:
        configs = [self._configuration(f) for f in self.functions.values()]
        return web.json_response({"Functions": configs})

    async def _get(self, request: web.Request) -> web.Response:
        try:
            function = self._resolve(request)
        except ServiceError as err:
            return err.response()
        return web.json_response({
            "Configuration": self._configuration(function),
            "Code": {"RepositoryType": "Local", "Location": function.cfg.code_dir.as_uri()},
        })

    async def _get_configuration(self, request: web.Request) -> web.Response:
        try:
            return web.json_response(self._configuration(self._resolve(request)))
        except ServiceError as err:
            return err.response()

    def _configuration(self, function: Function) -> dict[str, object]:
        cfg = function.cfg
        modified = time.strftime("%Y-%m-%dT%H:%M:%S.000+0000",
                                 time.gmtime(cfg.code_dir.stat().st_mtime))
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
