"""`workbench history [TARGET]`: the invocations recorded in a function folder, newest first."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.commands import ExitCode
from workbench.commands._common import say

if TYPE_CHECKING:
    from workbench.core.history.store import HistoryStore
    from workbench.core.record import InvocationRecord


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "history",
        help="list the invocations recorded for a function",
        description="List the invocations recorded in the function folder's .workbench/ "
        "history (from the CLI, serve, replays and the TUI), newest first.",
    )
    p.add_argument(
        "dir",
        type=Path,
        nargs="?",
        default=Path("."),
        metavar="TARGET",
        help="the function's folder, a SAM template, or a folder holding one "
        "(default: the current folder)",
    )
    p.add_argument(
        "-n",
        "--last",
        type=int,
        default=20,
        metavar="N",
        help="how many invocations to show (default 20)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per line, with the event, response and log",
    )
    p.add_argument("--function", metavar="NAME", help="only this function's invocations")
    p.add_argument(
        "--reloads",
        action="store_true",
        help="list the live reloads instead: files changed, build, init and save-to-ready times",
    )


def run(args: argparse.Namespace) -> int:
    from workbench.core.config.function import ConfigError
    from workbench.core.history.store import HistoryError

    if args.last < 1:
        say("--last must be at least 1")
        return ExitCode.USAGE
    try:
        folders = _folders(args.dir)
        if args.reloads:
            return _show_reloads(folders, args)
        entries = _entries(folders, args.last, args.function)
    except (ConfigError, HistoryError) as exc:
        say(str(exc))
        return ExitCode.USAGE
    if args.json:
        _print_json(entries)
        return ExitCode.OK
    if not entries:
        what = f" of {args.function}" if args.function else ""
        where = ", ".join(str(f) for f in folders) or str(args.dir)
        print(
            f"No invocations{what} recorded yet in {where}. Invoke the function "
            "(workbench invoke, serve, replay or the TUI) and they will show here."
        )
        return ExitCode.OK
    print(_table(entries))
    cut = sum(e.log_truncated for e in entries)
    if cut:
        print(
            f"log cut: {cut} of these invocations logged more than history keeps of one "
            "(its beginning and its end; log_max_mb in workbench.toml, --log-max-mb); "
            "--json shows what was kept"
        )
    return ExitCode.OK


def _folders(target: Path) -> list[Path]:
    """The code folders whose history to read: the folder itself when it has a history (or
    holds no template), else the code folder of each function of its template."""
    from workbench.core.config.function import ConfigError
    from workbench.core.config.resolve import resolve_functions
    from workbench.core.config.settings import display_path
    from workbench.core.config.templates import find_template
    from workbench.core.history.store import DB_NAME, STORE_DIR

    if target.is_dir() and (
        (target / STORE_DIR / DB_NAME).is_file() or find_template(target) is None
    ):
        return [target.resolve()]
    if not target.exists():
        raise ConfigError(f"{display_path(target)}: no such file or folder")
    folders: list[Path] = []
    try:
        resolved = resolve_functions([target])
    except ConfigError:
        # The template does not resolve as it stands (a parameter without a default...):
        # its history is still worth reading, wherever it is under the template's folder.
        found = _stores_under(target if target.is_dir() else target.parent)
        if not found:
            raise
        return found
    for fn in resolved:
        folder = fn.config.code_dir.resolve()
        if folder not in folders:
            folders.append(folder)
    return folders


def _stores_under(top: Path, depth: int = 4) -> list[Path]:
    from workbench.core.history.store import DB_NAME, STORE_DIR

    found: list[Path] = []
    level = [top.resolve()]
    for _ in range(depth + 1):
        below: list[Path] = []
        for folder in level:
            if (folder / STORE_DIR / DB_NAME).is_file():
                found.append(folder)
            try:
                below += sorted(
                    p
                    for p in folder.iterdir()
                    if p.is_dir()
                    and not p.is_symlink()
                    and not p.name.startswith(".")
                    and p.name != "node_modules"
                )
            except OSError:
                continue
        level = below
    return found


def _entries(folders: list[Path], last: int, function: str | None) -> list[InvocationRecord]:
    from workbench.core.history.store import HistoryStore

    entries: list[InvocationRecord] = []
    for folder in folders:
        store: HistoryStore | None = HistoryStore.open_existing(folder)
        if store is None:
            continue
        with store:
            entries += store.last(last, function)
    entries.sort(key=lambda e: (e.started_at, e.id), reverse=True)
    return entries[:last]


def _print_json(entries: list[InvocationRecord]) -> None:
    import json

    from workbench.core.history.store import record_json

    out = sys.stdout
    for entry in entries:
        out.write(json.dumps(record_json(entry), ensure_ascii=False) + "\n")
    out.flush()


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f} ms" if value >= 10 else f"{value:.2f} ms"


def _table(entries: list[InvocationRecord]) -> str:
    import time

    from workbench.core.checks.compare import render_table

    many = len({e.function for e in entries}) > 1
    cut = any(e.log_truncated for e in entries)  # a column only when it says something
    headers = [
        "time",
        *(["function"] if many else []),
        "request",
        "source",
        "event",
        "status",
        "start",
        "duration",
        "billed",
        "init",
        "max mem",
        *(["log"] if cut else []),
    ]
    rows = []
    for e in entries:
        status = e.status if not e.error_type or e.status != "error" else f"error {e.error_type}"
        rows.append(
            [
                time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.started_at)),
                *([e.function] if many else []),
                e.request_id[:8],
                e.source,
                e.event_name or "-",
                status,
                "cold" if e.cold else "warm",
                _ms(e.duration_ms if e.measured else None),
                f"{e.billed_ms} ms" if e.measured else "-",
                _ms(e.init_ms),
                f"{e.max_memory_mb}/{e.memory_mb} MB" if e.measured else f"-/{e.memory_mb} MB",
                *((["cut"] if e.log_truncated else [""]) if cut else []),
            ]
        )
    first = 2 if many else 1
    right = [first + 5, first + 6, first + 7, first + 8]
    return render_table(headers, rows, right)


def _show_reloads(folders: list[Path], args: argparse.Namespace) -> int:
    import json
    import time

    from workbench.core.checks.compare import render_table
    from workbench.core.history.store import HistoryStore, ReloadEntry

    found: list[ReloadEntry] = []
    for folder in folders:
        store = HistoryStore.open_existing(folder)
        if store is not None:
            with store:
                found += store.reloads(args.last, args.function)
    found.sort(key=lambda r: (r.finished_at, r.id), reverse=True)
    found = found[: args.last]
    if args.json:
        for r in found:
            sys.stdout.write(json.dumps(r.to_json(), ensure_ascii=False) + "\n")
        return ExitCode.OK
    if not found:
        print(
            "No reloads recorded yet: `workbench serve DIR --watch` or the TUI reload the "
            "function when its files are saved."
        )
        return ExitCode.OK
    rows = []
    for r in found:
        changed = ", ".join(r.changed_paths[:3]) + (" ..." if len(r.changed_paths) > 3 else "")
        rows.append(
            [
                time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.finished_at)),
                r.function,
                "ok" if r.ok else "failed",
                changed or "(no change)",
                _ms(r.build_ms),
                _ms(r.init_ms),
                _ms(r.save_to_ready_ms),
                (r.error or "").splitlines()[0][:60] if r.error else "",
            ]
        )
    print(
        render_table(
            ["time", "function", "result", "changed", "build", "init", "save to ready", "error"],
            rows,
            [4, 5, 6],
        )
    )
    return ExitCode.OK
