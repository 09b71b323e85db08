"""`workbench replay TARGET [EVENT ...]`: run saved events (or past invocations) against the
current code, in one warm environment, and with --check compare each response with the
expected one (the event's `.meta/NAME.json` "expected") or the last one recorded for it."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.commands import ExitCode
from workbench.commands._common import (
    cancel_on_termination,
    check_runnable,
    function_flags,
    print_logs,
    resolve_config,
    say,
)

if TYPE_CHECKING:
    from workbench.core.checks.judge import Baseline
    from workbench.core.config.function import FunctionConfig
    from workbench.core.history.recorder import Stores
    from workbench.core.history.store import HistoryStore
    from workbench.core.record import InvocationRecord, InvokeRequest


class UsageError(Exception):
    pass


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "replay",
        help="run saved events or past invocations again and check the responses",
        description="Run saved events (default: every events/*.json) or the last N recorded "
        "invocations against the current code, one after another in one "
        "environment, and print a table. With --check, compare each response with "
        'the expected one ("expected" in events/.meta/NAME.json) or else the last '
        "recorded for that event; exit 1 on any difference or function error.",
    )
    p.add_argument(
        "dir",
        type=Path,
        metavar="TARGET",
        help="the function's folder, a SAM template, or a folder holding one",
    )
    p.add_argument(
        "events",
        nargs="*",
        metavar="EVENT",
        help="saved event names (file names in the events folder, without .json) "
        "or event files; default: all saved events",
    )
    p.add_argument(
        "--from-history",
        type=int,
        metavar="N",
        help="replay the last N recorded invocations instead (oldest first)",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="compare each response with the expected or last recorded one",
    )
    p.add_argument("--junit", type=Path, metavar="FILE", help="write JUnit XML results to FILE")
    p.add_argument("--json", action="store_true", help="print the results as one JSON document")
    p.add_argument("--logs", action="store_true", help="print the function's logs on stderr")
    function_flags(p)
    _allow_events_after_options(p)


def _allow_events_after_options(p: argparse.ArgumentParser) -> None:
    """`replay DIR --check alice`: argparse fills EVENT... from the first run of positionals
    only and calls the rest unrecognised; take those as more events."""
    parse = p.parse_known_args

    def parse_known_args(args: Any = None, namespace: Any = None) -> Any:
        ns, extras = parse(args, namespace)
        more = [a for a in extras if not a.startswith("-")]
        ns.events = [*(ns.events or []), *more]
        return ns, [a for a in extras if a.startswith("-")]

    p.parse_known_args = parse_known_args  # type: ignore[method-assign]


@dataclass
class Case:
    name: str  # what the table shows
    event_name: str | None  # recorded in history with the replay (saved events by name)
    request: InvokeRequest
    baseline: Baseline | None = None


@dataclass
class Outcome:
    case: Case
    record: InvocationRecord
    verdict: str = ""  # ok, error; with --check: pass, diff, new, error
    diff: str | None = None
    detail: str = ""


@dataclass
class Run:
    cfg: FunctionConfig
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.verdict in ("diff", "error")]


def run(args: argparse.Namespace) -> int:
    import asyncio

    from workbench.core.config.function import ConfigError
    from workbench.core.history.recorder import open_stores_for
    from workbench.core.history.store import HistoryError

    if args.from_history is not None and args.events:
        say("give EVENT names or --from-history N, not both")
        return ExitCode.USAGE
    if args.from_history is not None and args.from_history < 1:
        say("--from-history must be at least 1")
        return ExitCode.USAGE
    try:
        cfg = resolve_config(args.dir, args)
        check_runnable(cfg, warn=True)
    except ConfigError as exc:
        say(str(exc))
        return ExitCode.USAGE
    stores = open_stores_for([cfg])
    try:
        try:
            store = stores(cfg.name)
        except HistoryError as exc:
            if args.from_history is not None:
                raise UsageError(str(exc)) from None
            say(f"warning: {exc}; replaying without history")
            store = None
        if args.from_history is not None:
            cases = _history_cases(cfg, store, args.from_history)
        else:
            cases = _event_cases(cfg, store, args.events)
        try:
            result = asyncio.run(_replay(cfg, cases, stores, args.logs))
        except KeyboardInterrupt:
            say("interrupted; the function was stopped.")
            return ExitCode.INTERRUPTED
        if result is None:
            say("terminated; the function was stopped.")
            return ExitCode.INTERRUPTED
        _judge(result, args.check)
        if args.check and store is not None:
            _mark(store, result)
    except UsageError as exc:
        say(str(exc))
        return ExitCode.USAGE
    finally:
        stores.close()
    if args.junit is not None:
        try:
            _write_junit(result, args.junit)
        except OSError as exc:
            say(f"cannot write {args.junit}: {exc}")
            return ExitCode.USAGE
    if args.json:
        _print_json(result, args.check)
    else:
        _print_report(result, args.check)
    return ExitCode.FAILED if result.failed else ExitCode.OK


# ---- what to run ----


def _saved_events(cfg: FunctionConfig) -> dict[str, Path]:
    folder = cfg.code_dir / cfg.events_dir
    if not folder.is_dir():
        return {}
    return {
        p.stem: p
        for p in sorted(folder.glob("*.json"))
        if p.is_file() and not p.name.startswith(".")
    }


def _payload(data: bytes, where: str) -> bytes:
    from workbench.core.engine.payloads import ServiceError, validate_payload

    try:
        return validate_payload(data)
    except ServiceError as exc:
        raise UsageError(f"{where}: {exc.code}: {exc.message}") from None


def _shown(path: Path) -> str:
    from workbench.core.config.settings import display_path

    return display_path(path)


def _event_cases(cfg: FunctionConfig, store: HistoryStore | None, names: list[str]) -> list[Case]:
    from workbench.core.checks.judge import CheckError, baseline_for
    from workbench.core.record import InvokeRequest

    saved = _saved_events(cfg)
    chosen: list[tuple[str, Path, bool]] = []
    for name in names or list(saved):
        if name in saved:
            chosen.append((name, saved[name], True))
        elif name.endswith(".json") and name[:-5] in saved:
            chosen.append((name[:-5], saved[name[:-5]], True))
        elif Path(name).is_file():
            chosen.append((Path(name).stem, Path(name), False))
        else:
            known = ", ".join(saved) or "none"
            raise UsageError(
                f"no saved event {name!r} in {_shown(cfg.code_dir / cfg.events_dir)}"
                f" (saved events: {known}), and no such file"
            )
    if not chosen:
        raise UsageError(
            f"{cfg.name} has no saved events in "
            f"{_shown(cfg.code_dir / cfg.events_dir)} (*.json); save some, name "
            "event files, or replay recorded invocations with --from-history N"
        )
    cases = []
    for name, path, is_saved in chosen:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise UsageError(f"{_shown(path)}: {exc.strerror or exc}") from None
        payload = _payload(data, _shown(path))
        try:
            baseline = baseline_for(cfg, store, name, saved=is_saved)
        except CheckError as exc:
            raise UsageError(str(exc)) from None
        cases.append(Case(name, name, InvokeRequest(payload, source="replay"), baseline))
    return cases


def _history_cases(cfg: FunctionConfig, store: HistoryStore | None, n: int) -> list[Case]:
    from workbench.core.checks.judge import Baseline, history_label

    if store is None:
        raise UsageError(f"{cfg.name} has no recorded history")
    entries = list(reversed(store.last(n, cfg.name)))  # in the order they first ran
    if not entries:
        raise UsageError(
            f"no invocations of {cfg.name} recorded yet in {_shown(store.dir)}; invoke it first"
        )
    cases = []
    for e in entries:
        name = f"#{e.id} {e.event_name}" if e.event_name else f"#{e.id} {e.request_id[:8]}"
        cases.append(
            Case(
                name,
                e.event_name,
                e.replay_request(),
                Baseline(e.response, history_label(e)),
            )
        )
    return cases


# ---- running ----


async def _replay(cfg: FunctionConfig, cases: list[Case], stores: Stores, logs: bool) -> Run | None:
    import asyncio
    import time

    from workbench.core.bus import Bus
    from workbench.core.engine.function import Function
    from workbench.core.history.recorder import attach

    bus = Bus()
    if logs:
        bus.subscribe(print_logs)
    recorder = attach(bus, stores)
    function = Function(cfg, bus)
    cancel_on_termination()
    result = Run(cfg)
    t0 = time.monotonic()
    try:
        for case in cases:
            handle = function.start_invoke(case.request)
            recorder.name_event(handle.request_id, case.event_name)
            result.outcomes.append(Outcome(case, await handle.record))
    except asyncio.CancelledError:
        return None
    finally:
        await function.close()
        recorder.detach()
    result.seconds = time.monotonic() - t0
    return result


# ---- judging and reporting ----


def _judge(result: Run, check: bool) -> None:
    from workbench.core.checks.judge import judge

    for o in result.outcomes:
        verdict = judge(o.record, o.case.baseline, check)
        o.verdict, o.diff, o.detail = verdict.status, verdict.diff, verdict.detail


def _mark(store: HistoryStore, result: Run) -> None:
    """Keep each verdict with its record: a response found different is no baseline."""
    import sqlite3

    try:
        for o in result.outcomes:
            store.mark_checked(o.record.request_id, o.verdict)
    except sqlite3.Error as exc:
        say(f"warning: cannot note the check results in history: {exc}")


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f} ms" if value >= 10 else f"{value:.2f} ms"


def _print_report(result: Run, check: bool) -> None:
    from workbench.core.checks.compare import render_table

    headers = ["event", "status", "duration", "billed", "start", *(["check"] if check else [])]
    rows = []
    for o in result.outcomes:
        rec = o.record
        status = rec.status if rec.status != "error" else f"error {rec.error_type or ''}".strip()
        rows.append(
            [
                o.case.name,
                status,
                _ms(rec.duration_ms),
                f"{rec.billed_ms} ms",
                "cold" if rec.cold else "warm",
                *(
                    [o.verdict.upper() if o.verdict in ("diff", "error") else o.verdict]
                    if check
                    else []
                ),
            ]
        )
    out = [render_table(headers, rows, right=[2, 3])]
    for o in result.outcomes:
        if o.verdict == "diff":
            out += ["", f"{o.case.name}: the response {o.detail}", o.diff or ""]
        elif o.verdict == "error":
            out += ["", f"{o.case.name}: {o.detail}"]
            tail = [line for line in o.record.log_lines if line.strip()][-8:]
            out += [f"  | {line}" for line in tail]
    out += ["", _summary(result, check)]
    sys.stdout.write("\n".join(out) + "\n")
    sys.stdout.flush()


def _summary(result: Run, check: bool) -> str:
    counts: dict[str, int] = {}
    for o in result.outcomes:
        counts[o.verdict] = counts.get(o.verdict, 0) + 1
    inits = sum(1 for o in result.outcomes if o.record.cold)
    n = len(result.outcomes)
    words = {
        "pass": "passed",
        "diff": "differed",
        "new": "with nothing to compare with",
        "ok": "ok",
        "error": "failed with an error",
    }
    order = ("pass", "diff", "new", "error") if check else ("ok", "error")
    parts = [f"{counts[k]} {words[k]}" for k in order if counts.get(k)]
    line = (
        f"{n} event{'s' if n != 1 else ''} replayed in {result.seconds:.2f} s "
        f"({inits} cold start{'s' if inits != 1 else ''}): {', '.join(parts)}"
    )
    if counts.get("new"):
        line += (
            "\n(responses without an expected one are now recorded; the next --check "
            "compares with them)"
        )
    return line


def _print_json(result: Run, check: bool) -> None:
    import json

    from workbench.core.history.store import decode_json

    items = []
    for o in result.outcomes:
        rec = o.record
        item: dict[str, Any] = {
            "event": o.case.name,
            "event_name": o.case.event_name,
            "request_id": rec.request_id,
            "status": rec.status,
            "verdict": o.verdict,
            "cold": rec.cold,
            "duration_ms": rec.duration_ms,
            "billed_ms": rec.billed_ms,
            "init_ms": rec.init_ms,
            "max_memory_mb": rec.max_memory_mb,
            "error_type": rec.error_type,
            "baseline": o.case.baseline.label if o.case.baseline else None,
            "diff": o.diff,
            "detail": o.detail or None,
        }
        ok, doc = decode_json(rec.result.payload)
        if ok:
            item["response"] = doc
        else:
            import base64

            item["response_base64"] = base64.b64encode(rec.result.payload).decode("ascii")
        items.append(item)
    doc_out = {
        "function": result.cfg.name,
        "code_dir": str(result.cfg.code_dir),
        "check": check,
        "passed": not result.failed,
        "cold_starts": sum(1 for o in result.outcomes if o.record.cold),
        "seconds": round(result.seconds, 3),
        "results": items,
    }
    sys.stdout.write(json.dumps(doc_out, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _xml_text(text: str) -> str:
    """XML 1.0 cannot hold most control characters (ANSI colours in logs): drop them."""
    import re

    return re.sub(r"[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]", "", text)


def _write_junit(result: Run, path: Path) -> None:
    import socket
    import time
    import xml.etree.ElementTree as ET

    failures = sum(1 for o in result.outcomes if o.verdict == "diff")
    errors = sum(1 for o in result.outcomes if o.verdict == "error")
    n = len(result.outcomes)
    total = f"{result.seconds:.3f}"
    root = ET.Element(
        "testsuites",
        name="workbench replay",
        tests=str(n),
        failures=str(failures),
        errors=str(errors),
        time=total,
    )
    suite = ET.SubElement(
        root,
        "testsuite",
        name=result.cfg.name,
        tests=str(n),
        failures=str(failures),
        errors=str(errors),
        skipped="0",
        time=total,
        timestamp=time.strftime("%Y-%m-%dT%H:%M:%S"),
        hostname=socket.gethostname(),
    )
    for o in result.outcomes:
        rec = o.record
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"workbench.replay.{result.cfg.name}",
            name=o.case.name,
            time=f"{rec.duration_ms / 1000:.3f}",
        )
        if o.verdict == "diff":
            fail = ET.SubElement(
                case,
                "failure",
                type="ResponseMismatch",
                message=_xml_text(f"the response {o.detail}"),
            )
            fail.text = _xml_text(o.diff or "")
        elif o.verdict == "error":
            err = ET.SubElement(
                case, "error", type=rec.error_type or rec.status, message=_xml_text(o.detail)
            )
            err.text = _xml_text(rec.result.payload.decode("utf-8", "replace"))
        out = ET.SubElement(case, "system-out")
        out.text = _xml_text(rec.log_text())
    ET.indent(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
