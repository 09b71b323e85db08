"""`workbench doctor TARGET...`: every setting of each function and where it came from, then
the toolchains it needs, with versions."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from workbench.commands import ExitCode
from workbench.commands._common import (
    function_flags,
    resolve,
    say,
    targets,
    targets_argument,
)

if TYPE_CHECKING:
    from workbench.core.config.function import FunctionConfig


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    doc = sub.add_parser(
        "doctor",
        help="show the resolved configuration and check toolchains",
        description="Print every setting of each function and where it came "
        "from, then the toolchains it needs, with versions.",
    )
    targets_argument(doc)
    function_flags(doc)


def run(args: argparse.Namespace) -> int:
    return cmd_doctor(args)


TOOLCHAINS = (
    ("python", ["python3", "--version"], "Python functions"),
    ("node", ["node", "--version"], "Node.js functions"),
    ("go", ["go", "version"], "Go functions (go.mod)"),
    ("cargo", ["cargo", "--version"], "Rust functions (Cargo.toml)"),
)


def _toolchains(needed: set[str]) -> list[str]:
    import shutil
    import subprocess

    lines = []
    for name, cmd, purpose in TOOLCHAINS:
        exe = shutil.which(cmd[0])
        mark = "needed" if name in needed else "optional"
        if exe is None:
            lines.append(f"  {name}: not found ({mark}: {purpose})")
            continue
        try:
            out = subprocess.run([exe, *cmd[1:]], capture_output=True, text=True, timeout=20)
            version = (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, subprocess.SubprocessError, IndexError):
            version = "present, but did not say its version"
        lines.append(f"  {name}: {version} ({exe}; {mark})")
    return lines


def _runs_on(cfg: FunctionConfig) -> str:
    """The interpreter the runtime runs on and, when it is not the runtime's version, why."""
    from workbench.core.runtimes import launch_for

    launch = launch_for(cfg)
    if launch.choice is None:
        return ""
    i = launch.choice.interpreter
    line = f"  runs on: {i.shown} ({launch.argv[0]}, from {i.source})"
    if launch.argv[0] != i.path:
        line += f"; found as {i.path}, a virtual environment's, so its base runs instead"
    return line + (f"\n  warning: {launch.note}" if launch.note else "")


def cmd_doctor(args: argparse.Namespace) -> int:
    from workbench.core.config.function import ConfigError

    try:
        resolved = resolve(targets(args), args)
    except ConfigError as exc:
        say(str(exc))
        return ExitCode.USAGE
    needed: set[str] = set()
    problems = 0
    for fn in resolved:
        print(fn.describe())
        cfg = fn.config
        compilers = {"go": "go", "rust": "cargo"}
        needed.add(
            {"python": "python", "node": "node"}.get(
                cfg.family, compilers.get(cfg.builder or "", "")
            )
        )
        try:
            runs_on = _runs_on(cfg)
            if runs_on:
                print(runs_on)
        except ConfigError as exc:
            problems += 1
            print(f"  cannot start: {exc}")
        print()
    print("toolchains:")
    lines = _toolchains(needed)
    print("\n".join(lines))
    missing = [line for line in lines if "not found (needed" in line]
    return ExitCode.USAGE if problems or missing else ExitCode.OK
