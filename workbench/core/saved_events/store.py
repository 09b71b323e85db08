"""Events: the sample library (sample_catalog), saved events in a function's folder (here) and
the Lambda console's shareable test events (console_events).

Saved events are plain pretty JSON, `events/NAME.json` by default, exactly what is sent to the
function: easy to commit and review. What workbench knows about an event besides its content
(a description, the expected response, the sample it came from) lives in a sidecar,
`events/.meta/NAME.json`, so editing the metadata never changes what is sent.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from workbench.core.saved_events.catalog import (
    Param,
    Sample,
    get_sample,
    list_samples,
    render_sample,
    sample_root,
    services,
)
from workbench.core.saved_events.render import EventError

__all__ = [
    "EventError",
    "Param",
    "Sample",
    "delete_event",
    "events_folder",
    "get_sample",
    "list_pinned",
    "list_samples",
    "list_saved",
    "load_meta",
    "load_saved",
    "pin_event",
    "rename_event",
    "render_sample",
    "sample_root",
    "save_event",
    "save_meta",
    "saved_path",
    "services",
    "validate_name",
]

META_DIR = ".meta"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
RESERVED = {
    "CON",
    "PRN",
    "AUX",
    "NUL",
    *(f"COM{i}" for i in range(1, 10)),
    *(f"LPT{i}" for i in range(1, 10)),
}


def validate_name(name: str) -> str:
    """A saved event's name, safe as a file name everywhere (`.json` is implied and dropped)."""
    stem = name.removesuffix(".json")
    if not NAME.fullmatch(stem) or stem.endswith(".") or stem.split(".")[0].upper() in RESERVED:
        raise EventError(
            f"{name!r} cannot name a saved event: use up to 100 letters, digits, "
            "'.', '-' and '_', starting with a letter or digit"
        )
    return stem


def events_folder(function_dir: Path, events_dir: str = "events") -> Path:
    """The folder a function's saved events live in (its `events_dir` setting)."""
    return function_dir / events_dir


def saved_path(folder: Path, name: str) -> Path:
    return folder / f"{validate_name(name)}.json"


def _meta_path(folder: Path, name: str) -> Path:
    return folder / META_DIR / f"{validate_name(name)}.json"


def list_saved(folder: Path) -> list[str]:
    """Names of the saved events in `folder`, sorted; none when it does not exist."""
    if not folder.is_dir():
        return []
    return sorted(
        p.name.removesuffix(".json")
        for p in folder.glob("*.json")
        if p.is_file() and NAME.fullmatch(p.name.removesuffix(".json"))
    )


def _read_json(path: Path, what: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EventError(f"no {what} at {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EventError(f"cannot read {path}: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise EventError(
            f"{path} is not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None


def load_saved(folder: Path, name: str) -> Any:
    """A saved event's content: exactly what is sent to the function."""
    path = saved_path(folder, name)
    if not path.is_file():
        names = list_saved(folder)
        listed = f"; saved events: {', '.join(names)}" if names else ""
        raise EventError(f"no saved event {name!r} in {folder}{listed}")
    return _read_json(path, "saved event")


def load_meta(folder: Path, name: str) -> dict[str, Any]:
    """A saved event's sidecar metadata (description, expected response, ...); {} when none."""
    path = _meta_path(folder, name)
    if not path.is_file():
        return {}
    meta = _read_json(path, "metadata")
    if not isinstance(meta, dict):
        raise EventError(f"{path} must hold a JSON object")
    return meta


def _write(path: Path, data: Any) -> None:
    """Pretty JSON, written whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as fh:  # "x": the usual permissions (umask)
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_event(
    folder: Path,
    name: str,
    event: Any,
    meta: Mapping[str, Any] | None = None,
    *,
    overwrite: bool = True,
) -> Path:
    """Write `event` to folder/NAME.json. `meta` replaces the sidecar (an empty mapping removes
    it); None leaves any sidecar as it is."""
    path = saved_path(folder, name)
    if not overwrite and path.exists():
        raise EventError(f"a saved event {validate_name(name)!r} already exists in {folder}")
    try:
        json.dumps(event)
    except (TypeError, ValueError) as exc:
        raise EventError(f"event {name!r} is not JSON: {exc}") from None
    _write(path, event)
    if meta is not None:
        save_meta(folder, name, meta)
    return path


def save_meta(folder: Path, name: str, meta: Mapping[str, Any]) -> None:
    path = _meta_path(folder, name)
    if meta:
        _write(path, dict(meta))
    else:
        path.unlink(missing_ok=True)


def rename_event(folder: Path, old: str, new: str) -> Path:
    """Rename a saved event and its sidecar; refuses to replace another event."""
    source, target = saved_path(folder, old), saved_path(folder, new)
    if not source.is_file():
        raise EventError(f"no saved event {old!r} in {folder}")
    if target.exists() and not target.samefile(source):
        raise EventError(f"a saved event {validate_name(new)!r} already exists in {folder}")
    os.replace(source, target)
    meta_source, meta_target = _meta_path(folder, old), _meta_path(folder, new)
    if meta_source.is_file():
        os.replace(meta_source, meta_target)
    return target


def delete_event(folder: Path, name: str) -> None:
    """Delete a saved event and its sidecar."""
    path = saved_path(folder, name)
    if not path.is_file():
        raise EventError(f"no saved event {name!r} in {folder}")
    path.unlink()
    _meta_path(folder, name).unlink(missing_ok=True)


def pin_event(folder: Path, name: str, pinned: bool = True) -> None:
    """Pin a saved event (it runs again after every successful reload, as a check), or unpin
    it. The pin is kept in the sidecar, so the event file stays exactly what is sent."""
    if not saved_path(folder, name).is_file():
        names = list_saved(folder)
        listed = f"; saved events: {', '.join(names)}" if names else ""
        raise EventError(f"no saved event {name!r} in {folder}{listed}")
    meta = load_meta(folder, name)
    if pinned:
        meta["pinned"] = True
    else:
        meta.pop("pinned", None)
    save_meta(folder, name, meta)


def list_pinned(folder: Path) -> list[str]:
    """The pinned saved events of `folder`, sorted by name; a sidecar that cannot be read
    pins nothing (the check would fail on it anyway)."""
    pinned = []
    for name in list_saved(folder):
        try:
            if load_meta(folder, name).get("pinned") is True:
                pinned.append(name)
        except EventError:
            continue
    return pinned
