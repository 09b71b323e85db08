"""`workbench invoke TARGET`: one invocation, the response on stdout and the logs on stderr, so
that scripts can pipe the one and watch the other."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.commands import ExitCode
from workbench.commands._common import (
    build_once,
    cancel_on_termination,
    check_runnable,
    function_flags,
    needs_build,
    print_logs,
    record_history,
    resolve_config,
    say,
)

if TYPE_CHECKING:
    from workbench.core.config.function import FunctionConfig


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    inv = sub.add_parser(
        "invoke",
        help="invoke a function once and print its response",
        description="Invoke once: the response on stdout, logs on stderr. "
        "Exit 0 on success, 1 on a function error, 2 on bad input.",
    )
    inv.add_argument(
        "dir",
        type=Path,
        nargs="?",
        metavar="TARGET",
        help="the function's folder, a SAM template, or a folder holding one "
        "(with --rpc it may be left out: the current folder)",
    )
    inv.add_argument(
        "-e", "--event", metavar="FILE", help="event JSON file, or - for stdin (default: {})"
    )
    inv.add_argument("-q", "--quiet", action="store_true", help="do not print logs")
    function_flags(inv)


def run(args: argparse.Namespace) -> int:
    import asyncio

    from workbench.core.config.function import ConfigError
    from workbench.core.engine.payloads import ServiceError, validate_payload

    try:
        if args.dir is None and not args.rpc:
            raise ConfigError("give the TARGET to invoke: a function folder or a SAM template")
        cfg = resolve_config(args.dir or Path.cwd(), args)
        check_runnable(cfg, warn=True)
        payload = validate_payload(_read_event(args.event))
    except (ConfigError, FileNotFoundError) as exc:
        say(str(exc))
        return ExitCode.USAGE
    except ServiceError as exc:
        say(f"{exc.code}: {exc.message}")
        return ExitCode.USAGE
    try:
        if needs_build(cfg) and not asyncio.run(build_once(cfg, quiet=args.quiet)):
            return ExitCode.USAGE
        event_name = Path(args.event).stem if args.event not in (None, "-") else None
        return asyncio.run(_invoke_once(cfg, payload, quiet=args.quiet, event_name=event_name))
    except KeyboardInterrupt:
        say("interrupted; the function was stopped.")
        return ExitCode.INTERRUPTED


def _read_event(source: str | None) -> bytes:
    if source is None:
        return b"{}"
    if source == "-":
        return sys.stdin.buffer.read()
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"event file not found: {source}")
    return path.read_bytes()


async def _invoke_once(
    cfg: FunctionConfig, payload: bytes, quiet: bool, event_name: str | None = None
) -> int:
    import asyncio

    from workbench.core.bus import Bus
    from workbench.core.engine.function import Function
    from workbench.core.record import InvokeRequest

    bus = Bus()
    if not quiet:
        bus.subscribe(print_logs)
    recorder, stores = record_history(bus, [cfg])
    function = Function(cfg, bus)
    cancel_on_termination()
    try:
        handle = function.start_invoke(InvokeRequest(payload, source="cli"))
        if event_name:
            recorder.name_event(handle.request_id, event_name)
        record = await handle.record
    except asyncio.CancelledError:
        say("terminated; the function was stopped.")
        return ExitCode.INTERRUPTED
    finally:
        await function.close()
        recorder.detach()
        stores.close()
    out = sys.stdout.buffer
    out.write(record.result.payload)
    if not record.result.payload.endswith(b"\n"):
        out.write(b"\n")
    out.flush()
    if record.result.function_error:
        from workbench.core.config.describe import missing_module_hint

        hint = missing_module_hint(cfg, record.result.payload)
        if hint is not None:
            say(hint)
    return ExitCode.FAILED if record.result.function_error else ExitCode.OK
