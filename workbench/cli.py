"""The `workbench` command: the TUI, and the dispatch to the command modules in
workbench/commands/. Imports stay inside the commands so that `workbench invoke` starts
quickly and the headless commands never load the UI."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.commands import ExitCode, discover
from workbench.commands._common import (
    function_flags,
    parse_port,
    rereader,
    runnable,
    say,
    targets_argument,
)

if TYPE_CHECKING:
    from types import ModuleType

# The command most people start with leads `workbench --help`; the others follow by name.
FIRST = "invoke"


def build_parser(commands: dict[str, ModuleType] | None = None) -> argparse.ArgumentParser:
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
    commands = discover() if commands is None else commands
    for name in sorted(commands, key=lambda n: n != FIRST):  # stable: the rest keep their order
        commands[name].add_parser(sub)
    return parser


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
    commands = discover()
    known = ("-h", "--help", "--version", *commands)
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
    parser = build_parser(commands)
    args = parser.parse_args(argv)
    if args.command in commands:
        return int(commands[args.command].run(args))
    parser.print_help()
    return ExitCode.USAGE
