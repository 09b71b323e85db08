"""The `workbench` command. Imports stay inside the commands so that `workbench invoke` starts
quickly and the headless commands never load the UI."""

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
    parse_port,
    print_logs,
    rereader,
    resolve_config,
    runnable,
    say,
    targets_argument,
)

if TYPE_CHECKING:
    from types import ModuleType

    from workbench.core.config.function import FunctionConfig


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbench",
        usage="workbench TARGET [TARGET ...] [options]   (the TUI)\n       workbench COMMAND ...",
        description="Run AWS Lambda functions locally, exactly as Lambda would. "
        "`workbench TARGET` opens the TUI on a function folder or SAM template "
        "(`workbench TARGET --help` for its options); the commands run headless.",
    )
    from workbench import __version__

    parser.add_argument("--version", action="version", version=f"workbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", prog="workbench")

    inv = sub.add_parser(
        "invoke",
        help="invoke a function once and print its response",
        description="Invoke once: the response on stdout, logs on stderr. "
        "Exit 0 on success, 1 on a function error, 2 on bad input.",
    )
    inv.add_argument(
        "dir",
        type=Path,
        metavar="TARGET",
        help="the function's folder, a SAM template, or a folder holding one",
    )
    inv.add_argument(
        "-e", "--event", metavar="FILE", help="event JSON file, or - for stdin (default: {})"
    )
    inv.add_argument("-q", "--quiet", action="store_true", help="do not print logs")
    function_flags(inv)

    for module in _extra_commands().values():
        module.add_parser(sub)
    return parser


def _extra_commands() -> dict[str, ModuleType]:
    from workbench.commands import discover

    return discover()


def _read_event(source: str | None) -> bytes:
    if source is None:
        return b"{}"
    if source == "-":
        return sys.stdin.buffer.read()
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"event file not found: {source}")
    return path.read_bytes()


def cmd_invoke(args: argparse.Namespace) -> int:
    import asyncio

    from workbench.core.config.function import ConfigError
    from workbench.core.engine.payloads import ServiceError, validate_payload

    try:
        cfg = resolve_config(args.dir, args)
        check_runnable(cfg)
        payload = validate_payload(_read_event(args.event))
    except (ConfigError, FileNotFoundError) as exc:
        say(str(exc))
        return ExitCode.USAGE
    except ServiceError as exc:
        say(f"{exc.code}: {exc.message}")
        return ExitCode.USAGE
    from workbench.core.reload.builders import builder_for

    try:
        if builder_for(cfg).needed and not asyncio.run(build_once(cfg, quiet=args.quiet)):
            return ExitCode.USAGE
        event_name = Path(args.event).stem if args.event not in (None, "-") else None
        return asyncio.run(_invoke_once(cfg, payload, quiet=args.quiet, event_name=event_name))
    except KeyboardInterrupt:
        say("interrupted; the function was stopped.")
        return ExitCode.INTERRUPTED


async def _invoke_once(
    cfg: FunctionConfig, payload: bytes, quiet: bool, event_name: str | None = None
) -> int:
    import asyncio

    from workbench.core.bus import Bus
    from workbench.core.engine.function import Function
    from workbench.core.history.recorder import attach, open_stores_for
    from workbench.core.record import InvokeRequest

    bus = Bus()
    if not quiet:
        bus.subscribe(print_logs)
    stores = open_stores_for([cfg])
    recorder = attach(bus, stores)
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
    return ExitCode.FAILED if record.result.function_error else ExitCode.OK


def tui_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="workbench",
        usage="workbench TARGET [TARGET ...] [options]",
        description="Open the workbench TUI on one or more functions (folders or SAM "
        "templates). Other commands: workbench {invoke,serve,replay,events,history,"
        "doctor} --help.",
    )
    targets_argument(p)
    p.add_argument(
        "--no-watch", dest="watch", action="store_false", help="do not reload when files change"
    )
    p.add_argument(
        "--port",
        type=parse_port,
        default=None,
        help="also serve the Invoke API here (default 9001, or a free port when "
        "9001 is taken; 0 picks a free one)",
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="address of the Invoke API (default 127.0.0.1)"
    )
    p.add_argument("--no-api", dest="api", action="store_false", help="do not serve the Invoke API")
    p.add_argument("--theme", help="theme for this run (ctrl+t switches and remembers one)")
    function_flags(p)
    return p


def cmd_tui(argv: list[str]) -> int:
    args = tui_parser().parse_args(argv)
    resolved = runnable(args)
    if resolved is None:
        return ExitCode.USAGE
    configs = [fn.config for fn in resolved]
    if not sys.stdout.isatty():
        say("the TUI needs a terminal; for scripts use `workbench invoke` or `workbench serve`")
        return ExitCode.USAGE
    from workbench.core.session import Session
    from workbench.ui.app import WorkbenchApp

    port = None if not args.api else args.port
    session = Session(
        configs,
        watch=args.watch,
        host=args.host,
        port=(9001 if port is None else port) if args.api else None,
        port_fallback=args.api and port is None,
        resolvers=(readers := {fn.config.name: rereader(fn, args) for fn in resolved}),
        describers={name: r.describe for name, r in readers.items()},
    )
    app = WorkbenchApp(session, theme=args.theme)
    return app.run() or ExitCode.OK


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    extra = _extra_commands()
    known = ("invoke", "-h", "--help", "--version", *extra)
    if argv and argv[0] not in known:
        if not Path(argv[0]).exists() and not argv[0].startswith("-"):
            import difflib

            close = difflib.get_close_matches(argv[0], [k for k in known if k[0] != "-"], n=1)
            if close:
                print(
                    f"workbench: {argv[0]!r} is neither a folder nor a command; did you mean "
                    f"`workbench {close[0]}`?",
                    file=sys.stderr,
                )
                return ExitCode.USAGE
        return cmd_tui(argv)
    args = parser.parse_args(argv)
    if args.command == "invoke":
        return cmd_invoke(args)
    if args.command in extra:
        return int(extra[args.command].run(args))
    parser.print_help()
    return ExitCode.USAGE
