"""The first thing a user does: open the app, invoke the example, see every pane answer."""

from __future__ import annotations

import json
from pathlib import Path

from textual.pilot import Pilot

from tests.ui.conftest import make_app, run_app, wait_for
from workbench.ui.app import WorkbenchApp
from workbench.ui.widgets.history_table import InvocationHistory
from workbench.ui.widgets.log_pane import LogPane


def test_invoke_fills_history_response_logs_and_timing(hello: Path) -> None:
    async def body(pilot: Pilot[int], app: WorkbenchApp) -> None:
        history = app.query_one(InvocationHistory)
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: history.rows_shown, what="a history row")
        row = history.rows_shown[0]
        assert row.outcome == "ok" and row.cold and row.event_name == "hello"
        assert json.loads(row.response)["statusCode"] == 200
        response = str(app.query_one("#response-body").render())
        assert "statusCode" in response
        await wait_for(
            pilot,
            lambda: any(row.request_id[:8] in ln for ln in app.query_one(LogPane).log_widget.lines),
            what="the invocation's log lines",
        )
        timing = str(app.query_one("#timing-selected").render())
        assert "cold start" in timing and "Init" in timing

    run_app(make_app(hello), body)
