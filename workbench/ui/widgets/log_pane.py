"""Logs: the function's output and the platform's lines, live, filtered, bounded.

The whole log lives in the core's LogBook; the widget is Textual's plain-string `Log` holding
at most MAX_LINES of it. Once per frame the pane reads the lines that arrived since the last
frame (only the newest MAX_LINES that pass the filter are formatted, however many came), and a
filter change refills it from the book. Scanning a large book (a text filter over a million
lines) runs in slices with the event loop free between them, so typing stays responsive.

A one-character gutter says where a line came from, and the highlighter colours whole lines by
it, so stderr stands apart in colour and without it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from rich.cells import cell_len
from rich.highlighter import Highlighter
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.geometry import Size
from textual.widgets import Input, Log, Select, Static

from workbench.core.logbook import Entry, LogBook
from workbench.core.logfilter import LEVELS, SLICE, LineFilter, Segment, scan, work_of
from workbench.core.vocab import Stream

MAX_LINES = 5000  # what the widget holds; the book holds the rest
# a line longer than this shows its beginning only: the widget holds a formatted copy of
# each line it shows, and a function's line may be up to 1 MB (procs.MAX_LINE)
SHOWN_CHARS = 10_000
GUTTER = {"stdout": " ", "stderr": "▌", "platform": "·", "build": "⚙", "workbench": "↻"}
STYLE_OF = {
    "▌": "logpane--stderr",
    "·": "logpane--platform",
    "⚙": "logpane--build",
    "↻": "logpane--workbench",
}


def format_line(e: Entry) -> str:
    text = e[1]
    more = len(text) - SHOWN_CHARS
    if more > 0:
        text = f"{text[:SHOWN_CHARS]} … ({more:,} more characters not shown)"
    if "\t" in text:  # tabs expanded here so that the widget's width counts them
        text = text.expandtabs()
    return GUTTER.get(e[2], " ") + text


PLATFORM_PREFIXES = (
    "INIT_START ",
    "START RequestId:",
    "END RequestId:",
    "REPORT RequestId:",
    "INIT_REPORT ",
    "RESTORE_",
    "EXTENSION ",
    "TELEMETRY ",
)


def recorded_line(text: str) -> str:
    """A line read back from history, which keeps text only: platform lines are known by
    their shape; the function's own output is shown as plain output."""
    stream: Stream = "platform" if text.startswith(PLATFORM_PREFIXES) else "stdout"
    return format_line(("", text, stream, None, 0.0, 0))


class GutterHighlighter(Highlighter):
    def __init__(self, pane: LogPane) -> None:
        self.pane = pane

    def highlight(self, text: Text) -> None:
        component = STYLE_OF.get(text.plain[:1])
        if component is not None:  # the colour only: a background would band the line
            colour = self.pane.get_component_rich_style(component).color
            text.stylize(Style(color=colour))


class LogLines(Log):
    """Textual's Log with a cheaper way in for a frame's lines. Log.write_lines splits every
    line again, forgets each line's cache entry one by one and starts a thread to measure the
    new lines' width (which under a flood competes with the UI for the GIL); here a frame's
    lines (one line each, tabs expanded) are measured in C when they are ASCII."""

    def append(self, lines: list[str], scroll_end: bool) -> None:
        at_end = self.is_vertical_scroll_end
        self._lines.extend(lines)
        excess = len(self._lines) - MAX_LINES
        if excess > 0:
            del self._lines[:excess]
        self._render_line_cache.clear()
        ascii_only = "".join(lines).isascii()
        self._width = max(self._width, max(map(len if ascii_only else cell_len, lines)))
        self.virtual_size = Size(self._width, len(self._lines))
        if scroll_end and at_end and not self.is_vertical_scrollbar_grabbed:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        else:
            self.refresh()


class LogPane(Vertical):
    COMPONENT_CLASSES = {
        "logpane--stderr",
        "logpane--platform",
        "logpane--build",
        "logpane--workbench",
    }
    DEFAULT_CSS = """
    LogPane > .logpane--stderr { color: $log-stderr; }
    LogPane > .logpane--platform { color: $log-platform; }
    LogPane > .logpane--build { color: $log-build; }
    LogPane > .logpane--workbench { color: $accent; }
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
        self.cursor = book.total  # the widget shows what passes the filter up to this line
        self.scanning = False  # a refill is reading the book in slices
        self._scan_id = 0  # the newest scan: an older one still running must not write
        self._head = book.latest_request()  # the newest invocation, when last looked
        self._selected: str | None = None  # the history row last selected
        self._cut: str | None = None  # ... when history cut its log
        self._state = ""

    def compose(self) -> ComposeResult:
        with Horizontal(id="log-filters"):
            yield Input(placeholder="filter logs (/)", id="log-text-filter")
            yield Select(
                [(lv, lv) for lv in LEVELS], prompt="any level", id="log-level", allow_blank=True
            )
            yield Static("", id="log-request")
        log = LogLines(max_lines=MAX_LINES, highlight=True, id="log-lines")
        log.highlighter = GutterHighlighter(self)
        yield log

    def on_mount(self) -> None:
        self.refill()

    @property
    def log_widget(self) -> LogLines:
        return self.query_one("#log-lines", LogLines)

    # ---- reading the book ----

    def catch_up(self) -> None:
        """Once per frame: show what arrived since the last frame."""
        self._follow_new_request()
        if self.scanning or not self.follow:
            self._show_state()
            return
        self._load(self.cursor, replace=False)

    def refill(self) -> None:
        """Show the newest MAX_LINES lines that pass the filter, from the whole book."""
        self._load(self.book.first, replace=True)

    def _load(self, lo: int, replace: bool) -> None:
        hi = self.book.total
        segments = self.filter.segments(self.book, lo, hi)
        self._scan_id += 1
        if self.scanning:  # a refill supersedes the scan still running
            self.workers.cancel_group(self, "log-scan")
            self.scanning = False
        if work_of(segments) <= SLICE:
            found: list[Entry] = []
            for _ in scan(self.book, segments, MAX_LINES, found):
                pass
            self._write(found, hi, replace)
            return
        self.scanning = True
        self._show_state()
        self.run_worker(
            self._scan_slowly(self._scan_id, segments, hi, replace),
            group="log-scan",
            exit_on_error=False,
            name="log scan",
        )

    async def _scan_slowly(
        self, scan_id: int, segments: list[Segment], hi: int, replace: bool
    ) -> None:
        found: list[Entry] = []
        for _ in scan(self.book, segments, MAX_LINES, found):
            await asyncio.sleep(0)  # a key pressed meanwhile is handled now, not after
            if scan_id != self._scan_id:
                return
        self.scanning = False
        self._write(found, hi, replace)
        if self.book.total > self.cursor:
            self.catch_up()

    def _write(self, found: list[Entry], hi: int, replace: bool) -> None:
        """`found` is newest first."""
        log = self.log_widget
        if replace:
            log.clear()
        self.cursor = hi
        if found:
            log.append([format_line(e) for e in reversed(found)], scroll_end=self.follow)
        self._show_state()

    def _follow_new_request(self) -> None:
        """Filtered to the newest invocation, the pane moves on to the next one when it
        starts, so its output shows live; filtered to an older one, it stays there."""
        head = self.book.latest_request(self.filter.function)
        if head == self._head:
            return
        was, self._head = self._head, head
        if self.follow and self.filter.request_id is not None and self.filter.request_id == was:
            self.set_filter(request_id=head)

    def select_request(
        self, request_id: str | None, recorded: Sequence[str] = (), truncated: bool = False
    ) -> None:
        """A history row was selected: show its lines. The table announces its selection
        again whenever its rows change; only a new selection changes the filter, so that
        `x` (all requests) stays until the user picks a row. `recorded`: the lines history
        kept for it, shown when this session never saw it (an earlier session's row);
        `truncated`: history kept only part of its log, which the pane then says."""
        if request_id != self._selected:
            self._selected = request_id
            self._cut = request_id if truncated else None
            self.set_filter(request_id=request_id)
            if recorded and not self.scanning and not self.log_widget.line_count:
                self.log_widget.append([recorded_line(t) for t in recorded], scroll_end=True)

    # ---- filters ----

    def set_filter(self, **changes: str | None) -> None:
        """Change some of text / level / request_id / function (None clears one), then
        refill the widget from the whole log; no change, no refill."""
        now = self.filter.as_dict()
        unknown = set(changes) - set(now)
        if unknown:
            raise TypeError(f"unknown log filter {sorted(unknown)}")
        now.update(changes)
        wanted = LineFilter(now["text"] or "", now["level"], now["request_id"], now["function"])
        if wanted.as_dict() == self.filter.as_dict():
            return
        self.filter = wanted
        self._head = self.book.latest_request(wanted.function)
        self.refill()

    def _show_state(self) -> None:
        parts = []
        rid = self.filter.request_id
        if rid is not None:
            parts.append(f"request {rid[:8]} (x: all)")
            if rid == self._cut:
                parts.append("log cut: history kept its beginning and end")
        if self.scanning:
            parts.append("searching…")
        if not self.follow:
            waiting = self.book.total - self.cursor
            parts.append(f"paused, {waiting:,} new (f)" if waiting else "paused (f)")
        state = "  ".join(parts)
        if state != self._state:  # a paused flood would otherwise re-lay it out every frame
            self._state = state
            self.query_one("#log-request", Static).update(state)

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
        """Following shows new lines as they come; paused, the widget stands still (nothing
        is added or pruned under the reader) and catches up when following again."""
        self.follow = not self.follow
        self.log_widget.auto_scroll = self.follow
        if self.follow:
            self.catch_up()
            self.log_widget.scroll_end(animate=False)
        self._show_state()
        self.notify("Following the log" if self.follow else "Log paused (f follows again)")

    def action_clear_request(self) -> None:
        self.set_filter(request_id=None)
