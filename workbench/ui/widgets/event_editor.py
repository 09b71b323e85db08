"""The event editor: JSON with highlighting, checked as you type. An event that is not valid
JSON says where and why, and the Invoke button is disabled until it is fixed."""

from __future__ import annotations

import json

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Static, TextArea

from workbench.ui.messages import InvokeRequested


def json_problem(text: str) -> str | None:
    """Why `text` is not a JSON event, with line and column; None when it is one. Empty text
    is fine: Lambda sends {} for an empty payload."""
    if not text.strip():
        return None
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return f"line {exc.lineno}, column {exc.colno}: {exc.msg}"
    return None


class EventEditor(Vertical):
    DEFAULT_CSS = """
    EventEditor #event-header { height: 1; }
    EventEditor #event-name { width: 1fr; padding: 0 1; color: $text-muted; }
    EventEditor #invoke-button { min-width: 12; height: 1; border: none; margin: 0 1; }
    EventEditor TextArea, EventEditor TextArea:focus { height: 1fr; border: none; }
    EventEditor #event-problem { height: auto; max-height: 3; padding: 0 1;
                                 color: $text-error; background: $error-muted; }
    EventEditor #event-problem.hidden { display: none; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.event_name: str | None = None  # the saved event being edited, if any
        self.saved_text = ""
        self.problem: str | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="event-header"):
            yield Static("(unsaved event)", id="event-name")
            yield Button("Invoke ▶", id="invoke-button", variant="primary", compact=True)
        yield TextArea.code_editor("{}\n", language="json", id="event-text",
                                   soft_wrap=False, tab_behavior="indent")
        yield Static("", id="event-problem", classes="hidden")

    @property
    def text_area(self) -> TextArea:
        return self.query_one("#event-text", TextArea)

    @property
    def text(self) -> str:
        return self.text_area.text

    @property
    def modified(self) -> bool:
        return self.text != self.saved_text

    def load(self, text: str, name: str | None) -> None:
        """Show an event: `name` is the saved event it is (None for a sample or a draft)."""
        self.event_name = name
        self.saved_text = text if name is not None else ""
        self.text_area.load_text(text)
        self._check()

    def mark_saved(self, name: str) -> None:
        self.event_name = name
        self.saved_text = self.text
        self._show_name()

    def payload(self) -> bytes | None:
        """The event to send, or None (and a message on screen) when it is not valid JSON."""
        self._check()
        if self.problem is not None:
            return None
        return self.text.encode("utf-8")

    def request_invoke(self) -> bool:
        data = self.payload()
        if data is None:
            self.app.bell()
            self.notify(f"Not sent: the event is not valid JSON ({self.problem})",
                        severity="error")
            return False
        self.post_message(InvokeRequested(data, self.event_name))
        return True

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        self._check()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "invoke-button":
            event.stop()
            self.request_invoke()

    def _check(self) -> None:
        self.problem = json_problem(self.text)
        box = self.query_one("#event-problem", Static)
        box.update(f"Invalid JSON: {self.problem}" if self.problem else "")
        box.set_class(self.problem is None, "hidden")
        self.query_one("#invoke-button", Button).disabled = self.problem is not None
        self._show_name()

    def _show_name(self) -> None:
        name = self.event_name or "(unsaved event)"
        self.query_one("#event-name", Static).update(name + (" ●" if self.modified else ""))
