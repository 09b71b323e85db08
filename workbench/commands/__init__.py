"""Subcommands that live in their own modules. Each module NAME here has:

    def add_parser(sub: argparse._SubParsersAction) -> None   # registers `workbench NAME`
    def run(args: argparse.Namespace) -> int                  # runs it, returns the exit code

Modules import only argparse/pathlib at the top: everything else inside run(), so that
`workbench --help` and `workbench invoke` stay fast.
"""

import importlib
import pkgutil
from types import ModuleType


def discover() -> dict[str, ModuleType]:
    found = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            found[info.name] = importlib.import_module(f"{__name__}.{info.name}")
    return found
