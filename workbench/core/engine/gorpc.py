"""go1.x environments: the function is a Go binary serving net/rpc on _LAMBDA_SERVER_PORT, and
workbench calls it (Function.Ping, then Function.Invoke per event), as the retired go1.x runtime
did, instead of waiting for the runtime to call the Runtime API.

The environment is the same Environment as every other kind (process, pipes, cgroup, memory,
/tmp, the platform's log lines); only its link to the runtime differs. RpcLink stands in for
the Runtime API towards the invocation (invocation.Run): it takes the event from dispatch(),
makes the call, and tells the run `answered` and then `next_called`, just as a runtime's
/response and next /next would. A panic (ShouldExit) ends the process after its answer, so the
next invoke starts afresh.

AttachedEnvironment is the same link to a process workbench did not start (`--rpc HOST:PORT`,
a function under a debugger): nothing is spawned, killed or restarted there.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from workbench.core import protocol as P
from workbench.core.bus import Bus, EnvironmentReady, EnvironmentStarting, EnvironmentStopped
from workbench.core.config.function import FunctionConfig
from workbench.core.engine import procs
from workbench.core.engine.environment import Environment, InitOutcome, RuntimeLink
from workbench.core.engine.runtime_api import InitError, PendingInvoke
from workbench.core.record import InvokeResult
from workbench.core.runtimes import Launch
from workbench.core.runtimes.gorpc.client import (
    InvokeArgs,
    RpcClient,
    RpcClosed,
    RpcError,
    RpcFault,
)
from workbench.core.vocab import Phase, ShutdownReason, Stream

if TYPE_CHECKING:
    from workbench.core.runtimes.gorpc.client import InvokeReply

PORT_VAR = "_LAMBDA_SERVER_PORT"
# what aws-lambda-go logs, then exits 1, when built with -tags lambda.norpc and given only
# _LAMBDA_SERVER_PORT: the list names only the Runtime API's variable
NORPC_TEXT = "expected AWS Lambda environment variables [AWS_LAMBDA_RUNTIME_API] are not defined"
NORPC_HINT = (
    "this binary has no go1.x (RPC) mode: it was built with `-tags lambda.norpc` and only "
    "speaks the Runtime API. Run it as provided.al2023 (--runtime provided.al2023, or "
    'runtime = "provided.al2023" in workbench.toml), or build it without -tags lambda.norpc'
)
CONNECT_RETRY_S = (0.002, 0.05)  # first and longest wait between attempts to connect
ATTACH_CONNECT_S = 3.0


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the binary binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def environment_for(cfg: FunctionConfig, launch: Launch, bus: Bus) -> Environment:
    """The kind of environment a function's launch calls for."""
    if launch.kind == "go-rpc":
        if launch.attach is not None:
            return AttachedEnvironment(cfg, launch, bus)
        return RpcEnvironment(cfg, launch, bus)
    return Environment(cfg, launch, bus)


class RpcLink:
    """The runtime end of a go1.x environment: one net/rpc connection, one call at a time."""

    def __init__(self, env: RpcEnvironment, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self.env = env
        self.host, self.port = host, port
        self.first_next: asyncio.Future[float] = loop.create_future()
        self.init_failed: asyncio.Future[InitError] = loop.create_future()
        self.client: RpcClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.stopped = False

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def start(self) -> int:
        if self.port == 0:
            self.port = free_port(self.host)
        return self.port

    async def stop(self) -> None:
        self.stopped = True
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2)
        if self.client is not None:
            self.client.close()
            self.client = None

    def spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- init: connect, then Ping ----

    async def connect(self, gone: asyncio.Future[int | None] | None, limit_s: float) -> None:
        """Retry connecting until the binary listens (or has exited, or time is up), then
        Ping it; ready for the first event after that."""
        wait, give_up = CONNECT_RETRY_S[0], time.monotonic() + limit_s
        while True:
            try:
                client = await RpcClient.connect(self.host, self.port)
                break
            except OSError as exc:
                if (gone is not None and gone.done()) or time.monotonic() + wait > give_up:
                    if gone is None:  # attached: nobody else will say why
                        self._refused(exc)
                    return
                await asyncio.sleep(wait)
                wait = min(wait * 2, CONNECT_RETRY_S[1])
        try:
            await client.ping()
        except RpcFault as exc:
            client.close()
            doc = P.platform_error(
                "Runtime.InvalidEntrypoint",
                f"{self.address} serves net/rpc but not Function.Ping ({exc}): is it a Go "
                "function started with aws-lambda-go's lambda.Start?",
                None,
            )
            body = P.json_body(doc).rstrip(b"\n")
            self._fail_init(InitError(body, "application/json", "Runtime.InvalidEntrypoint"))
            return
        except RpcClosed:
            client.close()  # gone during the Ping: the exit says why (or the timeout does)
            return
        self.client = client
        if not self.first_next.done():
            self.first_next.set_result(time.monotonic())

    def _refused(self, exc: OSError) -> None:
        detail = (
            f"nothing listens on {self.address} ({exc.strerror or exc}). workbench does not "
            f"start an attached function: start it yourself with {PORT_VAR}={self.port} "
            f"(e.g. `{PORT_VAR}={self.port} go run .` or `{PORT_VAR}={self.port} dlv debug`), "
            "then invoke again"
        )
        body = P.json_body(P.platform_error("Runtime.Unavailable", detail, None)).rstrip(b"\n")
        self._fail_init(InitError(body, "application/json", "Runtime.Unavailable"))

    def _fail_init(self, error: InitError) -> None:
        if not self.init_failed.done():
            self.init_failed.set_result(error)

    # ---- one event ----

    def dispatch(self, inv: PendingInvoke) -> None:
        self.spawn(self._invoke(inv), f"rpc-invoke-{inv.request_id}")

    async def _invoke(self, inv: PendingInvoke) -> None:
        listener = inv.listener
        assert listener is not None
        try:
            client = self.client
            if client is None or client.closed:  # the last call broke the stream: a new one
                client = self.client = await RpcClient.connect(self.host, self.port)
            reply = await client.invoke(_args(inv))
        except RpcClosed as exc:
            if exc.size is None:
                self.env.lost(f"the connection to the function broke mid-call: {exc}")
                return
            too_big = P.json_body(P.response_too_large(exc.size)).rstrip(b"\n")
            result = InvokeResult(inv.request_id, too_big, function_error=True)
        except RpcFault as exc:  # net/rpc's own error: a wrong binary, or a client bug
            doc = P.platform_error("Runtime.InvalidResponse", f"net/rpc: {exc}", inv.request_id)
            result = InvokeResult(
                inv.request_id, P.json_body(doc).rstrip(b"\n"), function_error=True
            )
        except (OSError, RpcError) as exc:
            self.env.lost(f"cannot reach the function at {self.address}: {exc}")
            return
        else:
            result = _result(inv.request_id, reply)
            if reply.error is not None and reply.error.should_exit:
                inv.result = result
                listener.answered(result)
                self.env.discard()  # it panicked: Lambda throws the process away
                return
        inv.result = result
        listener.answered(result)
        listener.next_called(time.monotonic())


def _args(inv: PendingInvoke) -> InvokeArgs:
    h = inv.headers
    deadline_ms = int(h["Lambda-Runtime-Deadline-Ms"])
    identity: dict[str, object] = {}
    with contextlib.suppress(ValueError):
        raw = json.loads(h.get("Lambda-Runtime-Cognito-Identity", "{}"))
        identity = raw if isinstance(raw, dict) else {}
    return InvokeArgs(
        payload=inv.payload,
        request_id=inv.request_id,
        deadline_s=deadline_ms // 1000,
        deadline_ns=(deadline_ms % 1000) * 1_000_000,
        invoked_function_arn=h["Lambda-Runtime-Invoked-Function-Arn"],
        trace_id=h.get("Lambda-Runtime-Trace-Id", ""),
        cognito_identity_id=str(identity.get("cognitoIdentityId", "")),
        cognito_identity_pool_id=str(identity.get("cognitoIdentityPoolId", "")),
        client_context=h.get("Lambda-Runtime-Client-Context", "").encode(),
    )


def _result(rid: str, reply: InvokeReply) -> InvokeResult:
    if reply.error is not None:
        body = json.dumps(reply.error.document(), separators=(",", ":")).encode()
        return InvokeResult(rid, body, function_error=True)
    if len(reply.payload) > P.RESPONSE_LIMIT:
        too_big = P.json_body(P.response_too_large(len(reply.payload))).rstrip(b"\n")
        return InvokeResult(rid, too_big, function_error=True)
    return InvokeResult(rid, reply.payload)


class RpcEnvironment(Environment):
    """A go1.x environment: workbench starts the binary with _LAMBDA_SERVER_PORT and calls it."""

    def __init__(self, cfg: FunctionConfig, launch: Launch, bus: Bus) -> None:
        super().__init__(cfg, launch, bus)
        self.norpc = False  # the binary said it has no RPC mode

    @property
    def link(self) -> RpcLink:
        assert isinstance(self.api, RpcLink)
        return self.api

    def _link(self) -> RuntimeLink:
        return RpcLink(self, "127.0.0.1", 0)

    def _runtime_env(self, env: dict[str, str]) -> dict[str, str]:
        # no Runtime API here: a binary that only knows it then says so, and exits
        env.pop("AWS_LAMBDA_RUNTIME_API", None)
        env[PORT_VAR] = str(self.link.port)
        return env

    def _spawned(self) -> None:
        self.link.spawn(self.link.connect(self.exited, P.INIT_TIMEOUT_S * 10), "rpc-connect")

    def _exit_detail(self, returncode: int | None) -> str:
        detail = super()._exit_detail(returncode)
        return f"{detail}; {NORPC_HINT}" if self.norpc else detail

    def _marker(self) -> bytes:
        return f"{PORT_VAR}={self.link.port}".encode()

    def line(self, text: str, stream: Stream) -> None:
        if stream == "stderr" and not self.norpc and text.endswith(NORPC_TEXT):
            self.norpc = True
            super().line(text, stream)
            super().line(f"workbench: {NORPC_HINT}", "workbench")
            return
        super().line(text, stream)

    # ---- what the link tells it ----

    def lost(self, why: str) -> None:
        """The connection broke mid-call. A process that exits soon is a crash (Run hears of
        the exit); one that does not is of no more use, and is killed."""
        self.link.spawn(self._end_if_alive(why), "rpc-lost")

    async def _end_if_alive(self, why: str) -> None:
        await asyncio.wait({self.exited}, timeout=1.0)
        if not self.exited.done():
            self.line(f"workbench: {why}; the runtime is stopped", "workbench")
            self.discard()

    def discard(self) -> None:
        """End the process now; the invocation ends as its exit is seen."""
        if self.proc is not None and self.proc.returncode is None:
            procs.kill_all(self.proc.pid, self._marker())


class AttachedEnvironment(RpcEnvironment):
    """go1.x against a process the user runs at --rpc HOST:PORT: no process, no kill."""

    async def init(
        self, phase: Phase, limit_s: float, request_id: str | None = None
    ) -> InitOutcome:
        assert self.launch.attach is not None
        host, port = self.launch.attach
        self.api = link = RpcLink(self, host, port)
        self.bus.emit(EnvironmentStarting(self.cfg.name, phase, self.id))
        self.platform(
            P.init_start_line(self.launch.runtime_version, self.launch.runtime_arn(self.cfg.region))
        )
        t0 = time.monotonic()
        await link.connect(None, min(limit_s, ATTACH_CONNECT_S))
        ms = (time.monotonic() - t0) * 1000
        if link.first_next.done():
            self.ready = True
            self.line(
                f"workbench: attached to the go1.x function at {link.address} (it is yours: "
                "workbench neither restarts nor stops it)",
                "workbench",
            )
            self.bus.emit(EnvironmentReady(self.cfg.name, ms))
            return InitOutcome(True, ms)
        if link.init_failed.done():
            err = link.init_failed.result()
            self.line(f"workbench: {json.loads(err.body)['errorMessage']}", "workbench")
            return self._init_failed(phase, t0, err.error_type, None, err.body, ms)
        doc = P.platform_error("Runtime.Unavailable", f"{link.address} did not answer", None)
        return self._init_failed(phase, t0, "Runtime.Unavailable", doc, None, ms)

    def _marker(self) -> bytes:
        return b""

    def lost(self, why: str) -> None:
        self.line(f"workbench: {why}", "workbench")
        self.discard()

    def discard(self) -> None:
        """Not ours to end: drop the connection, and connect afresh for the next invoke."""
        if not self.exited.done():
            self.exited.set_result(None)

    async def stop(self, reason: ShutdownReason = "spindown") -> None:
        if self.stopped:
            return
        if reason == "timeout" and self.api is not None:
            self.line(
                f"workbench: the attached function at {self.api.address} was not stopped (it "
                "is not workbench's); its handler may still be running",
                "workbench",
            )
        self.stopped = True
        self.ready = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.api is not None:
            await self.api.stop()
        self.bus.emit(EnvironmentStopped(self.cfg.name, reason))
