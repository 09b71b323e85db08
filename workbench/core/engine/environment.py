"""One execution environment: a Runtime API listener and the runtime's process tree.

An Environment lives from INIT to reset or shutdown and is never reused after: a fresh one is
made for the next cold start, as the service does.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from workbench.core import protocol as P
from workbench.core.bus import (
    Bus,
    EnvironmentInitFailed,
    EnvironmentReady,
    EnvironmentStarting,
    EnvironmentStopped,
    LogLine,
    WorkerFailed,
    failure_text,
)
from workbench.core.config.function import DEFAULT_LOG_MB, FunctionConfig
from workbench.core.engine import containment, http11, procs
from workbench.core.engine.runtime_api import InitError, PendingInvoke, RuntimeAPI
from workbench.core.runtimes import Launch
from workbench.core.vocab import InitStatus, Phase, ShutdownReason, Stream

# Host values that carry over: the local toolchain lives on the host's PATH, and the host's
# credentials stand in for the execution role.
PASSTHROUGH = (
    "PATH",
    "LD_LIBRARY_PATH",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
)
LOG_LINES_KEPT = 20_000
MB = 1024 * 1024
TMP_CHECK_EVERY_S = 1.0
DENSE_AGAIN_S = 0.25  # the sampling interval grows back to its sparse 0.25 s in about this long


def reserved_keys_in(env: dict[str, str]) -> list[str]:
    return sorted(k for k in env if k in P.RESERVED_KEYS)


def log_stream_name() -> str:
    day = datetime.now(UTC).strftime("%Y/%m/%d")
    return f"{day}/[$LATEST]{secrets.token_hex(16)}"


def lambda_env(
    cfg: FunctionConfig, launch: Launch, api_address: str, stream: str
) -> dict[str, str]:
    env = {k: os.environ[k] for k in PASSTHROUGH if k in os.environ}
    env.update(
        {k: v for k, v in cfg.env.items() if not k.startswith("_") and k not in P.RESERVED_KEYS}
    )
    env.setdefault("TZ", ":UTC")
    env.setdefault("LANG", "en_US.UTF-8")
    env.setdefault("AWS_XRAY_CONTEXT_MISSING", "LOG_ERROR")
    env.setdefault("AWS_XRAY_DAEMON_ADDRESS", "169.254.100.1:2000")
    env.update(
        {
            "AWS_LAMBDA_RUNTIME_API": api_address,
            "_HANDLER": cfg.handler,
            "LAMBDA_TASK_ROOT": str(cfg.code_dir),
            "LAMBDA_RUNTIME_DIR": str(launch.runtime_dir),
            "AWS_LAMBDA_FUNCTION_NAME": cfg.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(cfg.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{cfg.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": stream,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_REGION": cfg.region,
            "AWS_DEFAULT_REGION": cfg.region,
            "_AWS_XRAY_DAEMON_ADDRESS": "169.254.100.1",
            "_AWS_XRAY_DAEMON_PORT": "2000",
        }
    )
    if launch.execution_env:
        env["AWS_EXECUTION_ENV"] = launch.execution_env
    _add_layers(env, cfg)
    deps = cfg.dependencies_dir()
    if deps is not None:  # beside the code, as `sam build` puts them: before any layer
        _extend(env, "PYTHONPATH", [str(deps.resolve())], first=True)
    # the runtime's own packages (boto3...) come after the layers, as /var/runtime does
    _extend(env, "PYTHONPATH", list(launch.python_path), first=False)
    return env


def _add_layers(env: dict[str, str], cfg: FunctionConfig) -> None:
    """Lambda unpacks layers into /opt, a later layer over an earlier one, and its runtimes
    look there after the function's own code. Locally each layer stays in its folder, so the
    same lookups get each folder's equivalent, the last layer first."""
    if not cfg.layers:
        return
    layers = list(reversed(cfg.layers))
    version = cfg.runtime.removeprefix("python")
    python = [
        str(p)
        for layer in layers
        for p in (layer / "python" / "lib" / f"python{version}" / "site-packages", layer / "python")
    ]
    node_major = cfg.runtime.removeprefix("nodejs").removesuffix(".x")
    node = [
        str(p)
        for layer in layers
        for p in (
            layer / "nodejs" / f"node{node_major}" / "node_modules",
            layer / "nodejs" / "node_modules",
        )
    ]
    bins = [str(layer / "bin") for layer in layers]
    libs = [str(layer / "lib") for layer in layers]
    _extend(env, "PYTHONPATH", python, first=False)
    _extend(env, "NODE_PATH", node, first=False)
    _extend(env, "PATH", bins, first=False)  # /opt/bin comes last on Lambda's PATH too
    _extend(env, "LD_LIBRARY_PATH", libs, first=False)


def _extend(env: dict[str, str], key: str, paths: list[str], first: bool) -> None:
    current = [p for p in env.get(key, "").split(os.pathsep) if p]
    env[key] = os.pathsep.join(paths + current if first else current + paths)


def _size_mb(folder: Path, most: int = 10_000) -> int:
    """What a folder's files take, in MB (the first `most` entries: a check, not an audit)."""
    total, seen = 0, 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            seen += 1
            if seen > most:
                return total // (1024 * 1024)
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total // (1024 * 1024)


def utf8_size(text: str) -> int:
    """Bytes of `text` in UTF-8, without encoding it when it is ASCII (most log lines)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "replace"))


def _prefix(text: str, size: int) -> str:
    """The longest start of `text` that is at most `size` bytes in UTF-8."""
    if text.isascii():
        return text[:size]
    return text.encode("utf-8", "replace")[:size].decode("utf-8", "ignore")


def _suffix(text: str, size: int) -> str:
    """The longest end of `text` that is at most `size` bytes in UTF-8."""
    if size <= 0:
        return ""
    if text.isascii():
        return text[-size:]
    return text.encode("utf-8", "replace")[-size:].decode("utf-8", "ignore")


class LogCollector:
    """The lines of one invocation as history keeps them: at most `limit` bytes (a line
    counts its newline) and LOG_LINES_KEPT lines. A log past that keeps its beginning (INIT,
    START, the first output) and its end (the last output, END, REPORT), half the room each;
    what fell between is said by one line in its place, and the record is marked truncated.

    While lines arrive, each half holds at most its share plus one line (whole lines are
    kept, never copied); the line that straddles a half's edge is cut once, in finish()."""

    def __init__(self, limit: int = DEFAULT_LOG_MB * MB, max_lines: int = LOG_LINES_KEPT) -> None:
        self.limit = limit
        self._head_room = limit // 2
        self._head_lines = max(max_lines // 2, 1)
        self._tail_room = limit - self._head_room
        self._tail_lines = max(max_lines - self._head_lines, 1)
        self.head: list[str] = []
        self._head_bytes = 0
        self._head_open = True
        self.tail: collections.deque[str] = collections.deque()
        self._tail_sizes: collections.deque[int] = collections.deque()
        self._tail_bytes = 0
        self.dropped = 0  # whole lines let go from between the halves
        self.total = 0  # lines added
        self.total_bytes = 0
        self._said = False

    def add(self, text: str) -> bool:
        """Keep `text` for now; True once, on the line that takes the log past its limit (the
        moment to say so live)."""
        size = utf8_size(text) + 1
        self.total += 1
        self.total_bytes += size
        if self._head_open:
            self.head.append(text)
            self._head_bytes += size
            if self._head_bytes >= self._head_room or len(self.head) >= self._head_lines:
                self._head_open = False
        else:
            tail, sizes = self.tail, self._tail_sizes
            tail.append(text)
            sizes.append(size)
            self._tail_bytes += size
            # let the oldest go while what stays still fills the room
            while len(tail) > 1 and (
                self._tail_bytes - sizes[0] >= self._tail_room or len(tail) > self._tail_lines
            ):
                tail.popleft()
                self._tail_bytes -= sizes.popleft()
                self.dropped += 1
        if self._said or (self.total_bytes <= self.limit and not self.dropped):
            return False
        self._said = True
        return True

    def _kept(self) -> tuple[int, int]:
        """Bytes kept of the tail and of the head, each within its share of the limit (the
        head may use what the tail leaves unused)."""
        tail = min(self._tail_bytes, self._tail_room)
        return tail, min(self._head_bytes, self.limit - tail)

    @property
    def truncated(self) -> bool:
        tail, head = self._kept()
        return bool(self.dropped) or tail < self._tail_bytes or head < self._head_bytes

    def finish(self) -> tuple[list[str], bool]:
        """The lines to record, and whether any were cut."""
        if not self.truncated:
            return [*self.head, *self.tail], False
        tail_keep, head_keep = self._kept()
        head = list(self.head)
        over = self._head_bytes - head_keep
        if over > 0 and head:  # the line across the edge keeps its beginning
            head[-1] = _prefix(head[-1], utf8_size(head[-1]) - over)
        tail = list(self.tail)
        over = self._tail_bytes - tail_keep
        if over > 0 and tail:  # ... and across the other edge, its end
            tail[0] = _suffix(tail[0], utf8_size(tail[0]) - over)
        cut = self.total_bytes - head_keep - tail_keep
        return [*head, self.cut_line(cut), *tail], True

    def cut_line(self, cut: int) -> str:
        return (
            f"[workbench] log cut here: {cut:,} bytes of this invocation's log are not "
            f"kept; history keeps {_mb(self.limit)} of each invocation's log, its beginning "
            "and its end (log_max_mb in workbench.toml, --log-max-mb)"
        )


def collector_for(cfg: FunctionConfig) -> LogCollector:
    return LogCollector(cfg.log_max_mb * MB)


def _mb(size: int) -> str:
    if size >= MB:
        return f"{size / MB:g} MB"
    return f"{size / 1024:g} KB" if size >= 1024 else f"{size} bytes"


@dataclass(slots=True)
class InitOutcome:
    ok: bool
    init_ms: float
    status: InitStatus = "success"
    error_type: str | None = None
    error_body: bytes = b""


class RuntimeLink(Protocol):
    """How an environment talks to its runtime: the Runtime API (the runtime calls us), or
    net/rpc for go1.x (we call the runtime, engine/gorpc.py)."""

    first_next: asyncio.Future[float]  # the runtime is ready for its first event
    init_failed: asyncio.Future[InitError]

    @property
    def address(self) -> str: ...

    async def start(self) -> int: ...

    async def stop(self) -> None: ...

    def dispatch(self, inv: PendingInvoke) -> None: ...


_ENV_IDS = itertools.count(1)  # environments are numbered for the log: which printed a line


class Environment:
    def __init__(self, cfg: FunctionConfig, launch: Launch, bus: Bus) -> None:
        self.id = next(_ENV_IDS)
        self.cfg = cfg
        self.launch = launch
        self.bus = bus
        self.api: RuntimeLink | None = None
        self.proc: asyncio.subprocess.Process | None = None
        self.exited: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self.ready = False
        self.stopped = False
        self.request_id: str | None = None
        self.collector: LogCollector | None = None
        # the invocation running, if any: told when the runtime exits or its deadline passes
        self.on_exit: Callable[[], None] | None = None
        self.on_deadline: Callable[[], None] | None = None
        self.deadline_at = 0.0  # loop time
        self._timer: asyncio.TimerHandle | None = None
        self.exited.add_done_callback(self._exit_seen)
        self.peak_mb = 0
        self._others_kb = 0  # peak of the runtime's descendants, as sampled
        self._hwm: procs.HwmReader | None = None
        # its cgroups, where the machine lets workbench make them
        self._group: containment.Group | None = None
        self._oom: containment.OomWatch | None = None  # the group's OOM kills, read per invoke
        self.tmp: Path | None = None  # its /tmp (TMPDIR), made when it starts
        self._tmp_warned = False
        self._tmp_checked_at = -TMP_CHECK_EVERY_S  # the first invoke checks
        self._over_limit = False  # the sampler saw the tree past its memory size (no cgroup)
        self.sample_every = 0.005  # dense at first (init is short), then a few a second
        self._dense_at = 0.0  # when an invoke last made the sampling dense again
        self.stream = log_stream_name()
        self._pipes: list[procs.OutputPipe] = []
        self._exit_task: asyncio.Task[None] | None = None

    def watch(
        self, deadline_at: float, on_exit: Callable[[], None], on_deadline: Callable[[], None]
    ) -> None:
        """Tell the invocation now running when the runtime exits or `deadline_at` (loop
        time) passes, until unwatch(). One timer serves many invocations: back to back, each
        deadline is later than the last, so the timer set for an earlier one is kept and moved
        on when it fires, instead of a timer made and cancelled on every invoke."""
        self.on_exit, self.on_deadline, self.deadline_at = on_exit, on_deadline, deadline_at
        timer = self._timer
        if timer is None or timer.when() > deadline_at:
            if timer is not None:
                timer.cancel()
            self._timer = asyncio.get_running_loop().call_at(deadline_at, self._deadline_due)
        if self.exited.done():  # gone before it could be watched
            asyncio.get_running_loop().call_soon(self._exit_seen, None)

    def unwatch(self) -> None:
        self.on_exit = self.on_deadline = None

    def _exit_seen(self, _: object) -> None:
        if self.on_exit is not None:
            self.on_exit()

    def _deadline_due(self) -> None:
        self._timer = None
        if self.on_deadline is None:
            return
        loop = asyncio.get_running_loop()
        if self.deadline_at - loop.time() > 0.001:  # a later invocation's: wait for that
            self._timer = loop.call_at(self.deadline_at, self._deadline_due)
        else:
            self.on_deadline()

    def _route_failed(self, req: http11.Request, exc: Exception) -> None:
        worker = f"Runtime API ({req.method} {req.path})"
        self.bus.emit(WorkerFailed(self.cfg.name, worker, failure_text(exc), stopped=False))

    def _contained(self) -> Callable[[], None]:
        """What the runtime runs between fork and exec: it dies with the workbench, and it and
        all it starts are in the environment's own cgroup, when there is one."""
        limit = self.cfg.memory_mb if self.cfg.memory_limit else None
        self._group = group = containment.shared().new_group(f"env-{self.id}", limit)
        # die_with_parent uses ctypes. Imported here, in this process, it is a lookup in the
        # child; left to the child, every fork imported it anew between fork and exec, writing
        # to pages it then had to copy: ~10-20 ms more for each runtime to start.
        import ctypes  # noqa: F401

        def setup() -> None:
            procs.die_with_parent()
            if group is not None:
                containment.join(group)

        return setup

    def tmp_overfull(self) -> str | None:
        """A warning, the first time the environment's /tmp holds more than its ephemeral
        storage: in Lambda, writes past it fail with ENOSPC; here they only cost disk."""
        if self.tmp is None or self._tmp_warned:
            return None
        now = time.monotonic()  # a walk of /tmp is not for every warm invoke: once a second
        if now - self._tmp_checked_at < TMP_CHECK_EVERY_S:
            return None
        self._tmp_checked_at = now
        used = _size_mb(self.tmp)
        if used <= self.cfg.ephemeral_storage_mb:
            return None
        self._tmp_warned = True
        return (
            f"workbench: warning: /tmp holds {used} MB, more than the function's ephemeral "
            f"storage of {self.cfg.ephemeral_storage_mb} MB: in Lambda the writes past it fail "
            "(No space left on device); `ephemeral_storage` in workbench.toml sets the size"
        )

    # ---- output ----

    def line(self, text: str, stream: Stream) -> None:
        collector = self.collector
        over = collector is not None and collector.add(text)
        now = time.time()
        self.bus.emit(LogLine(self.cfg.name, text, stream, self.request_id, now, self.id))
        if over:  # said live once; the record says what was cut where it was cut
            assert collector is not None
            said = (
                f"[workbench] this invocation's log is past what history keeps of it "
                f"({_mb(collector.limit)}, {LOG_LINES_KEPT:,} lines): its record keeps the "
                "beginning and the end (log_max_mb in workbench.toml, --log-max-mb)"
            )
            self.bus.emit(LogLine(self.cfg.name, said, "workbench", self.request_id, now, self.id))

    def platform(self, text: str) -> None:
        self.drain()
        self.line(text, "platform")

    def drain(self, flush_partial: bool = False) -> None:
        for pipe in self._pipes:
            pipe.drain(flush_partial)

    def invoke_started(self, now: float) -> None:
        """Children an invoke starts count too: sample densely again. At most every
        DENSE_AGAIN_S: back-to-back invokes would otherwise keep the tree walk (tens of us of
        CPU each) going every few ms, which cost a sustained load a tenth of its throughput."""
        if now - self._dense_at >= DENSE_AGAIN_S:
            self._dense_at = now
            self.sample_every = 0.005

    # ---- what another kind of environment changes (engine/gorpc.py: go1.x) ----

    def _link(self) -> RuntimeLink:
        return RuntimeAPI(on_error=self._route_failed)

    def _runtime_env(self, env: dict[str, str]) -> dict[str, str]:
        return env

    def _spawned(self) -> None:
        """The runtime's process is started (the Runtime API waits for it to call)."""

    def _exit_detail(self, returncode: int | None) -> str:
        return P.exit_detail(returncode)

    def _marker(self) -> bytes:
        """What only this environment's processes have in their environment."""
        assert self.api is not None
        return f"AWS_LAMBDA_RUNTIME_API={self.api.address}".encode()

    # ---- lifecycle ----

    async def init(
        self, phase: Phase, limit_s: float, request_id: str | None = None
    ) -> InitOutcome:
        """Spawn the runtime and wait until it asks for its first event, posts an init error,
        exits, or runs out of time."""
        loop = asyncio.get_running_loop()
        self.api = self._link()
        await self.api.start()
        self.bus.emit(EnvironmentStarting(self.cfg.name, phase, self.id))
        self.platform(
            P.init_start_line(self.launch.runtime_version, self.launch.runtime_arn(self.cfg.region))
        )
        self._pipes = [
            procs.OutputPipe(loop, "stdout", self.line),
            procs.OutputPipe(loop, "stderr", self.line),
        ]
        env = self._runtime_env(lambda_env(self.cfg, self.launch, self.api.address, self.stream))
        # Lambda's /tmp: the environment's own, kept across its warm invokes, gone with it
        self.tmp = Path(tempfile.mkdtemp(prefix=f"workbench-{self.cfg.name}-env{self.id}-"))
        env.update(TMPDIR=str(self.tmp), TMP=str(self.tmp), TEMP=str(self.tmp))
        t0 = time.monotonic()
        stdin = procs.devnull()
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self.launch.argv,
                cwd=self.cfg.code_dir,
                env=env,
                stdin=stdin,
                stdout=self._pipes[0].write_fd,
                stderr=self._pipes[1].write_fd,
                start_new_session=True,
                preexec_fn=self._contained(),
            )
        except OSError as exc:
            detail = f"fork/exec {self.launch.argv[0]}: {(exc.strerror or str(exc)).lower()}"
            doc = P.platform_error("Runtime.InvalidEntrypoint", detail, request_id)
            return self._init_failed(phase, t0, "Runtime.InvalidEntrypoint", doc)
        finally:
            os.close(stdin)
            for pipe in self._pipes:
                pipe.close_write_end()
        self._exit_task = loop.create_task(
            self._watch_exit(self.proc), name=f"exit-watch-{self.cfg.name}"
        )
        self._spawned()
        api = self.api
        waiters: set[asyncio.Future[Any]] = {api.first_next, api.init_failed, self.exited}
        await asyncio.wait(waiters, timeout=limit_s, return_when=asyncio.FIRST_COMPLETED)
        init_ms = (time.monotonic() - t0) * 1000
        if api.init_failed.done():
            err = api.init_failed.result()
            # the runtime is expected to exit right after posting; give it a moment to do so
            await asyncio.wait({self.exited}, timeout=0.5)
            self.drain(flush_partial=True)
            return self._init_failed(phase, t0, err.error_type, None, err.body, init_ms)
        if api.first_next.done():
            self.ready = True
            self.measure_memory()  # a runtime that crashes later still reports what it used
            self.bus.emit(EnvironmentReady(self.cfg.name, init_ms))
            return InitOutcome(True, init_ms)
        if self.exited.done():
            self.drain(flush_partial=True)
            detail = self._exit_detail(self.exited.result())
            return self._init_failed(
                phase,
                t0,
                "Runtime.ExitError",
                P.platform_error("Runtime.ExitError", detail, request_id),
            )
        outcome = self._init_failed(
            phase,
            t0,
            "Sandbox.Timedout",
            P.platform_error(
                "Sandbox.Timedout", f"Task timed out after {limit_s:.2f} seconds", request_id
            ),
        )
        outcome.status = "timeout"
        return outcome

    def _init_failed(
        self,
        phase: Phase,
        t0: float,
        error_type: str,
        doc: dict[str, str] | None,
        body: bytes | None = None,
        init_ms: float | None = None,
    ) -> InitOutcome:
        ms = init_ms if init_ms is not None else (time.monotonic() - t0) * 1000
        payload = body if body is not None else P.json_body(doc).rstrip(b"\n")
        self.bus.emit(EnvironmentInitFailed(self.cfg.name, error_type, ms, phase, self.id))
        return InitOutcome(False, ms, "error", error_type, payload)

    async def _watch_exit(self, proc: asyncio.subprocess.Process) -> None:
        """Wait for the runtime to exit, sampling the tree's memory meanwhile: a runtime that
        dies during init, or a child that comes and goes, must still count toward the peak.
        Samples start dense (init is short) and thin out to a few a second."""
        waiting = asyncio.ensure_future(proc.wait())
        while not waiting.done():
            self.measure_memory()
            await asyncio.wait({waiting}, timeout=self.sample_every)
            if self.ready:  # during init keep sampling densely: a failing init dies any moment
                self.sample_every = min(self.sample_every * 2, 0.25)
        code = waiting.result()
        self.ready = False
        if not self.exited.done():
            self.exited.set_result(code)

    def measure_memory(self) -> int:
        """The tree's peak: every process's high-water mark, added up (the sampler's job)."""
        if self.proc is not None and self.proc.returncode is None:
            main_kb, others_kb = procs.tree_hwm_kb(self.proc.pid)
            self._others_kb = max(self._others_kb, others_kb)
            self.peak_mb = max(self.peak_mb, procs.to_mb(main_kb + self._others_kb))
            self._hold_to_limit()
        return self._reported_peak()

    @property
    def out_of_memory(self) -> bool:
        """The runtime was killed for its memory: by the kernel (the cgroup's limit) or, where
        there is no memory cgroup, by the sampler."""
        if self._over_limit:
            return True
        if self._group is None:
            return False
        if self._oom is None:
            self._oom = containment.OomWatch(self._group)
        return self._oom.killed()

    def _hold_to_limit(self) -> None:
        """Without a memory cgroup the sampler enforces the limit: late (a sample is at most
        0.25 s old) but the same outcome, a runtime killed for its memory."""
        limited = self.cfg.memory_limit and (self._group is None or self._group.memory is None)
        if limited and self.peak_mb > self.cfg.memory_mb and not self._over_limit:
            self._over_limit = True
            assert self.proc is not None
            procs.kill_all(self.proc.pid, b"\0")

    def _reported_peak(self) -> int:
        """Lambda never reports more than the memory size used, and a kill for memory as the
        whole of it."""
        if not self.cfg.memory_limit:
            return self.peak_mb
        if self.out_of_memory:
            return self.cfg.memory_mb
        return min(self.peak_mb, self.cfg.memory_mb)

    def measure_runtime_memory(self) -> int:
        """At the end of every invoke: the runtime's own high-water mark, one small read,
        added to the rest of the tree as last sampled (walking the tree is the costly part)."""
        if self.proc is not None and self.proc.returncode is None:
            if self._hwm is None:
                self._hwm = procs.HwmReader(self.proc.pid)
            main_kb = self._hwm.read_kb()
            self.peak_mb = max(self.peak_mb, procs.to_mb(main_kb + self._others_kb))
            self._hold_to_limit()
        return self._reported_peak()

    async def stop(self, reason: ShutdownReason = "spindown") -> None:
        """Kill the whole tree (no extensions: SIGKILL at once, as the service does), reap it,
        and close the listener."""
        if self.stopped:
            return
        self.stopped = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.ready = False
        if self.proc is not None and self.api is not None:
            killed = procs.kill_all(self.proc.pid, self._marker())
            if self._group is not None:  # what left the session and emptied its environment
                killed += containment.kill_group(self._group.pids)
            await asyncio.wait({self.exited}, timeout=5)
            await procs.wait_gone(killed, timeout=2)  # stop() returns when none of it runs
        if self._oom is not None:
            self._oom.close()
            self._oom = None
        if self._group is not None:
            for path in self._group.paths:
                containment.remove_group(path)
            self._group = None
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
        self.drain(flush_partial=True)
        for pipe in self._pipes:
            pipe.close()
        if self._hwm is not None:
            self._hwm.close()
        if self.api is not None:
            await self.api.stop()
        self.bus.emit(EnvironmentStopped(self.cfg.name, reason))
