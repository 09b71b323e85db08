"""The history table keeps its rows newest first as invocations arrive (out of order too),
holds at most ROWS_SHOWN, never shows one twice, and keeps the cursor on its invocation."""

from __future__ import annotations

import time
from pathlib import Path

from textual.coordinate import Coordinate
from textual.pilot import Pilot

from tests.ui.conftest import make_app, run_app
from workbench.core.record import InvocationRecord, InvokeRequest, InvokeResult
from workbench.core.vocab import Source
from workbench.ui.app import WorkbenchApp
from workbench.ui.widgets.history_table import ROWS_SHOWN, InvocationHistory

NOW = time.time()


def _row(i: int, source: Source = "tui", event: str | None = "ev") -> InvocationRecord:
    rid = f"rid-{i:06d}"
    return InvocationRecord(
        function="hello",
        request_id=rid,
        request=InvokeRequest(b"{}", source=source),
        result=InvokeResult(rid, b"{}"),
        status="ok",
        cold=False,
        started_at=NOW - 10_000 + i,
        duration_ms=1.0,
        billed_ms=1,
        init_ms=None,
        memory_mb=128,
        max_memory_mb=15,
        event_name=event,
    )


def test_rows_stay_newest_first_bounded_and_the_cursor_stays(hello: Path) -> None:
    async def body(pilot: Pilot[int], app: WorkbenchApp) -> None:
        table = app.query_one(InvocationHistory)
        table.set_rows([_row(i) for i in range(ROWS_SHOWN)])
        await pilot.pause()
        table.move_cursor(row=5)
        await pilot.pause()
        chosen = table.selected_id
        # two new ones, the later first, and one older than some already shown
        table.add_invocations([_row(ROWS_SHOWN + 5), _row(ROWS_SHOWN + 1), _row(300)])
        table.add_invocations([_row(ROWS_SHOWN + 1)])  # seen already: not shown twice
        await pilot.pause()
        ids = [r.request_id for r in table.rows_shown]
        assert len(ids) == table.row_count == ROWS_SHOWN and len(set(ids)) == ROWS_SHOWN
        assert ids[:2] == [f"rid-{ROWS_SHOWN + 5:06d}", f"rid-{ROWS_SHOWN + 1:06d}"]
        assert ids == sorted(ids, reverse=True), "newest first"
        assert f"rid-{0:06d}" not in ids and f"rid-{1:06d}" not in ids, "the oldest went"
        for index in (0, 1, 137, ROWS_SHOWN - 1):  # what is drawn is what is selected
            key = table.coordinate_to_cell_key(Coordinate(index, 0)).row_key.value
            assert key == ids[index]
        assert table.selected_id == chosen

    run_app(make_app(hello, port=None), body)


def test_invocations_from_the_invoke_api_are_named_so(hello: Path) -> None:
    async def body(pilot: Pilot[int], app: WorkbenchApp) -> None:
        table = app.query_one(InvocationHistory)
        table.add_invocations([_row(1, source="invoke-api", event=None)])
        await pilot.pause()
        assert str(table.get_row_at(0)[1]) == "(Invoke API)"

    run_app(make_app(hello, port=None), body)
