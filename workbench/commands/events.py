"""`workbench events`: the sample event library, saved events, and the Lambda console's
shareable test events."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from workbench.commands import ExitCode
from workbench.commands._common import key_values, say


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "events",
        help="sample events, saved events and the console's shareable test events",
        description="Sample events for 30+ AWS services (names as in `sam local "
        "generate-event SERVICE EVENT`), saved events in a function's folder, and "
        "import/export of the Lambda console's shareable test events.",
    )
    ev = p.add_subparsers(dest="events_command", metavar="ACTION")

    ls = ev.add_parser("list", help="list the sample events (of one service)")
    ls.add_argument("service", nargs="?", help="e.g. s3, apigateway, sqs")

    for name, text in (
        ("show", "a sample's parameters and the event they make"),
        ("new", "a fresh event from a sample, as JSON"),
    ):
        q = ev.add_parser(name, help=text)
        q.add_argument("name", help="SERVICE/EVENT, e.g. s3/put (or SERVICE EVENT, as in SAM)")
        q.add_argument("event", nargs="?", help=argparse.SUPPRESS)
        q.add_argument(
            "--param",
            "-p",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="a sample parameter (repeatable; see `workbench events show`)",
        )
        if name == "new":
            q.add_argument(
                "-o",
                "--output",
                type=Path,
                metavar="FILE",
                help="write the event to FILE instead of printing it",
            )

    sv = ev.add_parser(
        "save",
        help="save an event in a function's folder",
        description="Save an event as DIR/events/NAME.json (the function's "
        "events_dir), exactly what will be sent.",
    )
    sv.add_argument("dir", type=Path, metavar="DIR", help="the function's folder")
    sv.add_argument("name", help="the saved event's name")
    src = sv.add_mutually_exclusive_group(required=True)
    src.add_argument("--from", dest="sample", metavar="SAMPLE", help="render this sample")
    src.add_argument("-e", "--event", metavar="FILE", help="a JSON file, or - for stdin")
    sv.add_argument(
        "--param",
        "-p",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a sample parameter, with --from (repeatable)",
    )
    sv.add_argument("--description", help="kept in the sidecar, not in the event")
    sv.add_argument("--force", action="store_true", help="replace an existing saved event")

    sd = ev.add_parser("saved", help="list a function's saved events (pinned ones marked)")
    sd.add_argument("dir", type=Path, metavar="DIR", help="the function's folder")

    for name, text in (
        (
            "pin",
            "pin a saved event: `serve --watch` runs it again after every "
            "successful reload and checks its response",
        ),
        ("unpin", "stop running a saved event after each reload"),
    ):
        pn = ev.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        pn.add_argument("dir", type=Path, metavar="DIR", help="the function's folder")
        pn.add_argument("name", help="the saved event's name")

    im = ev.add_parser(
        "import",
        help="save the events of a console shareable-test-event document in a function's folder",
    )
    im.add_argument("dir", type=Path, metavar="DIR", help="the function's folder")
    im.add_argument(
        "file",
        metavar="CONSOLE.json",
        help="the schema content (or `aws schemas describe-schema` output), or - for stdin",
    )
    im.add_argument(
        "--replace",
        action="store_true",
        help="overwrite saved events of the same name with other content",
    )

    ex = ev.add_parser(
        "export", help="a function's saved events as a console shareable-test-event document"
    )
    ex.add_argument("dir", type=Path, metavar="DIR", help="the function's folder")
    ex.add_argument("-o", "--output", type=Path, metavar="FILE", help="write it to FILE")
    ex.add_argument(
        "--function", metavar="NAME", help="the deployed function's name, for the upload hint"
    )


def _pairs(items: list[str]) -> dict[str, str]:
    from workbench.core.saved_events.store import EventError

    return key_values(items, "--param", EventError)


def _sample_name(args: argparse.Namespace) -> str:
    return f"{args.name}/{args.event}" if args.event else str(args.name)


def _dump(data: Any) -> str:
    import json

    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _events_dir(function_dir: Path) -> Path:
    from workbench.core.config.settings import load_settings
    from workbench.core.saved_events.store import EventError, events_folder

    if not function_dir.is_dir():
        raise EventError(f"{function_dir} is not a folder (give the function's folder)")
    events_dir = load_settings(function_dir).values.get("events_dir", "events")
    return events_folder(function_dir, str(events_dir))


def _read(source: str) -> str:
    from workbench.core.saved_events.store import EventError

    if source == "-":
        return sys.stdin.read()
    path = Path(source)
    if not path.is_file():
        raise EventError(f"file not found: {source}")
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EventError(f"cannot read {source}: {exc}") from None


def _list(args: argparse.Namespace) -> int:
    from workbench.core.saved_events.store import list_samples

    samples = list_samples(args.service)
    width = max(len(s.name) for s in samples)
    for s in samples:
        aliases = f"  (also {', '.join(s.aliases)})" if s.aliases else ""
        print(f"{s.name:<{width}}  {s.title}{aliases}")
    count = len({s.service for s in samples})
    print(
        f"\n{len(samples)} events, {count} service{'s' if count != 1 else ''}. "
        "`workbench events show NAME` for parameters.",
        file=sys.stderr,
    )
    return ExitCode.OK


def _show(args: argparse.Namespace) -> int:
    from workbench.core.saved_events.catalog import render
    from workbench.core.saved_events.store import get_sample

    sample = get_sample(_sample_name(args))
    event = render(sample, _pairs(args.param))
    print(f"{sample.name}: {sample.title}")
    if sample.aliases:
        print(f"also known as: {', '.join(sample.aliases)}")
    if sample.description:
        print(sample.description)
    print("\nparameters (--param KEY=VALUE):")
    width = max((len(p.name) for p in sample.params), default=0)
    for p in sample.params:
        kind = "" if p.type == "string" else f" [{p.type}]"
        print(f"  {p.name:<{width}}  {p.help}{kind}; default: {p.default!r}")
    if not sample.params:
        print("  (none)")
    if sample.derived:
        print(f"\ncomputed on every use: {', '.join(sample.derived)}")
    print()
    sys.stdout.write(_dump(event))
    return ExitCode.OK


def _new(args: argparse.Namespace) -> int:
    from workbench.core.saved_events.store import render_sample

    event = render_sample(_sample_name(args), _pairs(args.param))
    if _output(event, args.output):
        say(f"wrote {args.output}")
    return ExitCode.OK


def _output(doc: object, path: Path | None) -> bool:
    """Pretty JSON on stdout, or into `path`; True when it went to a file."""
    from workbench.core.saved_events.store import EventError

    if path is None:
        sys.stdout.write(_dump(doc))
        return False
    try:
        path.write_text(_dump(doc), encoding="utf-8")
    except OSError as exc:
        raise EventError(f"cannot write {path}: {exc.strerror or exc}") from None
    return True


def _save(args: argparse.Namespace) -> int:
    import json

    from workbench.core.saved_events.store import EventError, load_meta, render_sample, save_event

    folder = _events_dir(args.dir)
    meta: dict[str, Any] = {}
    if args.sample:
        params = _pairs(args.param)
        event: Any = render_sample(args.sample, params)
        meta["sample"] = args.sample
        if params:
            meta["params"] = params
    else:
        if args.param:
            raise EventError("--param goes with --from SAMPLE")
        try:
            event = json.loads(_read(args.event))
        except json.JSONDecodeError as exc:
            raise EventError(
                f"{args.event} is not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}"
            ) from None
    if args.description:
        meta["description"] = args.description
    old = load_meta(folder, args.name) if args.force else {}
    path = save_event(
        folder, args.name, event, {**old, **meta} if meta else None, overwrite=args.force
    )
    say(f"saved {path}")
    return ExitCode.OK


def _saved(args: argparse.Namespace) -> int:
    from workbench.core.saved_events.store import list_saved, load_meta

    folder = _events_dir(args.dir)
    names = list_saved(folder)
    if not names:
        say(f"no saved events in {folder}")
        return ExitCode.OK
    width = max(len(n) for n in names)
    for name in names:
        meta = load_meta(folder, name)
        mark = "[pinned] " if meta.get("pinned") is True else ""
        print(f"{name:<{width}}  {mark}{meta.get('description', '')}".rstrip())
    return ExitCode.OK


def _pin(args: argparse.Namespace) -> int:
    from workbench.core.saved_events.store import pin_event, validate_name

    pinned = args.events_command == "pin"
    folder = _events_dir(args.dir)
    pin_event(folder, args.name, pinned)
    name = validate_name(args.name)
    what = (
        "pinned: `workbench serve --watch` checks it after every successful reload"
        if pinned
        else "unpinned"
    )
    say(f"{name} {what}")
    return ExitCode.OK


def _import(args: argparse.Namespace) -> int:
    from workbench.core.saved_events.console import import_into_folder

    folder = _events_dir(args.dir)
    statuses = import_into_folder(folder, _read(args.file), replace=args.replace)
    for name, status in statuses:
        print(f"  {name}: {status}", file=sys.stderr)
    say(f"{len(statuses)} event{'s' if len(statuses) != 1 else ''} in {folder}")
    return ExitCode.OK


def _export(args: argparse.Namespace) -> int:
    from workbench.core.saved_events.console import (
        REGISTRY,
        SCHEMA_TYPE,
        export_folder,
        schema_name,
    )

    document = export_folder(_events_dir(args.dir))
    if not _output(document, args.output):
        return ExitCode.OK
    count = len(document["components"]["examples"])
    say(
        f"wrote {count} event{'s' if count != 1 else ''} to {args.output}; to share "
        f"them in the console:\n  aws schemas update-schema --registry-name {REGISTRY} "
        f"--schema-name {schema_name(args.function or 'FUNCTION')} --type {SCHEMA_TYPE} "
        f"--content file://{args.output}\n  (create-schema the first time)"
    )
    return ExitCode.OK


ACTIONS = {
    "list": _list,
    "show": _show,
    "new": _new,
    "save": _save,
    "saved": _saved,
    "pin": _pin,
    "unpin": _pin,
    "import": _import,
    "export": _export,
}


def run(args: argparse.Namespace) -> int:
    from workbench.core.config.function import ConfigError
    from workbench.core.saved_events.store import EventError

    action = ACTIONS.get(args.events_command or "")
    if action is None:
        say("events needs an action: " + ", ".join(ACTIONS))
        return ExitCode.USAGE
    try:
        return action(args)
    except (EventError, ConfigError) as exc:
        say(str(exc))
        return ExitCode.USAGE
    except BrokenPipeError:
        return ExitCode.OK
