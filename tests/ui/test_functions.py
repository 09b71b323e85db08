"""Several functions in one session: the panes follow the active one; ctrl+f switches."""

from __future__ import annotations

import shutil
from pathlib import Path

from textual.pilot import Pilot

from tests.conftest import EXAMPLES
from tests.ui.conftest import make_app, run_app, wait_for
from workbench.ui.app import WorkbenchApp
from workbench.ui.screens.dialogs import Picker
from workbench.ui.widgets.event_editor import EventEditor
from workbench.ui.widgets.history_table import InvocationHistory


def test_switching_the_active_function(hello: Path, tmp_path: Path) -> None:
    node = tmp_path / "greeter"
    shutil.copytree(EXAMPLES / "hello-node", node, ignore=shutil.ignore_patterns(".workbench"))

    async def body(pilot: Pilot[int], app: WorkbenchApp) -> None:
        history = app.query_one(InvocationHistory)
        status = app.query_one("#status")
        assert "hello" in str(status.render()) and "2 functions" in str(status.render())
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: len(history.rows_shown) == 1)
        assert history.rows_shown[0].function == "hello"

        editor = app.query_one(EventEditor)
        editor.text_area.load_text('{"name": "draft for hello"}')  # unsaved, then switch away
        await pilot.press("ctrl+f")
        await wait_for(pilot, lambda: isinstance(app.screen, Picker), what="the picker")
        await pilot.press(*"greeter", "enter")
        await wait_for(pilot, lambda: app.active == "greeter", what="the switch")
        assert "greeter" in str(status.render()) and "nodejs" in str(status.render())
        assert history.rows_shown == [], "the other function's invocations are not shown"
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: len(history.rows_shown) == 1)
        assert history.rows_shown[0].function == "greeter"
        assert history.rows_shown[0].outcome == "ok"

        await pilot.press("ctrl+f")
        await wait_for(pilot, lambda: isinstance(app.screen, Picker))
        await pilot.press(*"hello", "enter")
        await wait_for(pilot, lambda: app.active == "hello")
        assert [r.function for r in history.rows_shown] == ["hello"]
        assert editor.text == '{"name": "draft for hello"}' and editor.modified
        assert editor.event_name == "hello", "still the saved event it was, with its edits"

    run_app(make_app(hello, node), body)
