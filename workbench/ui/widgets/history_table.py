"""The invocation history: newest first, one row per invocation."""

from __future__ import annotations

import time

from textual.binding import Binding
from textual.content import Content
from textual.widgets import DataTable

from workbench.core.session import Row
from workbench.ui.messages import InvocationSelected, ReplayRequested, SaveEventRequested

ROWS_SHOWN = 500
COLUMNS = ("Time", "Event", "Status", "Start", "Duration", "Billed", "Init", "Memory")
OUTCOME_COLOUR = {"ok": "$status-ok", "timeout": "$status-timeout"}


def cells(row: Row) -> tuple[Content | str, ...]:
    colour = OUTCOME_COLOUR.get(row.outcome, "$status-error")
    start = Content.from_markup("[$cold-start]cold[/]") if row.cold else Content("warm")
    return (time.strftime("%H:%M:%S", time.localtime(row.started_at)),
            row.event_name or f"({row.source})",
            Content.from_markup(f"[{colour}]$o[/]", o=row.outcome),
            start,
            f"{row.duration_ms:.1f} ms",
            f"{row.billed_ms} ms",
            "" if row.init_ms is None else f"{row.init_ms:.0f} ms",
            f"{row.max_memory_mb}/{row.memory_mb} MB")


class InvocationHistory(DataTable[Content | str]):
    BINDINGS = [
        Binding("r", "replay", "Replay", id="history.replay"),
        Binding("s", "save_event", "Save event", id="history.save_event"),
    ]

    def __init__(self, **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)  # type: ignore[arg-type]
        self.rows_shown: list[Row] = []  # newest first

    def on_mount(self) -> None:
        for title in COLUMNS:
            self.add_column(title, key=title.lower())

    def set_rows(self, rows: list[Row]) -> None:
        """Show these (newest first), keeping the cursor on the row it was on."""
        selected = self.selected_id
        self.rows_shown = rows[:ROWS_SHOWN]
        self.clear()
        for row in self.rows_shown:
            self.add_row(*cells(row), key=row.request_id)
        if selected is not None and selected in {r.request_id for r in self.rows_shown}:
            self.move_cursor(row=self.get_row_index(selected), animate=False)

    def add_rows(self, new: list[Row]) -> None:
        self.set_rows(list(reversed(new)) + self.rows_shown)

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

    def action_replay(self) -> None:
        if self.selected_id is not None:
            self.post_message(ReplayRequested(self.selected_id))

    def action_save_event(self) -> None:
        if self.selected_id is not None:
            self.post_message(SaveEventRequested(self.selected_id))
