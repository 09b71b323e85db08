"""Turning a sample event template into an event: parameters in, derived values computed,
`{{placeholders}}` replaced, then transforms applied at paths (JSON inside a string,
gzip + base64).

A placeholder that is a whole JSON string (`"{{size}}"`) takes the value with its type (a number
stays a number, a list stays a list); one inside a longer string is replaced by its text.
Derived values are computed fresh on every render from one clock reading, so an event's
timestamps agree with each other and ids differ between two renders. Each is
`{"fn": NAME, ...}`, in order, able to use parameters and earlier derived values:

    uuid                      a fresh UUID
    hex / digits / alnum / b64   random text: len (default 16); hex takes upper, alnum takes
                              case ("upper" / "lower"); b64 is base64 of len random bytes
    now                       the clock in `format` (see time_text), shifted by offset_s
    md5 / sha256 / base64 / length / bytes / urlencode / lstrip / replace   of the value `of`
    format                    `text` with its placeholders filled
    merge                     the object `base` (placeholders filled) updated with `of`
    query_single / query_multi / query_joined   a raw query string as API Gateway parses it
    ddb_image / ddb_keys / ddb_size   DynamoDB attribute values, keys (`keys`: names) and size
                              from plain JSON items
    log_events                CloudWatch Logs events, one per line of `of`

`"str": true` turns the result into text (a header's content-length, say).
"""

from __future__ import annotations

import base64
import email.utils
import gzip
import hashlib
import json
import re
import secrets
import string
import urllib.parse
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

PLACEHOLDER = re.compile(r"\{\{([A-Za-z_][A-Za-z0-9_]*)\}\}")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
TYPES = ("string", "integer", "number", "boolean", "json")


class EventError(ValueError):
    """A problem with an event, a sample or a saved event, worded for the person to fix it."""


def convert(name: str, raw: str, kind: str) -> Any:
    """A parameter's text as the type its sample declares."""
    try:
        if kind == "integer":
            return int(raw)
        if kind == "number":
            number = float(raw)
            return int(number) if number.is_integer() and "." not in raw else number
        if kind == "json":
            return json.loads(raw)
    except ValueError:
        what = "valid JSON" if kind == "json" else f"a{'n' if kind == 'integer' else ''} {kind}"
        raise EventError(f"parameter {name}={raw!r} is not {what}") from None
    if kind == "boolean":
        lowered = raw.strip().lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise EventError(f"parameter {name}={raw!r} is not a boolean (true or false)")
    return raw


# -- clock formats ------------------------------------------------------------------------------


def time_text(fmt: str, when: datetime) -> Any:
    """`when` (UTC) in one of the formats AWS services put in events."""
    ms = f"{when.microsecond // 1000:03d}"
    stamp = when.timestamp()
    formats: dict[str, Callable[[], Any]] = {
        "iso": lambda: when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "iso_ms": lambda: when.strftime("%Y-%m-%dT%H:%M:%S.") + ms + "Z",
        "iso_ms_offset": lambda: when.strftime("%Y-%m-%dT%H:%M:%S.") + ms + "+0000",
        "epoch_s": lambda: int(stamp),
        "epoch_s_str": lambda: str(int(stamp)),
        "epoch_s_float": lambda: round(stamp, 3),
        "epoch_ms": lambda: int(stamp * 1000),
        "epoch_ms_str": lambda: str(int(stamp * 1000)),
        "epoch_hex": lambda: f"{int(stamp):08x}",  # X-Amzn-Trace-Id: Root=1-<this>-<24 hex>
        "iso_ms_naive": lambda: when.strftime("%Y-%m-%dT%H:%M:%S.") + ms,  # stream labels
        # API Gateway's requestTime: 09/Apr/2015:12:34:56 +0000 (month names not localised)
        "clf": lambda: f"{when:%d}/{MONTHS[when.month - 1]}/{when:%Y:%H:%M:%S} +0000",
        "http": lambda: email.utils.format_datetime(when, usegmt=True),
        "rfc2822": lambda: email.utils.format_datetime(when),
        "amz_date": lambda: when.strftime("%Y%m%dT%H%M%SZ"),
        # RabbitMQ basicProperties.timestamp: Jan 1, 1970, 12:33:41 AM
        "mdy_12h": lambda: (
            f"{MONTHS[when.month - 1]} {when.day}, {when.year}, "
            f"{(when.hour % 12) or 12}:{when:%M:%S} "
            f"{'AM' if when.hour < 12 else 'PM'}"
        ),
    }
    if fmt not in formats:
        raise EventError(f"unknown time format {fmt!r}; known: {', '.join(formats)}")
    return formats[fmt]()


# -- DynamoDB -----------------------------------------------------------------------------------


def ddb_value(value: Any) -> dict[str, Any]:
    """A plain JSON value in DynamoDB's attribute-value form."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, list):
        return {"L": [ddb_value(v) for v in value]}
    if isinstance(value, dict):
        return {"M": {str(k): ddb_value(v) for k, v in value.items()}}
    raise EventError(f"cannot express {value!r} as a DynamoDB attribute")


def _ddb_value_size(value: Any) -> int:
    """Roughly as DynamoDB counts item size: UTF-8 bytes of strings, ~1 byte per 2 digits."""
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, int | float):
        return len(str(value).lstrip("-").replace(".", "")) // 2 + 1
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, list):
        return 3 + sum(1 + _ddb_value_size(v) for v in value)
    if isinstance(value, dict):
        return 3 + sum(1 + len(str(k).encode()) + _ddb_value_size(v) for k, v in value.items())
    return 0


def _item(name: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise EventError(f"parameter {name} must be a JSON object (an item), got {value!r}")
    return value


# -- derived values -----------------------------------------------------------------------------


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def derive(
    specs: Mapping[str, Mapping[str, Any]], values: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """Each derived value in order; later ones may use earlier ones and any parameter."""
    out = dict(values)
    for name, spec in specs.items():
        value = _derive_one(name, spec, out, now)
        out[name] = str(value) if spec.get("str") else value
    return out


def _derive_one(
    name: str, spec: Mapping[str, Any], values: Mapping[str, Any], now: datetime
) -> Any:
    fn = spec.get("fn")

    def of(key: str = "of") -> Any:
        source = spec.get(key)
        if not isinstance(source, str) or source not in values:
            raise EventError(f"derived value {name}: {key}={source!r} names no value")
        return values[source]

    length = int(spec.get("len", 16))
    if fn == "uuid":
        return str(uuid.uuid4())
    if fn == "hex":
        text = secrets.token_hex((length + 1) // 2)[:length]
        return text.upper() if spec.get("upper") else text
    if fn == "digits":
        return _random("123456789", 1) + _random(string.digits, length - 1)
    if fn == "alnum":
        letters = {"upper": string.ascii_uppercase, "lower": string.ascii_lowercase}.get(
            str(spec.get("case")), string.ascii_letters
        )
        return _random(letters + string.digits, length)
    if fn == "b64":
        return base64.b64encode(secrets.token_bytes(length)).decode()
    if fn == "now":
        return time_text(
            str(spec.get("format", "iso")), now + timedelta(seconds=float(spec.get("offset_s", 0)))
        )
    if fn == "md5":
        return hashlib.md5(_text(of()).encode()).hexdigest()
    if fn == "sha256":
        return hashlib.sha256(_text(of()).encode()).hexdigest()
    if fn == "base64":
        return base64.b64encode(_text(of()).encode()).decode()
    if fn == "urlencode":
        return urllib.parse.quote_plus(_text(of()), safe="/")
    if fn == "replace":
        return _text(of()).replace(str(spec.get("old", "")), str(spec.get("new", "")))
    if fn == "format":
        return _inline(str(spec.get("text", "")), values)
    if fn == "merge":
        extra = _item(str(spec.get("of")), of())
        return {**substitute(dict(spec.get("base", {})), values), **extra}
    if fn == "lstrip":
        return _text(of()).lstrip(str(spec.get("chars", "/")))
    if fn in ("query_single", "query_multi", "query_joined"):
        return _query(fn, _text(of()))
    if fn == "length":
        return len(_text(of()).encode())
    if fn == "bytes":
        return list(_text(of()).encode())
    if fn == "ddb_image":
        return {k: ddb_value(v) for k, v in _item(str(spec["of"]), of()).items()}
    if fn == "ddb_keys":
        item = _item(str(spec["of"]), of())
        keys = [k.strip() for k in str(of("keys")).split(",") if k.strip()]
        missing = [k for k in keys if k not in item]
        if missing:
            raise EventError(f"the item has no key attribute {', '.join(missing)}: {item!r}")
        return {k: ddb_value(item[k]) for k in keys}
    if fn == "ddb_size":
        sources = spec.get("of", [])
        names = [sources] if isinstance(sources, str) else list(sources)
        items = [_item(s, values[s]) for s in names if s in values]
        return sum(_ddb_value_size(item) - 3 for item in items)
    if fn == "log_events":
        stamp = int(now.timestamp() * 1000)
        return [
            {
                "id": _random("123456789", 1) + _random(string.digits, 55),
                "timestamp": stamp + i,
                "message": line,
            }
            for i, line in enumerate(_text(of()).split("\n"))
        ]
    raise EventError(f"derived value {name}: unknown fn {fn!r}")


def _query(fn: str, query: str) -> dict[str, Any] | None:
    """A raw query string as API Gateway hands it over: REST `queryStringParameters` (last
    value wins), `multiValueQueryStringParameters` (lists), HTTP API (values joined by ,).
    None when there is no query, as Lambda sends null."""
    pairs = urllib.parse.parse_qsl(query.lstrip("?"), keep_blank_values=True)
    if not pairs:
        return None
    multi: dict[str, list[str]] = {}
    for key, value in pairs:
        multi.setdefault(key, []).append(value)
    if fn == "query_multi":
        return dict(multi)
    if fn == "query_joined":
        return {k: ",".join(v) for k, v in multi.items()}
    return {k: v[-1] for k, v in multi.items()}


# -- substitution and transforms ----------------------------------------------------------------


def substitute(node: Any, values: Mapping[str, Any]) -> Any:
    """The template with every placeholder replaced; unknown names are an error."""
    if isinstance(node, dict):
        return {_inline(k, values): substitute(v, values) for k, v in node.items()}
    if isinstance(node, list):
        return [substitute(v, values) for v in node]
    if isinstance(node, str):
        whole = PLACEHOLDER.fullmatch(node)
        if whole:
            return _lookup(whole.group(1), values)
        return _inline(node, values)
    return node


def _lookup(name: str, values: Mapping[str, Any]) -> Any:
    if name not in values:
        raise EventError(
            f"the template uses {{{{{name}}}}}, which is neither a parameter nor a derived value"
        )
    return values[name]


def _inline(text: str, values: Mapping[str, Any]) -> str:
    def one(m: re.Match[str]) -> str:
        value = _lookup(m.group(1), values)
        if isinstance(value, bool):
            return "true" if value else "false"
        return _text(value) if not isinstance(value, int | float) else str(value)

    return PLACEHOLDER.sub(one, text)


def apply_transforms(event: Any, transforms: list[Mapping[str, Any]]) -> Any:
    """Replace the value at each path (dotted; list indexes as numbers) by its encoding:
    `json` (a JSON document in a string), `gzip_base64` (base64 of gzipped JSON), `base64`."""
    for spec in transforms:
        path = str(spec.get("path", ""))
        parts = path.split(".")
        parent: Any = event
        try:
            for part in parts[:-1]:
                parent = parent[int(part)] if isinstance(parent, list) else parent[part]
            last: Any = int(parts[-1]) if isinstance(parent, list) else parts[-1]
            parent[last] = _encode(str(spec.get("fn")), parent[last])
        except (KeyError, IndexError, ValueError, TypeError):
            raise EventError(f"transform path {path!r} is not in the event") from None
    return event


def _encode(fn: str, value: Any) -> str:
    data = _text(value)
    if fn == "json":
        return data
    if fn == "base64":
        return base64.b64encode(data.encode()).decode()
    if fn == "gzip_base64":
        return base64.b64encode(gzip.compress(data.encode(), mtime=0)).decode()
    raise EventError(f"unknown transform {fn!r}")


def now_utc() -> datetime:
    return datetime.now(UTC)
