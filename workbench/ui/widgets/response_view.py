"""The selected invocation's response, or the request (the event it was sent): pretty JSON
highlighted through the theme, an error laid out for reading (type, message, stack trace), and
timeouts and crashes said in words, with what happens next."""

from __future__ import annotations

import json
import re
from typing import Any

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.highlight import highlight
from textual.reactive import reactive
from textual.widgets import Static

from workbench.core.bus import PinnedCheckFinished
from workbench.core.record import InvocationRecord

HIGHLIGHT_LIMIT = 256 * 1024  # bigger payloads are shown plain: highlighting them costs seconds
EMPTY = "Invoke (ctrl+r) to see a response here."
# Lambda prefixes the platform's own error messages with the request id, which the user
# already sees in the header; the message reads better without it
_REQUEST_PREFIX = re.compile(r"^RequestId: [0-9a-fA-F-]+ Error: ")
AFTERMATH = {
    "timeout": (
        "Timed out",
        "$status-timeout",
        "The function ran past its timeout and its environment was stopped: the next "
        "invoke starts cold. Its output up to then is in the logs; `timeout` in "
        "workbench.toml gives it longer.",
    ),
    "crash": (
        "Crashed",
        "$status-error",
        "The runtime process exited during the invoke: the next invoke starts cold. "
        "Its last output is in the logs.",
    ),
}

OUT_OF_MEMORY = (
    "Out of memory",
    "$status-error",
    "The function used more than its memory size and its runtime was killed, as Lambda "
    "kills it: the next invoke starts cold. `memory` in workbench.toml (or --memory) gives it "
    "more; --no-memory-limit lifts the limit here.",
)


def json_content(data: bytes) -> Content:
    """A JSON payload pretty-printed and highlighted; anything else as plain text."""
    text = data.decode("utf-8", "replace")
    if len(data) > HIGHLIGHT_LIMIT:
        return Content.assemble(
            (f"({len(data):,} bytes: shown without highlighting)\n", "$text-muted"), text
        )
    try:
        doc = json.loads(data)
    except ValueError:
        return Content(text)
    return highlight(json.dumps(doc, indent=2, ensure_ascii=False), language="json")


def response_content(row: InvocationRecord) -> Content:
    try:
        doc: Any = json.loads(row.response) if len(row.response) <= HIGHLIGHT_LIMIT else None
    except ValueError:
        doc = None
    failed = row.function_error or row.status in AFTERMATH
    if failed and isinstance(doc, dict) and ("errorMessage" in doc or "errorType" in doc):
        return error_content(doc, row.status)
    body = json_content(row.response)
    inner = embedded_body(doc)
    if inner is not None:  # an API Gateway style answer: its body is JSON in a string
        body = Content("\n").join(
            [
                body,
                Content.styled("body, parsed:", "$text-muted"),
                highlight(inner, language="json"),
            ]
        )
    return body


def embedded_body(doc: Any) -> str | None:
    """The `body` of an HTTP-style response when it is a JSON object or array in a string."""
    if not isinstance(doc, dict) or not isinstance(doc.get("body"), str):
        return None
    try:
        inner = json.loads(doc["body"])
    except ValueError:
        return None
    if not isinstance(inner, (dict, list)):
        return None
    return json.dumps(inner, indent=2, ensure_ascii=False)


def _frame_text(frame: object) -> str:
    """A stack frame as a line: Python and Node send text; Go (go1.x) sends
    {"path", "line", "label"}, shown as Go prints a frame, `path:line label`."""
    if isinstance(frame, dict) and "path" in frame:
        line = f":{frame['line']}" if frame.get("line") is not None else ""
        label = f" {frame['label']}" if frame.get("label") else ""
        return f"{frame['path']}{line}{label}"
    return str(frame)


def error_content(doc: dict[str, Any], status: str) -> Content:
    kind = str(doc.get("errorType") or "error")
    aftermath = OUT_OF_MEMORY if kind == "Runtime.OutOfMemory" else AFTERMATH.get(status)
    headline, colour, note = aftermath or ("", "$status-error", "")
    title = f"{headline}  {kind}" if headline else kind
    message = _REQUEST_PREFIX.sub("", str(doc.get("errorMessage", "")))
    parts = [Content.styled(title, f"bold {colour}"), Content(message)]
    trace = doc.get("stackTrace")
    if isinstance(trace, list) and trace:
        parts += [Content(""), Content.styled("Stack trace", "bold $text-muted")]
        parts += [frame_content(_frame_text(frame)) for frame in trace]
    if note:
        parts += [Content(""), Content.styled(note, "$text-muted")]
    extra = {
        k: v
        for k, v in doc.items()
        if k not in ("errorType", "errorMessage", "stackTrace", "requestId")
    }
    if extra:
        parts += [
            Content(""),
            highlight(json.dumps(extra, indent=2, ensure_ascii=False), language="json"),
        ]
    return Content("\n").join(parts)


def frame_content(frame: str) -> Content:
    """One stack frame. Python's are `  File "x.py", line 2, in f\\n    code\\n`: the location
    is muted so that the code stands out; other runtimes' frames are one line each."""
    lines = frame.rstrip("\n").split("\n")
    out = [
        Content.styled(line, "$text-muted") if line.lstrip().startswith("File ") else Content(line)
        for line in lines
    ]
    return Content("\n").join(out)


def verdict_content(verdict: PinnedCheckFinished) -> Content:
    """A pinned event's check after a reload: the verdict, and the diff when it differs."""
    colour = {"pass": "$status-ok", "new": "$text-muted"}.get(verdict.status, "$status-error")
    head = Content.assemble(
        ("Pinned check: ", "bold"),
        (verdict.status.upper(), f"bold {colour}"),
        (f"  {verdict.detail}", "$text-muted"),
    )
    if not verdict.diff:
        return head
    return Content("\n").join(
        [head, highlight(verdict.diff.rstrip("\n"), language="diff"), Content("")]
    )


def request_content(row: InvocationRecord) -> Content:
    if not row.event.strip():
        return Content.styled("(empty: the function received {})", "$text-muted")
    return json_content(row.event)


class ResponseView(Vertical):
    """Two sides of the selected invocation: the response and the request; `v` switches."""

    DEFAULT_CSS = """
    ResponseView > #payload-tabs { height: 1; padding: 0 1; background: $boost; }
    ResponseView > VerticalScroll { height: 1fr; }
    ResponseView Static.payload { width: 1fr; padding: 0 1; }
    ResponseView Static.payload.hidden { display: none; }
    """
    BINDINGS = [
        Binding("v", "switch", "Request/Response", id="response.switch"),
        Binding("c", "copy", "Copy", id="response.copy"),
    ]

    side: reactive[str] = reactive("response")

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.row: InvocationRecord | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="payload-tabs")
        with VerticalScroll(id="payload-scroll"):
            yield Static(EMPTY, id="response-body", classes="payload")
            yield Static("", id="request-body", classes="payload hidden")

    def on_mount(self) -> None:
        self._show_tabs()

    def show_row(
        self, row: InvocationRecord | None, verdict: PinnedCheckFinished | None = None
    ) -> None:
        """Show an invocation; `verdict`: its pinned check, when it was one (diff first)."""
        self.row = row
        response = self.query_one("#response-body", Static)
        request = self.query_one("#request-body", Static)
        if row is None:
            response.update(EMPTY)
            request.update("")
        else:
            shown = response_content(row)
            if verdict is not None:
                shown = Content("\n").join([verdict_content(verdict), shown])
            response.update(shown)
            request.update(request_content(row))
        self._show_tabs()
        self.query_one("#payload-scroll", VerticalScroll).scroll_home(animate=False)

    def watch_side(self, side: str) -> None:
        self.query_one("#response-body").set_class(side != "response", "hidden")
        self.query_one("#request-body").set_class(side != "request", "hidden")
        self._show_tabs()

    def action_switch(self) -> None:
        self.side = "request" if self.side == "response" else "response"

    def on_click(self, event: events.Click) -> None:
        if event.widget is not None and event.widget.id == "payload-tabs":
            self.action_switch()

    def action_copy(self) -> None:
        if self.row is None:
            return
        data = self.row.response if self.side == "response" else self.row.event
        self.app.copy_to_clipboard(data.decode("utf-8", "replace"))
        self.notify(f"Copied the {self.side} ({len(data):,} bytes)")

    def _show_tabs(self) -> None:
        def tab(name: str, title: str) -> Content:
            if self.side == name:
                return Content.styled(f" {title} ", "bold underline $accent")
            return Content.styled(f" {title} ", "$text-muted")

        parts = [tab("response", "Response"), Content(" "), tab("request", "Request")]
        row = self.row
        if row is not None:
            name = row.event_name or "unsaved event"
            parts.append(
                Content.styled(f"   {name} · {row.request_id[:8]}   v switches", "$text-muted")
            )
        self.query_one("#payload-tabs", Static).update(Content.assemble(*parts))
