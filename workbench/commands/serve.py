"""`workbench serve TARGET...`: the Lambda Invoke API for boto3 and the AWS CLI, on
127.0.0.1, with live reload under --watch."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from workbench.commands import ExitCode
from workbench.commands._common import (
    build_once,
    function_flags,
    parse_port,
    record_history,
    rereader,
    runnable,
    say,
    targets_argument,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from workbench.core.bus import Bus, PinnedCheckFinished
    from workbench.core.config.function import FunctionConfig
    from workbench.core.engine.function import Invocable


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    srv = sub.add_parser(
        "serve",
        help="serve the Lambda Invoke API for boto3 and the AWS CLI",
        description="Serve the Lambda Invoke API on 127.0.0.1 for one or more "
        "functions (each by its folder name).",
    )
    targets_argument(srv)
    srv.add_argument(
        "--port", type=parse_port, default=9001, help="port (default 9001; 0 picks a free one)"
    )
    srv.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1; anything else exposes "
        "your functions to the network)",
    )
    srv.add_argument("-q", "--quiet", action="store_true", help="do not print function logs")
    srv.add_argument(
        "--watch",
        action="store_true",
        help="live reload: rebuild and restart a function when its files are saved "
        "(SIGUSR1 forces a cold start, SIGUSR2 a reload without a change)",
    )
    function_flags(srv)


def run(args: argparse.Namespace) -> int:
    return cmd_serve(args)


def _changed_text(paths: tuple[str, ...]) -> str:
    if not paths:
        return "no file changed"
    if len(paths) <= 3:
        return ", ".join(paths) + " changed"
    return f"{len(paths)} files changed ({', '.join(paths[:3])}, ...)"


def _reload_line(event: object, quiet: bool) -> str | None:
    """What a reload says on stderr: one line when it worked, the error when it did not."""
    from workbench.core.bus import (
        BuildFinished,
        PinnedCheckFinished,
        ReloadFinished,
        WorkerFailed,
    )

    if isinstance(event, PinnedCheckFinished):
        return _pinned_line(event)
    if isinstance(event, ReloadFinished):
        if not event.ok:
            return (
                f"workbench: reload of {event.function} failed: {event.error}; "
                "the last good version keeps serving"
            )
        build = f"build {event.build_ms:.0f} ms; " if event.build_ms is not None else ""
        return (
            f"workbench: reloaded {event.function} in {event.save_to_ready_ms:.0f} ms "
            f"({_changed_text(event.changed_paths)}; {build}init {event.init_ms or 0:.0f} ms)"
        )
    if isinstance(event, BuildFinished) and quiet and not event.ok and not event.cancelled:
        return f"workbench: build of {event.function} failed:\n{event.output_tail}"
    if isinstance(event, WorkerFailed):
        return f"workbench: {event.summary()}"
    return None


def _pinned_line(event: PinnedCheckFinished) -> str:
    shown = event.status.upper() if not event.ok else event.status
    line = f"workbench: pinned {event.function}/{event.event_name}: {shown} ({event.detail})"
    return line + ("\n" + event.diff if event.diff else "")


def cmd_serve(args: argparse.Namespace) -> int:
    import asyncio

    resolved = runnable(args)
    if resolved is None:
        return ExitCode.USAGE
    configs = [fn.config for fn in resolved]
    rereaders = {fn.config.name: rereader(fn, args) for fn in resolved} if args.watch else {}
    try:
        return asyncio.run(_serve(configs, args.host, args.port, args.quiet, args.watch, rereaders))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        say(f"cannot serve on {args.host}:{args.port}: {exc.strerror or exc}")
        return ExitCode.USAGE
    return ExitCode.OK


async def _serve(
    configs: list[FunctionConfig],
    host: str,
    port: int,
    quiet: bool,
    watch: bool = False,
    rereaders: Mapping[str, Callable[[], FunctionConfig]] | None = None,
) -> int:
    import asyncio

    from workbench.core.bus import (
        Bus,
        InvocationAccepted,
        InvocationAnswered,
        InvocationFinished,
        InvocationStarted,
        LogLine,
        ReloadFinished,
    )

    bus = Bus()
    many = len(configs) > 1
    recorder, stores = record_history(bus, configs)

    logs = _Batched()

    def show(event: object) -> None:
        if isinstance(event, LogLine):  # most events, by far: nothing else to ask of them
            if not quiet:
                prefix = f"[{event.function}] " if many else ""
                logs.add(prefix + event.text + "\n")
            return
        if isinstance(
            event, (InvocationStarted, InvocationAccepted, InvocationAnswered, InvocationFinished)
        ):
            return
        line = _reload_line(event, quiet)
        if line is not None:
            logs.flush()  # what came before it is said before it
            print(line, file=sys.stderr, flush=True)
        if isinstance(event, ReloadFinished) and event.ok and event.function in functions:
            stores.update(functions[event.function].cfg)  # its history bounds may have changed

    bus.subscribe(show)
    functions: dict[str, Invocable] = {}
    checks = None
    try:
        if watch:
            from workbench.core.checks.pinned import PinnedChecks
            from workbench.core.reload.reloader import Reloader

            reloaders = [Reloader(c, bus, resolve=(rereaders or {}).get(c.name)) for c in configs]
            functions.update((r.name, r) for r in reloaders)
            checks = PinnedChecks(bus, functions, recorder=recorder)
            try:
                built = [await r.start() for r in reloaders]
            except OSError as exc:  # e.g. the system's limit on watched folders
                say(f"cannot watch for changes: {exc}")
                return ExitCode.USAGE
            failed = [c.name for c, b in zip(configs, built, strict=True) if not b.ok]
        else:
            failed = [c.name for c in configs if not await build_once(c, quiet)]
            functions.update((c.name, _served(c, bus)) for c in configs)
        if failed:
            say(f"cannot serve: {', '.join(failed)} did not build")
            return ExitCode.USAGE
        return await _serve_api(functions, configs, host, port, watch, bus)
    finally:
        if checks is not None:
            await checks.close()
        await asyncio.gather(*(f.close() for f in functions.values()))
        recorder.detach()
        stores.close()
        logs.flush()


class _Batched:
    """serve's log lines on stderr, those of one turn of the event loop in one write: a warm
    invoke says START, END and REPORT, which were three writes (three system calls, stderr
    being line-buffered) on the path of every invoke."""

    def __init__(self) -> None:
        self._pending: list[str] = []

    def add(self, text: str) -> None:
        if not self._pending:
            import asyncio  # imported by then: serve runs on it

            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no loop running (any more): at once
                sys.stderr.write(text)
                return
        self._pending.append(text)

    def flush(self) -> None:
        if self._pending:
            text = "".join(self._pending)
            self._pending.clear()
            sys.stderr.write(text)
            sys.stderr.flush()


def _served(cfg: FunctionConfig, bus: Bus) -> Invocable:
    """One environment, or a pool of them when the function's concurrency allows more."""
    from workbench.core.engine.function import Function

    if cfg.concurrency > 1:
        from workbench.core.engine.pool import FunctionPool

        return FunctionPool(cfg, bus)
    return Function(cfg, bus)


async def _serve_api(
    functions: dict[str, Invocable],
    configs: list[FunctionConfig],
    host: str,
    port: int,
    watch: bool,
    bus: Bus,
) -> int:
    import asyncio
    import signal

    from workbench.core.invoke_api import InvokeAPI

    api = InvokeAPI(functions, host=host, port=port, region=configs[0].region, bus=bus)
    await api.start()
    say(f"serving the Lambda Invoke API on {api.url}")
    for c in configs:
        print(f"  {c.name}: {c.runtime} {c.handler} ({c.code_dir})", file=sys.stderr)
    if watch:
        print("  watching for changes: a save reloads the function", file=sys.stderr)
    print(
        f"  try: aws lambda invoke --endpoint-url {api.url} --function-name {configs[0].name} "
        "out.json",
        file=sys.stderr,
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    background: set[asyncio.Task[object]] = set()

    def each(action: str) -> None:  # every function is a Reloader when watching
        for f in functions.values():
            task: asyncio.Task[object] = asyncio.ensure_future(getattr(f, action)())
            background.add(task)
            task.add_done_callback(background.discard)

    if watch:
        loop.add_signal_handler(signal.SIGUSR1, each, "force_cold")
        loop.add_signal_handler(signal.SIGUSR2, each, "reload_now")
    try:
        await stop.wait()
    finally:
        await api.stop()
    return ExitCode.OK
