"""History rows as things to act on: replay, save the event, open it, look at an older one."""

from __future__ import annotations

import json
from pathlib import Path

from textual.pilot import Pilot

from tests.ui.conftest import make_app, run_app, wait_for
from tests.ui.editing import shown, type_text
from workbench.ui.app import WorkbenchApp
from workbench.ui.screens.dialogs import NamePrompt
from workbench.ui.widgets.event_editor import EventEditor
from workbench.ui.widgets.history_table import InvocationHistory
from workbench.ui.widgets.log_pane import LogPane
from workbench.ui.widgets.response_view import ResponseView


async def invoke(pilot: Pilot[int], app: WorkbenchApp, text: str) -> None:
    """Put `text` in the editor, invoke it, and wait for its row."""
    history = app.query_one(InvocationHistory)
    before = len(history.rows_shown)
    editor = app.query_one(EventEditor)
    editor.load(text, None)
    await pilot.press("ctrl+r")
    await wait_for(pilot, lambda: len(history.rows_shown) > before, what="a new history row")


def test_r_replays_the_selected_row(hello: Path) -> None:
    async def body(pilot: Pilot[int], app: WorkbenchApp) -> None:
        history = app.query_one(InvocationHistory)
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: history.rows_shown, what="the first row")
        app.query_one(EventEditor).load('{"name": "changed"}', None)  # replay ignores it
        history.focus()
        await pilot.press("r")
        await wait_for(pilot, lambda: len(history.rows_shown) == 2, what="the replayed row")
        new, old = history.rows_shown
        assert new.event == old.event and new.event_name == old.event_name == "hello"
        assert new.source == "replay" and new.request_id != old.request_id
        assert not new.cold  # the same environment, now warm
        assert history.selected_id == new.request_id  # the replay is what the panes show
        assert "Hello, workbench!" in shown(app, "#response-body")

    run_app(make_app(hello), body)


def test_s_saves_the_selected_rows_event_not_the_editors(hello: Path) -> None:
    async def body(pilot: Pilot[int], app: WorkbenchApp) -> None:
        history = app.query_one(InvocationHistory)
        await invoke(pilot, app, '{"name": "Grace", "n": 3}')
        editor = app.query_one(EventEditor)
        editor.load('{"other": true}', None)
        history.focus()
        await pilot.press("s")
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, NamePrompt),
            what="isinstance(app.screen, NamePrompt)",
        )
        await pilot.press("ctrl+u")
        await type_text(pilot, "grace")
        await pilot.press("enter")
        saved = hello / "events" / "grace.json"
        await wait_for(pilot, saved.exists, what="the saved event")
        assert json.loads(saved.read_text()) == {"name": "Grace", "n": 3}
        assert editor.text == '{"other": true}' and editor.event_name is None

    run_app(make_app(hello), body)


def test_e_opens_the_rows_event_and_v_shows_the_request(hello: Path) -> None:
    async def body(pilot: Pilot[int], app: WorkbenchApp) -> None:
        history = app.query_one(InvocationHistory)
        await invoke(pilot, app, '{"name": "Linus"}')
        app.query_one(EventEditor).load("{}\n", None)
        history.focus()
        await pilot.press("v")
        await wait_for(
            pilot,
            lambda: app.query_one(ResponseView).side == "request",
            what="app.query_one(ResponseView).side == 'request'",
        )
        assert '"Linus"' in shown(app, "#request-body")
        await pilot.press("e")
        editor = app.query_one(EventEditor)
        await wait_for(pilot, lambda: app.focused is editor.text_area, what="the editor's focus")
        assert json.loads(editor.text) == {"name": "Linus"}
        assert editor.origin is not None and history.rows_shown[0].request_id[:8] in editor.origin
        assert app.focused is editor.text_area

    run_app(make_app(hello), body)


def test_selecting_an_older_row_switches_response_timing_and_logs(hello: Path) -> None:
    async def body(pilot: Pilot[int], app: WorkbenchApp) -> None:
        history = app.query_one(InvocationHistory)
        logs = app.query_one(LogPane)
        await invoke(pilot, app, '{"name": "first"}')
        await invoke(pilot, app, '{"name": "second"}')
        newer, older = history.rows_shown
        await wait_for(pilot, lambda: "Hello, second!" in shown(app, "#response-body"), what="2nd")
        await wait_for(
            pilot,
            lambda: any("greeting second" in ln for ln in logs.log_widget.lines),
            what="the newer invocation's logs",
        )
        history.focus()
        await pilot.press("down")
        await wait_for(
            pilot,
            lambda: (
                history.selected_id == older.request_id
                and "Hello, first!" in shown(app, "#response-body")
                and logs.filter.request_id == older.request_id
                and any("greeting first" in ln for ln in logs.log_widget.lines)
            ),
            what="the older row in every pane",
        )
        assert older.request_id[:8] in shown(app, "#timing-selected")
        assert newer.request_id[:8] not in shown(app, "#timing-selected")
        assert logs.filter.request_id == older.request_id
        lines = list(logs.log_widget.lines)
        assert any("greeting first" in ln for ln in lines)
        assert not any(newer.request_id in ln or "greeting second" in ln for ln in lines)
        await pilot.press("up")
        await wait_for(
            pilot,
            lambda: (
                "Hello, second!" in shown(app, "#response-body")
                and logs.filter.request_id == newer.request_id
            ),
            what="the newer row again",
        )

    run_app(make_app(hello), body)
