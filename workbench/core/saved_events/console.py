"""The Lambda console's shareable test events, so a team's console events and local events are
one set.

The console keeps a function's shareable test events as one schema in the EventBridge schema
registry `lambda-testevent-schemas`, named `_<function name>-schema`, of type `OpenApi3`. Its
content is an OpenAPI 3 document; the events are its `components.examples`, each
`{"value": EVENT}` under the event's name, beside a schema of their shape in
`components.schemas` (the console reads only the examples):

    {"openapi": "3.0.0", "info": {"version": "1.0.0", "title": "Event"}, "paths": {},
     "components": {"schemas": {"Event": {...}},
                    "examples": {"my-event": {"value": {...}}}}}

`aws schemas describe-schema --registry-name lambda-testevent-schemas --schema-name
_FN-schema` prints that document as the string `Content`; import takes either form, and export
writes the document (for `aws schemas update-schema ... --type OpenApi3 --content file://F`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from workbench.core.saved_events.store import (
    EventError,
    list_saved,
    load_meta,
    load_saved,
    save_event,
    save_meta,
    saved_path,
    validate_name,
)

REGISTRY = "lambda-testevent-schemas"
SCHEMA_TYPE = "OpenApi3"
MAX_EVENT_BYTES = 6_144_000  # the most the console will keep for one event (Lambda's payload)


def schema_name(function_name: str) -> str:
    """The registry schema that holds a function's shareable test events."""
    return f"_{function_name}-schema"


def _document(document: Any) -> dict[str, Any]:
    if isinstance(document, bytes | str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError as exc:
            raise EventError(
                f"not a JSON document: line {exc.lineno} column {exc.colno}: {exc.msg}"
            ) from None
    if isinstance(document, dict) and isinstance(document.get("Content"), str):
        return _document(document["Content"])  # a describe-schema response
    if not isinstance(document, dict) or not isinstance(document.get("components"), dict):
        raise EventError(
            "not a Lambda console test event document: it needs an OpenAPI "
            "`components` object holding `examples`"
        )
    return document


def import_console(document: Any) -> list[tuple[str, Any]]:
    """The (name, event) pairs of a console shareable-test-event document, in its order.
    `document` may be the OpenAPI document (parsed or as text) or a describe-schema response."""
    examples = _document(document)["components"].get("examples", {})
    if not isinstance(examples, dict):
        raise EventError("components.examples must be an object of named examples")
    events = []
    for name, example in examples.items():
        if not isinstance(example, dict) or "value" not in example:
            raise EventError(f"example {name!r} has no `value` (externalValue is not supported)")
        events.append((name, example["value"]))
    return events


def export_console(
    events: Iterable[tuple[str, Any]] | Mapping[str, Any], title: str = "Event"
) -> dict[str, Any]:
    """A console shareable-test-event document holding `events`, with a schema of their shape."""
    pairs = list(events.items()) if isinstance(events, Mapping) else list(events)
    examples: dict[str, Any] = {}
    schema: dict[str, Any] | None = None
    for name, event in pairs:
        if name in examples:
            raise EventError(f"two events are named {name!r}")
        size = len(json.dumps(event).encode())
        if size > MAX_EVENT_BYTES:
            raise EventError(
                f"event {name!r} is {size} bytes; the console keeps at most {MAX_EVENT_BYTES}"
            )
        examples[name] = {"value": event}
        shape = infer_schema(event)
        schema = shape if schema is None else merge_schemas(schema, shape)
    return {
        "openapi": "3.0.0",
        "info": {"version": "1.0.0", "title": title},
        "paths": {},
        "components": {"schemas": {title: schema or {"type": "object"}}, "examples": examples},
    }


def infer_schema(value: Any) -> dict[str, Any]:
    """An OpenAPI 3.0 schema describing `value`."""
    if isinstance(value, dict):
        return {
            "type": "object",
            "required": list(value),
            "properties": {k: infer_schema(v) for k, v in value.items()},
        }
    if isinstance(value, list):
        items: dict[str, Any] = {}
        for item in value:
            items = infer_schema(item) if not items else merge_schemas(items, infer_schema(item))
        return {"type": "array", "items": items}
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "integer"}
    if isinstance(value, float):
        return {"type": "number"}
    if isinstance(value, str):
        return {"type": "string"}
    return {"nullable": True}


def merge_schemas(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """A schema both shapes satisfy: properties united, required ones only if both require."""
    if a.get("nullable") and "type" not in a:
        return {**b, "nullable": True}
    if b.get("nullable") and "type" not in b:
        return {**a, "nullable": True}
    kinds = {a.get("type"), b.get("type")}
    if kinds == {"integer", "number"}:
        return {"type": "number"}
    if len(kinds) != 1:
        return {}
    if a.get("type") == "object":
        props = dict(a.get("properties", {}))
        for key, sub in b.get("properties", {}).items():
            props[key] = merge_schemas(props[key], sub) if key in props else sub
        both = set(b.get("required", []))
        return {
            "type": "object",
            "required": [k for k in a.get("required", []) if k in both],
            "properties": props,
        }
    if a.get("type") == "array":
        left, right = a.get("items", {}), b.get("items", {})
        return {
            "type": "array",
            "items": merge_schemas(left, right) if left and right else left or right,
        }
    return a


def export_folder(folder: Path, title: str = "Event") -> dict[str, Any]:
    """Every saved event of a folder as one console document."""
    names = list_saved(folder)
    if not names:
        raise EventError(f"no saved events in {folder}")
    return export_console([(name, load_saved(folder, name)) for name in names], title)


def import_into_folder(folder: Path, document: Any, replace: bool = False) -> list[tuple[str, str]]:
    """Save a console document's events in `folder`; (name, "new" | "replaced" | "unchanged")
    for each. An existing event with other content is an error unless `replace`."""
    events = import_console(document)
    bad = [name for name, _ in events if not _valid(name)]
    if bad:
        raise EventError(
            f"cannot save {', '.join(map(repr, bad))}: a saved event's name is "
            "letters, digits, '.', '-' and '_'"
        )
    statuses = []
    for name, event in events:
        path = saved_path(folder, name)
        if not path.exists():
            statuses.append((name, "new"))
        elif load_saved(folder, name) == event:
            statuses.append((name, "unchanged"))
        elif replace:
            statuses.append((name, "replaced"))
        else:
            statuses.append((name, "conflict"))
    conflicts = [name for name, status in statuses if status == "conflict"]
    if conflicts:
        raise EventError(
            f"{', '.join(conflicts)} already saved in {folder} with other content; "
            "import with --replace to overwrite"
        )
    descriptions = _descriptions(document)
    for (name, event), (_, status) in zip(events, statuses, strict=True):
        if status != "unchanged":
            save_event(folder, name, event)
        if name in descriptions and load_meta(folder, name).get("description") is None:
            save_meta(folder, name, {**load_meta(folder, name), "description": descriptions[name]})
    return statuses


def _valid(name: str) -> bool:
    try:
        return validate_name(name) == name
    except EventError:
        return False


def _descriptions(document: Any) -> dict[str, str]:
    examples = _document(document)["components"].get("examples", {})
    out = {}
    for name, example in examples.items():
        text = example.get("summary") or example.get("description")
        if isinstance(text, str) and text:
            out[name] = text
    return out
