"""Subcommands that live in their own modules. Each module NAME here has:

    def add_parser(sub: argparse._SubParsersAction) -> None   # registers `workbench NAME`
    def run(args: argparse.Namespace) -> int                  # runs it, returns an ExitCode

Modules whose name starts with `_` are not commands: `_common` holds what the commands share,
`_tui` is what `workbench TARGET...` runs when no command is named.

Modules import only argparse/pathlib at the top: everything else inside run(), so that
`workbench --help` and `workbench invoke` stay fast.
"""

import importlib
import pkgutil
from enum import IntEnum
from types import ModuleType


class ExitCode(IntEnum):
    """What every command (and the TUI) exits with; scripts and CI tell outcomes apart by it."""

    OK = 0
    FAILED = 1  # the function returned an error, or a replay check did not pass
    USAGE = 2  # bad input: flags, configuration, files, or a function that cannot start
    INTERRUPTED = 130  # Ctrl+C or a termination signal, as shells report SIGINT


def names() -> list[str]:
    """Every command's name, without importing any of them."""
    return sorted(i.name for i in pkgutil.iter_modules(__path__) if not i.name.startswith("_"))


def discover(only: str | None = None) -> dict[str, ModuleType]:
    """The command modules by name; `only`: just that one (a command line that names its
    command needs no other module imported, nor their parsers built)."""
    chosen = [only] if only is not None else names()
    return {name: importlib.import_module(f"{__name__}.{name}") for name in chosen}
