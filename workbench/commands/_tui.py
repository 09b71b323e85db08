"""`workbench TARGET...`: the TUI. Not a subcommand (hence the underscore, which keeps discover()
from registering it): it is what runs when no command is named, with a parser of its own so
that `workbench TARGET --help` shows the TUI's options."""

from __future__ import annotations

import argparse
import sys

from workbench.commands import ExitCode
from workbench.commands._common import (
    function_flags,
    parse_port,
    rereader,
    runnable,
    say,
    targets_argument,
)


def build_parser() -> argparse.ArgumentParser:
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


def run(args: argparse.Namespace) -> int:
    resolved = runnable(args, warn=False)
    if resolved is None:
        return ExitCode.USAGE
    configs = [fn.config for fn in resolved]
    if not sys.stdout.isatty():
        say("the TUI needs a terminal; for scripts use `workbench invoke` or `workbench serve`")
        return ExitCode.USAGE
    # Textual loads only now, so that a TARGET which cannot run is refused without that wait.
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
    app = WorkbenchApp(session, theme=args.theme, project_theme=resolved[0].theme)
    try:
        return app.run() or ExitCode.OK
    finally:
        app.exit_guard.cancel()  # it ended by itself
