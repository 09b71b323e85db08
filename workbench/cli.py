"""The `workbench` command. Imports stay inside the commands so that `workbench invoke` starts
quickly and the headless commands never load the UI."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType

    from workbench.core.bus import Bus, PinnedCheckFinished
    from workbench.core.config import FunctionConfig
    from workbench.core.function import Invocable
    from workbench.core.resolve import ResolvedFunction

EXIT_OK, EXIT_FUNCTION_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _function_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("function settings (override workbench.toml, the template and "
                             "what the folder says)")
    g.add_argument("--handler", help="handler, e.g. app.handler or index.handler")
    g.add_argument("--runtime", help="python3.12, nodejs20.x, provided.al2023, ...")
    g.add_argument("--timeout", type=float, metavar="SECONDS",
                   help="timeout (default 3, as in Lambda)")
    g.add_argument("--memory", type=int, metavar="MB", help="memory size in MB (default 128)")
    g.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                   help="environment variable for the function (repeatable; wins over all)")
    g.add_argument("--env-file", action="append", default=[], type=Path, metavar="FILE",
                   help="a .env file of variables (repeatable; .env in the folder is read too)")
    g.add_argument("--runtime-client", choices=("builtin", "awslambdaric"),
                   help="Python runtime client: workbench's own (default) or awslambdaric")
    g.add_argument("--region", help="AWS region the function believes it is in (us-east-1)")
    t = p.add_argument_group("SAM / CloudFormation templates")
    t.add_argument("--function", metavar="LOGICAL_ID",
                   help="which function of a template (default: all; invoke needs one)")
    t.add_argument("--parameter-overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="template parameter value (repeatable)")


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
        prog="workbench", usage="workbench TARGET [TARGET ...] [options]   (the TUI)\n"
                                "       workbench COMMAND ...",
        description="Run AWS Lambda functions locally, exactly as Lambda would. "
                    "`workbench TARGET` opens the TUI on a function folder or SAM template "
                    "(`workbench TARGET --help` for its options); the commands run headless.")
    from workbench import __version__

    parser.add_argument("--version", action="version", version=f"workbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    inv = sub.add_parser("invoke", help="invoke a function once and print its response",
                         description="Invoke once: the response on stdout, logs on stderr. "
                                     "Exit 0 on success, 1 on a function error, 2 on bad input.")
    inv.add_argument("dir", type=Path, metavar="TARGET",
                     help="the function's folder, a SAM template, or a folder holding one")
    inv.add_argument("-e", "--event", metavar="FILE",
                     help="event JSON file, or - for stdin (default: {})")
    inv.add_argument("-q", "--quiet", action="store_true", help="do not print logs")
    _function_flags(inv)

    srv = sub.add_parser("serve", help="serve the Lambda Invoke API for boto3 and the AWS CLI",
                         description="Serve the Lambda Invoke API on 127.0.0.1 for one or more "
                                     "functions (each by its folder name).")
    srv.add_argument("dirs", type=Path, nargs="+", metavar="TARGET",
                     help="function folders and/or SAM templates")
    srv.add_argument("--port", type=_port, default=9001,
                     help="port (default 9001; 0 picks a free one)")
    srv.add_argument("--host", default="127.0.0.1",
                     help="address to bind (default 127.0.0.1; anything else exposes "
                          "your functions to the network)")
    srv.add_argument("-q", "--quiet", action="store_true", help="do not print function logs")
    srv.add_argument("--watch", action="store_true",
                     help="live reload: rebuild and restart a function when its files are saved "
                          "(SIGUSR1 forces a cold start, SIGUSR2 a reload without a change)")
    _function_flags(srv)
    doc = sub.add_parser("doctor", help="show the resolved configuration and check toolchains",
                         description="Print every setting of each function and where it came "
                                     "from, then the toolchains it needs, with versions.")
    doc.add_argument("dirs", type=Path, nargs="+", metavar="TARGET",
                     help="function folders and/or SAM templates")
    _function_flags(doc)
    for module in _extra_commands().values():
        module.add_parser(sub)
    return parser


def _extra_commands() -> dict[str, ModuleType]:
    from workbench.commands import discover

    return discover()


def key_values(items: list[str], flag: str,
               error: type[Exception] | None = None) -> dict[str, str]:
    """`KEY=VALUE` flags (--env, --param, ...) as a dict; a malformed one raises `error`
    (ConfigError by default) naming the flag."""
    if error is None:
        from workbench.core.config import ConfigError

        error = ConfigError
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise error(f"{flag} {item!r}: expected KEY=VALUE")
        out[key] = value
    return out


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    return {"handler": args.handler, "runtime": args.runtime, "timeout": args.timeout,
            "memory": args.memory, "region": args.region, "runtime_client": args.runtime_client}


def resolve(targets: list[Path], args: argparse.Namespace) -> list[ResolvedFunction]:
    """Flags, workbench.toml, templates and the folder itself, layered (see core/resolve.py)."""
    from workbench.core.resolve import resolve_functions

    resolved = resolve_functions(
        targets, function=args.function, overrides=_overrides(args),
        parameter_overrides=key_values(args.parameter_overrides, "--parameter-overrides"),
        env_files=args.env_file, env=key_values(args.env, "--env"))
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
        from workbench.core.resolve import resolve_again

        self.latest = resolve_again(self.fn, overrides=self.overrides,
                                    parameter_overrides=self.params, env_files=self.env_files,
                                    env=self.env)
        return self.latest.config

    def describe(self) -> str:
        return self.latest.describe()


def rereader(fn: ResolvedFunction, args: argparse.Namespace) -> Rereader:
    return Rereader(fn, args)


def resolve_config(target: Path, args: argparse.Namespace) -> FunctionConfig:
    from workbench.core.config import ConfigError

    resolved = resolve([target], args)
    if len(resolved) != 1:
        names = ", ".join(fn.config.name for fn in resolved)
        raise ConfigError(f"{target} holds {len(resolved)} functions ({names}); "
                          "pick one with --function")
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

    from workbench.core.config import ConfigError
    from workbench.core.payloads import ServiceError, validate_payload

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
    from workbench.core.builders import builder_for

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
    from workbench.core.builders import builder_for
    from workbench.core.bus import Bus

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
        print(f"workbench: {cfg.name}: the build failed ({builder.kind}); see its output above",
              file=sys.stderr)
    return result.ok


def _changed_text(paths: tuple[str, ...]) -> str:
    if not paths:
        return "no file changed"
    if len(paths) <= 3:
        return ", ".join(paths) + " changed"
    return f"{len(paths)} files changed ({', '.join(paths[:3])}, ...)"


def _reload_line(event: object, quiet: bool) -> str | None:
    """What a reload says on stderr: one line when it worked, the error when it did not."""
    from workbench.core.bus import (
        BuildFinished,
        PinnedCheckFinished,
        ReloadFinished,
        WorkerFailed,
    )

    if isinstance(event, PinnedCheckFinished):
        return _pinned_line(event)
    if isinstance(event, ReloadFinished):
        if not event.ok:
            return (f"workbench: reload of {event.function} failed: {event.error}; "
                    "the last good version keeps serving")
        build = f"build {event.build_ms:.0f} ms; " if event.build_ms is not None else ""
        return (f"workbench: reloaded {event.function} in {event.save_to_ready_ms:.0f} ms "
                f"({_changed_text(event.changed_paths)}; {build}init {event.init_ms or 0:.0f} ms)")
    if isinstance(event, BuildFinished) and quiet and not event.ok and not event.cancelled:
        return f"workbench: build of {event.function} failed:\n{event.output_tail}"
    if isinstance(event, WorkerFailed):
        return f"workbench: {event.function}: {event.worker} stopped: {event.error}"
    return None


def _pinned_line(event: PinnedCheckFinished) -> str:
    shown = event.status.upper() if not event.ok else event.status
    line = f"workbench: pinned {event.function}/{event.event_name}: {shown} ({event.detail})"
    return line + ("\n" + event.diff if event.diff else "")


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


async def _invoke_once(cfg: FunctionConfig, payload: bytes, quiet: bool,
                       event_name: str | None = None) -> int:
    import asyncio

    from workbench.core.bus import Bus
    from workbench.core.function import Function
    from workbench.core.record import InvokeRequest
    from workbench.core.recorder import attach, open_stores_for

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
    from workbench.core.config import ConfigError

    try:
        resolved = resolve(args.dirs, args)
        for fn in resolved:
            _check_runnable(fn.config)
    except ConfigError as exc:
        print(f"workbench: {exc}", file=sys.stderr)
        return None
    return resolved


def cmd_serve(args: argparse.Namespace) -> int:
    import asyncio

    resolved = _runnable(args)
    if resolved is None:
        return EXIT_USAGE
    configs = [fn.config for fn in resolved]
    rereaders = {fn.config.name: rereader(fn, args) for fn in resolved} if args.watch else {}
    try:
        return asyncio.run(_serve(configs, args.host, args.port, args.quiet, args.watch,
                                  rereaders))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"workbench: cannot serve on {args.host}:{args.port}: {exc.strerror or exc}",
              file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


async def _serve(configs: list[FunctionConfig], host: str, port: int, quiet: bool,
                 watch: bool = False,
                 rereaders: dict[str, Callable[[], FunctionConfig]] | None = None) -> int:
    import asyncio

    from workbench.core.bus import (
        Bus,
        InvocationFinished,
        InvocationStarted,
        LogLine,
        ReloadFinished,
    )
    from workbench.core.recorder import attach, open_stores_for

    bus = Bus()
    many = len(configs) > 1
    stores = open_stores_for(configs)
    recorder = attach(bus, stores)

    def show(event: object) -> None:
        if isinstance(event, LogLine):  # most events, by far: nothing else to ask of them
            if not quiet:
                prefix = f"[{event.function}] " if many else ""
                sys.stderr.write(prefix + event.text + "\n")
            return
        if isinstance(event, (InvocationStarted, InvocationFinished)):
            return
        line = _reload_line(event, quiet)
        if line is not None:
            print(line, file=sys.stderr, flush=True)
        if isinstance(event, ReloadFinished) and event.ok and event.function in functions:
            stores.update(functions[event.function].cfg)  # its history bounds may have changed
    bus.subscribe(show)
    functions: dict[str, Invocable] = {}
    checks = None
    try:
        if watch:
            from workbench.core.pinned import PinnedChecks
            from workbench.core.reloader import Reloader

            reloaders = [Reloader(c, bus, resolve=(rereaders or {}).get(c.name))
                         for c in configs]
            functions.update((r.name, r) for r in reloaders)
            checks = PinnedChecks(bus, functions, recorder=recorder)
            try:
                built = [await r.start() for r in reloaders]
            except OSError as exc:  # e.g. the system's limit on watched folders
                print(f"workbench: cannot watch for changes: {exc}", file=sys.stderr)
                return EXIT_USAGE
            failed = [c.name for c, b in zip(configs, built, strict=True) if not b.ok]
        else:
            failed = [c.name for c in configs if not await _build_once(c, quiet)]
            functions.update((c.name, _served(c, bus)) for c in configs)
        if failed:
            print(f"workbench: cannot serve: {', '.join(failed)} did not build",
                  file=sys.stderr)
            return EXIT_USAGE
        return await _serve_api(functions, configs, host, port, watch)
    finally:
        if checks is not None:
            await checks.close()
        await asyncio.gather(*(f.close() for f in functions.values()))
        recorder.detach()
        stores.close()


def _served(cfg: FunctionConfig, bus: Bus) -> Invocable:
    """One environment, or a pool of them when the function's concurrency allows more."""
    from workbench.core.function import Function

    if cfg.concurrency > 1:
        from workbench.core.pool import FunctionPool

        return FunctionPool(cfg, bus)
    return Function(cfg, bus)


async def _serve_api(functions: dict[str, Invocable], configs: list[FunctionConfig], host: str,
                     port: int, watch: bool) -> int:
    import asyncio
    import signal

    from workbench.core.invoke_api import InvokeAPI

    api = InvokeAPI(functions, host=host, port=port, region=configs[0].region)
    await api.start()
    print(f"workbench: serving the Lambda Invoke API on {api.url}", file=sys.stderr)
    for c in configs:
        print(f"  {c.name}: {c.runtime} {c.handler} ({c.code_dir})", file=sys.stderr)
    if watch:
        print("  watching for changes: a save reloads the function", file=sys.stderr)
    print(f"  try: aws lambda invoke --endpoint-url {api.url} --function-name {configs[0].name} "
          "out.json", file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    background: set[asyncio.Task[object]] = set()

    def each(action: str) -> None:  # every function is a Reloader when watching
        for f in functions.values():
            task: asyncio.Task[object] = asyncio.ensure_future(getattr(f, action)())
            background.add(task)
            task.add_done_callback(background.discard)
    if watch:
        loop.add_signal_handler(signal.SIGUSR1, each, "force_cold")
        loop.add_signal_handler(signal.SIGUSR2, each, "reload_now")
    try:
        await stop.wait()
    finally:
        await api.stop()
    return EXIT_OK


def tui_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="workbench", usage="workbench TARGET [TARGET ...] [options]",
        description="Open the workbench TUI on one or more functions (folders or SAM "
                    "templates). Other commands: workbench {invoke,serve,replay,events,history,"
                    "doctor} --help.")
    p.add_argument("dirs", type=Path, nargs="+", metavar="TARGET",
                   help="function folders and/or SAM templates")
    p.add_argument("--no-watch", dest="watch", action="store_false",
                   help="do not reload when files change")
    p.add_argument("--port", type=_port, default=None,
                   help="also serve the Invoke API here (default 9001, or a free port when "
                        "9001 is taken; 0 picks a free one)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address of the Invoke API (default 127.0.0.1)")
    p.add_argument("--no-api", dest="api", action="store_false",
                   help="do not serve the Invoke API")
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
        print("workbench: the TUI needs a terminal; for scripts use `workbench invoke` or "
              "`workbench serve`", file=sys.stderr)
        return EXIT_USAGE
    from workbench.core.session import Session
    from workbench.ui.app import WorkbenchApp

    port = None if not args.api else args.port
    session = Session(configs, watch=args.watch, host=args.host,
                      port=(9001 if port is None else port) if args.api else None,
                      port_fallback=args.api and port is None,
                      resolvers=(readers := {fn.config.name: rereader(fn, args)
                                             for fn in resolved}),
                      describers={name: r.describe for name, r in readers.items()})
    app = WorkbenchApp(session, theme=args.theme)
    return app.run() or EXIT_OK


TOOLCHAINS = (("python", ["python3", "--version"], "Python functions"),
              ("node", ["node", "--version"], "Node.js functions"),
              ("go", ["go", "version"], "Go functions (go.mod)"),
              ("cargo", ["cargo", "--version"], "Rust functions (Cargo.toml)"))


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


def cmd_doctor(args: argparse.Namespace) -> int:
    from workbench.core.config import ConfigError

    try:
        resolved = resolve(args.dirs, args)
    except ConfigError as exc:
        print(f"workbench: {exc}", file=sys.stderr)
        return EXIT_USAGE
    needed: set[str] = set()
    problems = 0
    for fn in resolved:
        print(fn.describe())
        cfg = fn.config
        compilers = {"go": "go", "rust": "cargo"}
        needed.add({"python": "python", "node": "node"}.get(
            cfg.family, compilers.get(cfg.builder or "", "")))
        try:
            _check_runnable(cfg)
        except ConfigError as exc:
            problems += 1
            print(f"  cannot start: {exc}")
        print()
    print("toolchains:")
    lines = _toolchains(needed)
    print("\n".join(lines))
    missing = [line for line in lines if "not found (needed" in line]
    return EXIT_USAGE if problems or missing else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    extra = _extra_commands()
    known = ("invoke", "serve", "doctor", "-h", "--help", "--version", *extra)
    if argv and argv[0] not in known:
        if not Path(argv[0]).exists() and not argv[0].startswith("-"):
            import difflib

            close = difflib.get_close_matches(argv[0], [k for k in known if k[0] != "-"], n=1)
            if close:
                print(f"workbench: {argv[0]!r} is neither a folder nor a command; did you mean "
                      f"`workbench {close[0]}`?", file=sys.stderr)
                return EXIT_USAGE
        return cmd_tui(argv)
    args = parser.parse_args(argv)
    if args.command == "invoke":
        return cmd_invoke(args)
    if args.command == "serve":
        return cmd_serve(args)
    if args.command == "doctor":
        return cmd_doctor(args)
    if args.command in extra:
        return int(extra[args.command].run(args))
    parser.print_help()
    return EXIT_USAGE
