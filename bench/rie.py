"""The official emulator as a reference for the benchmarks: AWS's Runtime Interface Emulator
(RIE, classic mode), a static Go binary kept beside the repositories in shared/anchors/.

It starts the runtime itself, lazily, on the first invoke; the function is always named
`function`, and it answers one invoke at a time (a second concurrent one crashes it), so every
benchmark drives it sequentially.

Where the binary is looked for, first found wins: `--rie PATH` (the scripts pass it here),
$WORKBENCH_RIE, then shared/anchors/rie-classic beside the repository (a worktree's parent
folder too: ../shared/anchors/ from /work/main and from /work/wt-<name>).
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
INVOKE_PATH = "/2015-03-31/functions/function/invocations"
ANCHOR = Path("shared") / "anchors" / "rie-classic"


def find_rie(given: str | None = None) -> tuple[str | None, str]:
    """(path to the RIE binary, or None; where it was looked for, for a NOT RUN line)."""
    tried = []
    candidates = [given, os.environ.get("WORKBENCH_RIE")]
    candidates += [str(p / ANCHOR) for p in (REPO.parent, REPO.parent.parent)]
    for c in candidates:
        if not c:
            continue
        tried.append(c)
        if os.path.isfile(c) and os.access(c, os.X_OK):
            return c, c
    return None, "no RIE binary at " + ", ".join(tried) + " (--rie PATH or $WORKBENCH_RIE)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rie_argv(exe: str, api_port: int, invoke_port: int, bootstrap: list[str]) -> list[str]:
    return [
        exe,
        "--runtime-api-address",
        f"127.0.0.1:{api_port}",
        "--runtime-interface-emulator-address",
        f"127.0.0.1:{invoke_port}",
        *bootstrap,
    ]


def rie_env(timeout_s: int = 300) -> dict[str, str]:
    """What RIE and the runtime it starts see: the caller's environment (PATH, HOME, LANG...),
    without a bytecode switch that would make every Python start compile again."""
    env = child_env()
    env["AWS_LAMBDA_FUNCTION_TIMEOUT"] = str(timeout_s)
    return env


def child_env() -> dict[str, str]:
    """The environment for every process a benchmark times, workbench's and RIE's alike.
    PYTHONDONTWRITEBYTECODE is dropped: with it, an editable install compiles every module of
    workbench on every start (~100 ms here), which no installed copy does."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def loop_bootstrap(folder: Path, python: str = sys.executable) -> list[str]:
    """The plain http.client runtime loop (a copy of bench/functions/echo-loop/)."""
    return [python, str(folder / "runtime_loop.py")]


def ric_bootstrap(python: str = sys.executable) -> list[str]:
    """awslambdaric with the echo handler (run with bench/functions/echo-py as the cwd)."""
    return [python, "-m", "awslambdaric", "app.handler"]


def workbench_runtime(folder: Path, client: str | None = None) -> tuple[list[str], dict[str, str]]:
    """The command line workbench runs for this Python function (its bundled client, or
    awslambdaric with `client="awslambdaric"`) and the variables that command needs beyond
    what RIE sets: the same runtime process under either emulator, so that the comparison is
    of the emulators. (workbench runs the interpreter a venv was made from, with the runtime's
    packages on PYTHONPATH; see workbench/core/runtimes/isolation.py.)"""
    from workbench.core.config.resolve import resolve_functions
    from workbench.core.runtimes import launch_for

    overrides = {"runtime_client": client} if client else {}
    cfg = resolve_functions([folder], overrides=overrides)[0].config
    launch = launch_for(cfg)
    env = {"_HANDLER": cfg.handler, "LAMBDA_TASK_ROOT": str(folder)}
    if launch.python_path:
        env["PYTHONPATH"] = os.pathsep.join(launch.python_path)
    return list(launch.argv), env
