"""A go1.x function (net/rpc) in the TUI: invoked from the editor like any other, its log in
the log pane, a panic shown as Lambda's error and the next invoke a fresh process."""

from __future__ import annotations

import json
from pathlib import Path

from textual.pilot import Pilot

from tests.conftest import builds_go
from tests.test_gorpc import build
from tests.ui.conftest import make_app, run_app, wait_for
from tests.ui.editing import shown, type_text
from workbench.ui.app import WorkbenchApp
from workbench.ui.widgets.event_editor import EventEditor
from workbench.ui.widgets.history_table import InvocationHistory
from workbench.ui.widgets.log_pane import LogPane


@builds_go
def test_a_go1x_function_in_the_tui(tmp_path: Path) -> None:
    fn = build(tmp_path)

    async def body(pilot: Pilot[int], app: WorkbenchApp) -> None:
        assert "go1.x" in shown(app, "#status")
        editor = app.query_one(EventEditor)
        history = app.query_one(InvocationHistory)
        editor.action_new()
        editor.text_area.load_text("")
        await type_text(pilot, '{"op": "echo"}')
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: history.rows_shown, what="the first invocation")
        first = history.rows_shown[0]
        assert first.outcome == "ok" and first.cold
        answer = json.loads(first.response)
        assert answer["env"]["AWS_EXECUTION_ENV"] == "AWS_Lambda_go1.x"
        assert answer["requestId"] == first.request_id
        await wait_for(
            pilot,
            lambda: any(
                f"REPORT RequestId: {first.request_id}" in str(line)
                for line in app.query_one(LogPane).log_widget.lines
            ),
            what="the REPORT line in the log pane",
        )

        editor.text_area.load_text('{"op": "panic"}')
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: len(history.rows_shown) == 2, what="the panicking invoke")
        panicked = history.rows_shown[0]
        assert panicked.function_error
        doc = json.loads(panicked.response)
        assert {"errorMessage", "errorType", "stackTrace"} <= set(doc)
        view = shown(app, "#response-body")
        assert doc["errorMessage"] in view and doc["errorType"] in view
        # Go's frames read as Go prints them, not as dictionaries
        frame = doc["stackTrace"][0]
        assert f"{frame['path']}:{frame['line']} {frame['label']}" in view
        assert "{'path'" not in view

        editor.text_area.load_text('{"op": "echo"}')
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: len(history.rows_shown) == 3, what="the invoke after it")
        after = history.rows_shown[0]
        assert after.outcome == "ok" and after.cold  # the panic ended the process
        assert json.loads(after.response)["pid"] != answer["pid"]

    run_app(make_app(fn), body)
