"""What the commands (and the TUI launch) share: the function-settings flags, TARGET arguments,
resolving and checking functions, building once, and how messages reach the user.

Only argparse, pathlib and sys at the top, like the commands themselves: the core is imported
inside each helper, when a command actually runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workbench.core.bus import Bus
    from workbench.core.config.function import FunctionConfig
    from workbench.core.config.resolve import ResolvedFunction
    from workbench.core.history.recorder import Recorder, Stores
    from workbench.core.history.store import HistoryStore


def say(message: str) -> None:
    """A message for the user on stderr (stdout is kept for the command's output), prefixed as
    all of workbench's own messages are."""
    print(f"workbench: {message}", file=sys.stderr)


# ---- arguments ----


def function_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "function settings (override workbench.toml, the template and what the folder says)"
    )
    g.add_argument("--handler", help="handler, e.g. app.handler or index.handler")
    g.add_argument("--runtime", help="python3.12, nodejs20.x, provided.al2023, ...")
    g.add_argument(
        "--timeout", type=float, metavar="SECONDS", help="timeout (default 3, as in Lambda)"
    )
    g.add_argument("--memory", type=int, metavar="MB", help="memory size in MB (default 128)")
    g.add_argument(
        "--no-memory-limit",
        dest="memory_limit",
        action="store_const",
        const=False,
        help="let the function use more than its memory size (Lambda would kill it)",
    )
    g.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment variable for the function (repeatable; wins over all)",
    )
    g.add_argument(
        "--env-file",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="a .env file of variables (repeatable; .env in the folder is read too)",
    )
    g.add_argument(
        "--runtime-client",
        choices=("builtin", "awslambdaric"),
        help="Python runtime client: workbench's own (default) or awslambdaric",
    )
    g.add_argument("--region", help="AWS region the function believes it is in (us-east-1)")
    g.add_argument(
        "--log-max-mb",
        type=int,
        metavar="MB",
        help="history keeps at most this much of one invocation's log, its beginning and "
        "its end (default 4)",
    )
    g.add_argument(
        "--rpc",
        metavar="HOST:PORT",
        help="invoke a go1.x function you started yourself (e.g. under a debugger with "
        "_LAMBDA_SERVER_PORT=PORT) over net/rpc; workbench neither restarts nor stops it",
    )
    t = p.add_argument_group("SAM / CloudFormation templates")
    t.add_argument(
        "--function",
        metavar="LOGICAL_ID",
        help="which function of a template (default: all; invoke needs one)",
    )
    t.add_argument(
        "--parameter-overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="template parameter value (repeatable)",
    )


def targets_argument(p: argparse.ArgumentParser) -> None:
    """One or more TARGETs (TUI, serve, doctor): function folders and/or SAM templates."""
    p.add_argument(
        "dirs",
        type=Path,
        nargs="*",
        metavar="TARGET",
        help="function folders and/or SAM templates (none with --rpc: the current folder)",
    )


def targets(args: argparse.Namespace) -> list[Path]:
    """The TARGETs given; none is the current folder with --rpc, else a usage error."""
    if args.dirs:
        return list(args.dirs)
    if getattr(args, "rpc", None):
        return [Path.cwd()]
    from workbench.core.config.function import ConfigError

    raise ConfigError("give at least one TARGET: a function folder or a SAM template")


def parse_port(text: str) -> int:
    """argparse type of --port: a bad one is a usage error in argparse's own words."""
    try:
        number = int(text)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0 to 65535; 0 picks a free one)")
    return number


def key_values(items: list[str], flag: str, error: type[Exception] | None = None) -> dict[str, str]:
    """`KEY=VALUE` flags (--env, --param, ...) as a dict; a malformed one raises `error`
    (ConfigError by default) naming the flag."""
    if error is None:
        from workbench.core.config.function import ConfigError

        error = ConfigError
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise error(f"{flag} {item!r}: expected KEY=VALUE")
        out[key] = value
    return out


# ---- resolving and checking functions ----


def overrides(args: argparse.Namespace) -> dict[str, object]:
    """The function settings given as flags (None where a flag was not given)."""
    return {
        "handler": args.handler,
        "runtime": args.runtime,
        "timeout": args.timeout,
        "memory": args.memory,
        "memory_limit": args.memory_limit,
        "region": args.region,
        "runtime_client": args.runtime_client,
        "log_max_mb": args.log_max_mb,
        "rpc": args.rpc,
        # attached over net/rpc means go1.x, unless --runtime says otherwise (then refused)
        **({"runtime": args.runtime or "go1.x"} if args.rpc else {}),
    }


def resolve(targets: list[Path], args: argparse.Namespace) -> list[ResolvedFunction]:
    """Flags, workbench.toml, templates and the folder, layered (see core/config/resolve.py)."""
    from workbench.core.config.resolve import resolve_functions

    resolved = resolve_functions(
        targets,
        function=args.function,
        overrides=overrides(args),
        parameter_overrides=key_values(args.parameter_overrides, "--parameter-overrides"),
        env_files=args.env_file,
        env=key_values(args.env, "--env"),
    )
    for fn in resolved:
        for warning in fn.warnings:
            say(f"warning: {warning}")
    return resolved


class Rereader:
    """Reads a function's configuration again, with the same flags (live reload of a config
    edit), and remembers the last reading, sources included, for the TUI to show."""

    def __init__(self, fn: ResolvedFunction, args: argparse.Namespace) -> None:
        self.fn = self.latest = fn
        self.overrides = overrides(args)
        self.params = key_values(args.parameter_overrides, "--parameter-overrides")
        self.env = key_values(args.env, "--env")
        self.env_files = args.env_file

    def __call__(self) -> FunctionConfig:
        from workbench.core.config.resolve import resolve_again

        self.latest = resolve_again(
            self.fn,
            overrides=self.overrides,
            parameter_overrides=self.params,
            env_files=self.env_files,
            env=self.env,
        )
        return self.latest.config

    def describe(self) -> str:
        return self.latest.describe()


def rereader(fn: ResolvedFunction, args: argparse.Namespace) -> Rereader:
    return Rereader(fn, args)


def resolve_config(target: Path, args: argparse.Namespace) -> FunctionConfig:
    """The one function a TARGET names (invoke, replay): several is a ConfigError."""
    from workbench.core.config.function import ConfigError

    resolved = resolve([target], args)
    if len(resolved) != 1:
        names = ", ".join(fn.config.name for fn in resolved)
        raise ConfigError(
            f"{target} holds {len(resolved)} functions ({names}); pick one with --function"
        )
    return resolved[0].config


def check_runnable(cfg: FunctionConfig, warn: bool = False) -> str | None:
    """Refuse early, in words, what cannot start; the runtime launcher knows what each needs.
    Returns why it runs on another version than its runtime names, if it does (`warn`: say
    that on stderr too)."""
    from workbench.core.runtimes import launch_for

    note = launch_for(cfg).note
    if note is not None and warn:
        say(f"warning: {note}")
    return note


def runnable(args: argparse.Namespace, warn: bool = True) -> list[ResolvedFunction] | None:
    """The functions the targets name, each checked to be startable; None (and the reason on
    stderr) when one is not. `warn`: a function on another version than its runtime's is
    said on stderr (the TUI says it in a notice instead)."""
    from workbench.core.config.function import ConfigError

    try:
        resolved = resolve(targets(args), args)
        for fn in resolved:
            check_runnable(fn.config, warn)
    except ConfigError as exc:
        say(str(exc))
        return None
    return resolved


# ---- running functions headless ----


def print_logs(event: object) -> None:
    """Bus subscriber: the function's log lines on stderr, as they come."""
    from workbench.core.bus import LogLine

    if isinstance(event, LogLine):
        sys.stderr.write(event.text + "\n")


def needs_build(cfg: FunctionConfig) -> bool:
    """Whether build_once has anything to do: a compile step, or requirements not yet
    installed. Checked first, so a function that needs neither never starts an event loop."""
    from workbench.core.bus import Bus
    from workbench.core.reload.builders import builder_for
    from workbench.core.reload.dependencies import dependencies_for

    deps = dependencies_for(cfg, Bus())
    return builder_for(cfg).needed or (deps is not None and deps.needed)


async def build_once(cfg: FunctionConfig, quiet: bool) -> bool:
    """Build a function that builds (go.mod, Cargo.toml, `build` in config) before it runs:
    output on stderr as it comes (the tail only, on failure, when quiet)."""
    from workbench.core.bus import Bus
    from workbench.core.reload.builders import builder_for
    from workbench.core.reload.dependencies import dependencies_for, install_then_build

    bus = Bus()
    if not quiet:
        bus.subscribe(print_logs)
    builder = builder_for(cfg, bus)
    deps = dependencies_for(cfg, bus)
    if not builder.needed and (deps is None or not deps.needed):
        return True
    result = await install_then_build(cfg, bus, builder, deps)
    if not result.ok:
        if quiet:
            sys.stderr.write(result.output_tail + "\n")
        say(f"{cfg.name}: the build failed; see its output above")
    return result.ok


def cancel_on_termination() -> None:
    """SIGTERM and SIGHUP cancel the main task like Ctrl+C does, so cleanup always runs: the
    function lives in its own session and would not get the signal itself."""
    import asyncio
    import signal

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    for sig in (signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, task.cancel)


# ---- history ----


def record_history(bus: Bus, configs: list[FunctionConfig]) -> tuple[Recorder, Stores]:
    """Record every invocation on `bus` in its function's history (`.close()` the stores when
    done), opening each store only once the function's first runtime has been spawned.

    The recorder opens a function's store when an environment starts, to note the code
    version the runtime loads: for the first cold start that means creating the folder,
    connecting to SQLite and checking the schema before the runtime is even spawned, all on
    the path to the first answer. Here that first opening waits one turn of the event loop,
    by which time the runtime is starting beside it; the code version is then taken as the
    recorder would have. An answer or a record that comes first (an init that failed at once)
    opens the store itself, so nothing is ever left unjournaled or unrecorded."""
    import asyncio

    from workbench.core.bus import (
        EnvironmentStarting,
        InvocationAccepted,
        InvocationAnswered,
        InvocationFinished,
        ReloadFinished,
    )
    from workbench.core.history.recorder import Stores, attach

    class AfterSpawn(Stores):
        def __init__(self) -> None:
            super().__init__(configs)
            self.held: set[str] = set()  # not to be opened for now
            self.opened: set[str] = set()

        def __call__(self, function: str) -> HistoryStore | None:
            if function in self.held:
                return None
            store = super().__call__(function)
            if store is not None:
                self.opened.add(function)
            return store

    stores = AfterSpawn()

    def catch_up(function: str) -> None:
        if function not in stores.held:
            return  # a record came first and opened it
        stores.held.discard(function)
        if stores(function) is not None:
            recorder.code_versions[function] = stores.code_version(function)

    def before_the_recorder(event: object) -> None:
        if isinstance(event, EnvironmentStarting):
            if event.function in stores.configs and event.function not in stores.opened:
                stores.held.add(event.function)
                asyncio.get_running_loop().call_soon(catch_up, event.function)
        elif isinstance(
            event, (InvocationAnswered, InvocationAccepted, InvocationFinished, ReloadFinished)
        ):  # the recorder journals or records it: the store opens for that, now
            stores.held.discard(event.function)

    bus.subscribe(before_the_recorder)  # first: it runs before the recorder on every event
    recorder = attach(bus, stores)
    return recorder, stores
