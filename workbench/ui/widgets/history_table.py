"""The invocation history: newest first, one row per invocation. Moving the cursor selects an
invocation (the response, timing and log panes follow it); keys act on the selected one."""

from __future__ import annotations

import time

from rich.text import Text
from textual.binding import Binding
from textual.content import Content
from textual.widgets import DataTable

from workbench.core.record import InvocationRecord
from workbench.ui.messages import (
    EditEventRequested,
    InvocationSelected,
    PayloadSwitchRequested,
    ReplayRequested,
    SaveEventRequested,
)

ROWS_SHOWN = 500
# (key, title, width): the columns of themed cells get a width, since the table sizes a
# column by its plain-string cells only and would cut "Sandbox.Timedout" to the title's width
COLUMNS = (
    ("time", "Time", None),
    ("event", "Event", 24),
    ("status", "Status", 18),
    ("start", "Start", 5),
    ("duration", "Duration", None),
    ("billed", "Billed", None),
    ("init", "Init Duration", None),
    ("memory", "Max Memory Used", None),
)
# "unfinished": workbench stopped before the invocation ended (history has it from its journal)
OUTCOME_COLOUR = {"ok": "$status-ok", "timeout": "$status-timeout", "unfinished": "$text-muted"}
UNNAMED = {"tui": "(unsaved)", "replay": "(unsaved)", "invoke-api": "(Invoke API)"}

Cell = Content | Text | str


def number(text: str) -> Text:
    """Figures line up on the right, as in a spreadsheet."""
    return Text(text, justify="right")


def duration(value: float) -> str:
    return f"{value:.2f} ms" if value < 10 else f"{value:.0f} ms"


class When(str):
    """The time column's text; it carries the row's order (newest first) for sorting."""

    order: tuple[float, str]

    def __new__(cls, row: InvocationRecord) -> When:
        cell = super().__new__(cls, time.strftime("%H:%M:%S", time.localtime(row.started_at)))
        cell.order = order(row)
        return cell


def order(row: InvocationRecord) -> tuple[float, str]:
    return (row.started_at, row.request_id)


def cells(row: InvocationRecord) -> tuple[Cell, ...]:
    colour = OUTCOME_COLOUR.get(row.outcome, "$status-error")
    start = Content.from_markup("[$cold-start]cold[/]") if row.cold else Content("warm")
    return (
        When(row),
        Content(row.event_name or UNNAMED.get(row.source, f"({row.source})")),
        Content.from_markup(f"[{colour}]$o[/]", o=row.outcome),
        start,
        number(duration(row.duration_ms) if row.measured else "-"),
        number(f"{row.billed_ms} ms" if row.measured else "-"),
        number("" if row.init_ms is None else duration(row.init_ms)),
        number(f"{row.max_memory_mb} / {row.memory_mb} MB" if row.measured else "-"),
    )


class InvocationHistory(DataTable[Cell]):
    BINDINGS = [
        Binding("r", "replay", "Replay", id="history.replay"),
        Binding("s", "save_event", "Save event", id="history.save_event"),
        Binding("e", "edit_event", "Edit event", id="history.edit_event"),
        Binding("v", "switch_payload", "Request/Response", id="history.request"),
    ]

    def __init__(self, **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)  # type: ignore[arg-type]
        self.rows_shown: list[InvocationRecord] = []  # newest first

    def on_mount(self) -> None:
        for key, title, width in COLUMNS:
            self.add_column(title, key=key, width=width)

    def set_rows(self, rows: list[InvocationRecord]) -> None:
        """Show these (newest first), keeping the cursor on the row it was on."""
        selected = self.selected_id
        self.rows_shown = sorted(rows, key=order, reverse=True)[:ROWS_SHOWN]
        self.clear()
        for row in self.rows_shown:
            self.add_row(*cells(row), key=row.request_id)
        if selected is not None and selected in {r.request_id for r in self.rows_shown}:
            self.move_cursor(row=self.get_row_index(selected), animate=False)

    def add_invocations(self, new: list[InvocationRecord]) -> None:
        """New invocations go in by their start time (newest on top), the oldest beyond
        ROWS_SHOWN go out, and the cursor stays on the invocation it was on. Row by row, not
        by rebuilding: a rebuild of 500 rows took ~30 ms, a stall on every invoke. (Not
        DataTable.add_rows, which this must not shadow.)"""
        known = {r.request_id for r in self.rows_shown}
        new = [r for r in new if r.request_id not in known]  # a reload of the list saw them
        if not new:
            return
        selected = self.selected_id
        for row in new:
            self.add_row(*cells(row), key=row.request_id)
        shown = sorted([*new, *self.rows_shown], key=order, reverse=True)
        for gone in shown[ROWS_SHOWN:]:
            self.remove_row(gone.request_id)
        self.rows_shown = shown[:ROWS_SHOWN]
        self.sort("time", key=lambda when: when.order, reverse=True)
        if selected is not None:
            self.select_id(selected)

    @property
    def selected_id(self) -> str | None:
        if not self.rows_shown or self.cursor_row < 0 or self.cursor_row >= len(self.rows_shown):
            return None
        return self.rows_shown[self.cursor_row].request_id

    def select_id(self, request_id: str) -> None:
        ids = [r.request_id for r in self.rows_shown]
        if request_id in ids:
            self.move_cursor(row=ids.index(request_id), animate=False)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self.post_message(InvocationSelected(self.selected_id))

    def _act(
        self, message: type[ReplayRequested | SaveEventRequested | EditEventRequested]
    ) -> None:
        rid = self.selected_id
        if rid is None:
            self.notify("No invocation yet: ctrl+r invokes the editor's event", severity="warning")
            return
        self.post_message(message(rid))

    def action_replay(self) -> None:
        self._act(ReplayRequested)

    def action_save_event(self) -> None:
        self._act(SaveEventRequested)

    def action_edit_event(self) -> None:
        self._act(EditEventRequested)

    def action_switch_payload(self) -> None:
        self.post_message(PayloadSwitchRequested())
