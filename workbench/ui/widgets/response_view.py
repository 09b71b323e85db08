"""The selected invocation's response: pretty JSON highlighted through the theme, or an error
laid out for reading (type, message, then the stack trace)."""

from __future__ import annotations

import json
from typing import Any

from textual.containers import VerticalScroll
from textual.content import Content
from textual.highlight import highlight
from textual.widgets import Static

from workbench.core.session import Row


def response_content(row: Row) -> Content:
    try:
        doc: Any = json.loads(row.response)
    except ValueError:
        return Content(row.response.decode("utf-8", "replace"))
    if row.function_error and isinstance(doc, dict) and "errorMessage" in doc:
        return error_content(doc, row.outcome)
    return highlight(json.dumps(doc, indent=2, ensure_ascii=False), language="json")


def error_content(doc: dict[str, Any], outcome: str) -> Content:
    kind = str(doc.get("errorType") or outcome)
    parts = [Content.from_markup("[b $status-error]$kind[/]", kind=kind),
             Content(str(doc.get("errorMessage", "")))]
    trace = doc.get("stackTrace")
    if isinstance(trace, list) and trace:
        parts.append(Content.from_markup("[dim]stack trace[/]"))
        parts += [Content(str(frame).rstrip("\n")) for frame in trace]
    extra = {k: v for k, v in doc.items()
             if k not in ("errorType", "errorMessage", "stackTrace")}
    if extra:
        parts.append(highlight(json.dumps(extra, indent=2, ensure_ascii=False), language="json"))
    return Content("\n").join(parts)


class ResponseView(VerticalScroll):
    DEFAULT_CSS = """
    ResponseView > #response-body { width: 1fr; padding: 0 1; }
    """

    def compose(self):  # type: ignore[no-untyped-def]
        yield Static("Invoke (ctrl+r) to see a response here.", id="response-body")

    def show_row(self, row: Row | None) -> None:
        body = self.query_one("#response-body", Static)
        if row is None:
            body.update("Invoke (ctrl+r) to see a response here.")
            return
        body.update(response_content(row))
        self.scroll_home(animate=False)
