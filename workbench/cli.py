"""The `workbench` command. Imports stay inside the commands so that `workbench invoke` starts
quickly and the headless commands never load the UI."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import ModuleType

    from workbench.core.config.function import FunctionConfig
    from workbench.core.config.resolve import ResolvedFunction

EXIT_OK, EXIT_FUNCTION_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _function_flags(p: argparse.ArgumentParser) -> None:
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
        "dirs", type=Path, nargs="+", metavar="TARGET", help="function folders and/or SAM templates"
    )


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0 to 65535; 0 picks a free one)")
    return port


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
    _function_flags(inv)

    for module in _extra_commands().values():
        module.add_parser(sub)
    return parser


def _extra_commands() -> dict[str, ModuleType]:
    from workbench.commands import discover

    return discover()


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


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    return {
        "handler": args.handler,
        "runtime": args.runtime,
        "timeout": args.timeout,
        "memory": args.memory,
        "region": args.region,
        "runtime_client": args.runtime_client,
    }


def resolve(targets: list[Path], args: argparse.Namespace) -> list[ResolvedFunction]:
    """Flags, workbench.toml, templates and the folder, layered (see core/config/resolve.py)."""
    from workbench.core.config.resolve import resolve_functions

    resolved = resolve_functions(
        targets,
        function=args.function,
        overrides=_overrides(args),
        parameter_overrides=key_values(args.parameter_overrides, "--parameter-overrides"),
        env_files=args.env_file,
        env=key_values(args.env, "--env"),
    )
    for fn in resolved:
        for warning in fn.warnings:
            print(f"workbench: warning: {warning}", file=sys.stderr)
    return resolved


class Rereader:
    """Reads a function's configuration again, with the same flags (live reload of a config
    edit), and remembers the last reading, sources included, for the TUI to show."""

    def __init__(self, fn: ResolvedFunction, args: argparse.Namespace) -> None:
        self.fn = self.latest = fn
        self.overrides = _overrides(args)
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
    from workbench.core.config.function import ConfigError

    resolved = resolve([target], args)
    if len(resolved) != 1:
        names = ", ".join(fn.config.name for fn in resolved)
        raise ConfigError(
            f"{target} holds {len(resolved)} functions ({names}); pick one with --function"
        )
    return resolved[0].config


def _check_runnable(cfg: FunctionConfig) -> None:
    """Refuse early, in words, what cannot start; the runtime launcher knows what each needs."""
    from workbench.core.runtimes import launch_for

    launch_for(cfg)


def _read_event(source: str | None) -> bytes:
    if source is None:
        return b"{}"
    if source == "-":
        return sys.stdin.buffer.read()
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"event file not found: {source}")
    return path.read_bytes()


def _print_logs(event: object) -> None:
    from workbench.core.bus import LogLine

    if isinstance(event, LogLine):
        sys.stderr.write(event.text + "\n")


def cmd_invoke(args: argparse.Namespace) -> int:
    import asyncio

    from workbench.core.config.function import ConfigError
    from workbench.core.engine.payloads import ServiceError, validate_payload

    try:
        cfg = resolve_config(args.dir, args)
        _check_runnable(cfg)
        payload = validate_payload(_read_event(args.event))
    except (ConfigError, FileNotFoundError) as exc:
        print(f"workbench: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ServiceError as exc:
        print(f"workbench: {exc.code}: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    from workbench.core.reload.builders import builder_for

    try:
        if builder_for(cfg).needed and not asyncio.run(_build_once(cfg, quiet=args.quiet)):
            return EXIT_USAGE
        event_name = Path(args.event).stem if args.event not in (None, "-") else None
        return asyncio.run(_invoke_once(cfg, payload, quiet=args.quiet, event_name=event_name))
    except KeyboardInterrupt:
        print("workbench: interrupted; the function was stopped.", file=sys.stderr)
        return EXIT_INTERRUPTED


async def _build_once(cfg: FunctionConfig, quiet: bool) -> bool:
    """Build a function that builds (go.mod, Cargo.toml, `build` in config) before it runs:
    output on stderr as it comes (the tail only, on failure, when quiet)."""
    from workbench.core.bus import Bus
    from workbench.core.reload.builders import builder_for

    bus = Bus()
    if not quiet:
        bus.subscribe(_print_logs)
    builder = builder_for(cfg, bus)
    if not builder.needed:
        return True
    result = await builder.build()
    if not result.ok:
        if quiet:
            sys.stderr.write(result.output_tail + "\n")
        print(
            f"workbench: {cfg.name}: the build failed ({builder.kind}); see its output above",
            file=sys.stderr,
        )
    return result.ok


def _cancel_on_termination() -> None:
    """SIGTERM and SIGHUP cancel the main task like Ctrl+C does, so cleanup always runs: the
    function lives in its own session and would not get the signal itself."""
    import asyncio
    import signal

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    for sig in (signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, task.cancel)


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
        bus.subscribe(_print_logs)
    stores = open_stores_for([cfg])
    recorder = attach(bus, stores)
    function = Function(cfg, bus)
    _cancel_on_termination()
    try:
        handle = function.start_invoke(InvokeRequest(payload, source="cli"))
        if event_name:
            recorder.name_event(handle.request_id, event_name)
        record = await handle.record
    except asyncio.CancelledError:
        print("workbench: terminated; the function was stopped.", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        await function.close()
        recorder.detach()
        stores.close()
    out = sys.stdout.buffer
    out.write(record.result.payload)
    if not record.result.payload.endswith(b"\n"):
        out.write(b"\n")
    out.flush()
    return EXIT_FUNCTION_ERROR if record.result.function_error else EXIT_OK


def _runnable(args: argparse.Namespace) -> list[ResolvedFunction] | None:
    """The functions the targets name, each checked to be startable; None (and the reason on
    stderr) when one is not."""
    from workbench.core.config.function import ConfigError

    try:
        resolved = resolve(args.dirs, args)
        for fn in resolved:
            _check_runnable(fn.config)
    except ConfigError as exc:
        print(f"workbench: {exc}", file=sys.stderr)
        return None
    return resolved


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
        type=_port,
        default=None,
        help="also serve the Invoke API here (default 9001, or a free port when "
        "9001 is taken; 0 picks a free one)",
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="address of the Invoke API (default 127.0.0.1)"
    )
    p.add_argument("--no-api", dest="api", action="store_false", help="do not serve the Invoke API")
    p.add_argument("--theme", help="theme for this run (ctrl+t switches and remembers one)")
    _function_flags(p)
    return p


def cmd_tui(argv: list[str]) -> int:
    args = tui_parser().parse_args(argv)
    resolved = _runnable(args)
    if resolved is None:
        return EXIT_USAGE
    configs = [fn.config for fn in resolved]
    if not sys.stdout.isatty():
        print(
            "workbench: the TUI needs a terminal; for scripts use `workbench invoke` or "
            "`workbench serve`",
            file=sys.stderr,
        )
        return EXIT_USAGE
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
    return app.run() or EXIT_OK


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
                return EXIT_USAGE
        return cmd_tui(argv)
    args = parser.parse_args(argv)
    if args.command == "invoke":
        return cmd_invoke(args)
    if args.command in extra:
        return int(extra[args.command].run(args))
    parser.print_help()
    return EXIT_USAGE
