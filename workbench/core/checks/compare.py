"""Comparing responses (replay --check, pinned events) and plain-text tables (the history and
replay commands)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from workbench.core.history.store import decode_json


def json_equal(a: Any, b: Any) -> bool:
    """Structural JSON equality: objects regardless of key order, numbers by value (1 == 1.0),
    but true is not 1 and "1" is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b or (a != a and b != b)  # NaN, which Python's json accepts, equals itself
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def response_diff(
    expected: bytes, actual: bytes, expected_label: str = "expected", actual_label: str = "actual"
) -> str | None:
    """None when the two responses are the same (as JSON when both are JSON, else byte for
    byte); otherwise a unified diff of their pretty-printed JSON (or text)."""
    import difflib

    ok_e, doc_e = decode_json(expected)
    ok_a, doc_a = decode_json(actual)
    if ok_e and ok_a:
        if json_equal(doc_e, doc_a):
            return None
        old, new = pretty_json(doc_e), pretty_json(doc_a)
    else:
        if expected == actual:
            return None
        old = pretty_json(doc_e) if ok_e else expected.decode("utf-8", "replace")
        new = pretty_json(doc_a) if ok_a else actual.decode("utf-8", "replace")
    lines = list(
        difflib.unified_diff(
            old.splitlines(), new.splitlines(), expected_label, actual_label, lineterm=""
        )
    )
    if not lines:  # same text, different bytes (an encoding, a trailing newline)
        return (
            f"--- {expected_label}\n+++ {actual_label}\n"
            f"the bodies read the same but differ byte for byte: {expected!r:.200} "
            f"!= {actual!r:.200}"
        )
    return "\n".join(lines)


# ---- plain-text tables, for the history and replay commands ----


def render_table(
    headers: Sequence[str], rows: Iterable[Sequence[str]], right: Iterable[int] = ()
) -> str:
    """Columns padded to their widest cell; the `right` columns (indexes) aligned right."""
    body = [list(r) for r in rows]
    widths = [len(h) for h in headers]
    for r in body:
        widths = [max(w, len(c)) for w, c in zip(widths, r, strict=True)]
    aligned = set(right)

    def line(cells: Sequence[str]) -> str:
        out = [
            c.rjust(w) if i in aligned else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(out).rstrip()

    return "\n".join([line(headers), *(line(r) for r in body)])
