"""Logs: the function's output and the platform's lines, live, filtered, bounded.

The widget is Textual's plain-string `Log` (cheap per line, unlike RichLog) holding at most
MAX_LINES; the whole log stays in the core's LogBook, and changing a filter refills the
widget from there. A one-character gutter says where a line came from, and the highlighter
colours whole lines by it, so stderr stands apart in colour and without it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from rich.highlighter import Highlighter
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Log, Select, Static

from workbench.core.bus import LogLine
from workbench.core.session import LogBook

MAX_LINES = 5000
GUTTER = {"stdout": " ", "stderr": "▌", "platform": "·", "build": "⚙"}
STYLE_OF = {"▌": "logpane--stderr", "·": "logpane--platform", "⚙": "logpane--build"}
LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
_TEXT_LEVEL = re.compile(r"^\[?(TRACE|DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|FATAL)\]?\b")
_ALIASES = {"WARNING": "WARN", "CRITICAL": "FATAL"}


def line_level(text: str) -> str | None:
    """The level of a JSON log line (`level` / `levelname` / `severity`), or of a line that
    starts with one (`[INFO]`, as Lambda's Python runtime writes); None when it has none."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            doc = json.loads(stripped)
        except ValueError:
            return None
        if isinstance(doc, dict):
            for key in ("level", "levelname", "severity", "log.level"):
                value = doc.get(key)
                if isinstance(value, str):
                    up = value.upper()
                    return _ALIASES.get(up, up)
        return None
    m = _TEXT_LEVEL.match(stripped)
    return _ALIASES.get(m.group(1), m.group(1)) if m else None


class LineFilter:
    def __init__(self, text: str = "", level: str | None = None,
                 request_id: str | None = None, function: str | None = None) -> None:
        self.text = text.lower()
        self.min_level = LEVELS.index(level) if level in LEVELS else None
        self.request_id = request_id
        self.function = function

    @property
    def active(self) -> bool:
        return bool(self.text or self.min_level is not None or self.request_id)

    def __call__(self, line: LogLine) -> bool:
        if self.function is not None and line.function != self.function:
            return False
        if self.request_id is not None and line.request_id != self.request_id:
            return False
        if self.text and self.text not in line.text.lower():
            return False
        if self.min_level is not None:
            level = line_level(line.text)
            if level is None or level not in LEVELS or LEVELS.index(level) < self.min_level:
                return False
        return True


class GutterHighlighter(Highlighter):
    def __init__(self, pane: LogPane) -> None:
        self.pane = pane

    def highlight(self, text: Text) -> None:
        component = STYLE_OF.get(text.plain[:1])
        if component is not None:
            text.stylize(self.pane.get_component_rich_style(component))


class LogPane(Vertical):
    COMPONENT_CLASSES = {"logpane--stderr", "logpane--platform", "logpane--build"}
    DEFAULT_CSS = """
    LogPane > .logpane--stderr { color: $log-stderr; }
    LogPane > .logpane--platform { color: $log-platform; }
    LogPane > .logpane--build { color: $log-build; }
    LogPane #log-filters { height: 1; }
    LogPane #log-text-filter { width: 1fr; height: 1; border: none; padding: 0 1; }
    LogPane #log-level { width: 16; height: 1; }
    LogPane #log-level > SelectCurrent { border: none; height: 1; padding: 0 1; }
    LogPane #log-request { width: auto; height: 1; padding: 0 1; color: $accent; }
    LogPane Log { height: 1fr; }
    """
    BINDINGS = [
        Binding("slash", "focus_filter", "Filter", id="logs.filter"),
        Binding("f", "toggle_follow", "Follow", id="logs.follow"),
        Binding("x", "clear_request", "All requests", id="logs.all_requests"),
    ]

    def __init__(self, book: LogBook, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.book = book
        self.filter = LineFilter()
        self.follow = True
        self.shown = 0  # lines written to the widget since the last refill

    def compose(self) -> ComposeResult:
        with Horizontal(id="log-filters"):
            yield Input(placeholder="filter logs (/)", id="log-text-filter")
            yield Select([(lv, lv) for lv in LEVELS], prompt="any level", id="log-level",
                         allow_blank=True)
            yield Static("", id="log-request")
        log = Log(max_lines=MAX_LINES, highlight=True, id="log-lines")
        log.highlighter = GutterHighlighter(self)
        yield log

    @property
    def log_widget(self) -> Log:
        return self.query_one("#log-lines", Log)

    def add(self, lines: Iterable[LogLine]) -> None:
        """New lines from the core (a frame's worth): only what the widget can hold is
        formatted, however many arrived."""
        keep = self.filter
        fresh = [line for line in lines if keep(line)]
        if not fresh:
            return
        self.shown += len(fresh)
        self.log_widget.write_lines([format_line(x) for x in fresh[-MAX_LINES:]],
                                    scroll_end=self.follow)

    def set_filter(self, **changes: str | None) -> None:
        """Change some of text / level / request_id / function (None clears one), then
        refill the widget from the whole log."""
        f = self.filter
        now: dict[str, str | None] = {
            "text": f.text, "level": LEVELS[f.min_level] if f.min_level is not None else None,
            "request_id": f.request_id, "function": f.function}
        unknown = set(changes) - set(now)
        if unknown:
            raise TypeError(f"unknown log filter {sorted(unknown)}")
        now.update(changes)
        self.filter = LineFilter(now["text"] or "", now["level"], now["request_id"],
                                 now["function"])
        self.query_one("#log-request", Static).update(
            f"request {self.filter.request_id[:8]} (x: all)" if self.filter.request_id else "")
        self.refill()

    def refill(self) -> None:
        log = self.log_widget
        log.clear()
        lines = self.book.last(MAX_LINES, self.filter)
        self.shown = len(lines)
        log.write_lines([format_line(x) for x in lines], scroll_end=True)

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "log-text-filter":
            event.stop()
            self.set_filter(text=event.value)

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "log-level":
            event.stop()
            value = event.value if isinstance(event.value, str) else None
            self.set_filter(level=value)

    def action_focus_filter(self) -> None:
        self.query_one("#log-text-filter", Input).focus()

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow
        self.log_widget.auto_scroll = self.follow
        if self.follow:
            self.log_widget.scroll_end(animate=False)
        self.notify("Following the log" if self.follow else "Log paused (f follows again)")

    def action_clear_request(self) -> None:
        self.set_filter(request_id=None)


def format_line(line: LogLine) -> str:
    return GUTTER.get(line.stream, " ") + line.text
