"""The `workbench` command: it parses the command line and hands it to a command module in
workbench/commands/ (`workbench TARGET...`, with no command named, goes to commands/_tui.py).
What the commands do and share lives there; each imports what it needs inside its run(), so
that `workbench invoke` starts quickly and the headless commands never load the UI."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.commands import ExitCode, discover, names

if TYPE_CHECKING:
    from types import ModuleType

# The command most people start with leads `workbench --help`; the others follow by name.
FIRST = "invoke"
# Commands that leave nothing running when they return (their runtimes are stopped, their
# history committed, their files closed): the process may end at once, without the
# interpreter's teardown of every module and object, which took ~30-90 ms after an invoke.
ENDS_CLEAN = frozenset({"invoke"})


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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    every = names()
    if argv and argv[0] in every:  # `workbench invoke ...`: that command alone is loaded
        return _run(discover(argv[0]), argv)
    known = ("-h", "--help", "--version", *every)
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
        from workbench.commands import _tui

        return int(_tui.run(_tui.build_parser().parse_args(argv)))
    return _run(discover(), argv)


def _run(commands: dict[str, ModuleType], argv: list[str]) -> int:
    parser = build_parser(commands)
    args = parser.parse_args(argv)
    if args.command in commands:
        return int(commands[args.command].run(args))
    parser.print_help()
    return ExitCode.USAGE


def entry() -> None:
    """The `workbench` executable and `python -m workbench`: main(), then the exit."""
    argv = sys.argv[1:]
    code = main(argv)
    if argv and argv[0] in ENDS_CLEAN:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except OSError:  # a closed pipe: let the usual exit say so and set the code
            pass
        else:
            import os

            os._exit(code)
    sys.exit(code)
