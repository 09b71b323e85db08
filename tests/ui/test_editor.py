"""The event editor against a real function: typing, validation, saved and sample events."""

from __future__ import annotations

import json
from pathlib import Path

from textual.pilot import Pilot

from tests.ui.conftest import make_app, run_app, wait_for
from tests.ui.editing import ECHO, function_dir, notices, shown, type_text
from workbench.ui.app import WorkbenchApp
from workbench.ui.screens.dialogs import Confirm, NamePrompt, Picker
from workbench.ui.widgets.event_editor import EventEditor
from workbench.ui.widgets.history_table import InvocationHistory
from workbench.ui.widgets.log_pane import LogPane
from workbench.ui.widgets.response_view import ResponseView


def test_a_typed_event_is_invoked_and_every_pane_answers(hello: Path) -> None:
    async def body(pilot: Pilot[int], app: WorkbenchApp) -> None:
        editor = app.query_one(EventEditor)
        history = app.query_one(InvocationHistory)
        editor.action_new()
        editor.text_area.load_text("")
        await type_text(pilot, '{"name": "Ada"}')
        assert editor.text == '{"name": "Ada"}'
        assert editor.problem is None and "●" in shown(app, "#event-name")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: history.rows_shown, what="a history row")
        row = history.rows_shown[0]
        assert row.event == b'{"name": "Ada"}' and row.outcome == "ok"
        assert str(history.get_row_at(0)[1]) == "(unsaved)"
        assert "Hello, Ada!" in shown(app, "#response-body")
        await wait_for(
            pilot,
            lambda: any("greeting Ada" in line for line in app.query_one(LogPane).log_widget.lines),
            what="the function's log line",
        )
        assert row.request_id[:8] in shown(app, "#timing-selected")
        assert "1 invo" in shown(app, "#timing-session")
        # the request that was sent, one key away
        app.query_one(ResponseView).query_one("#payload-scroll").focus()
        await pilot.press("v")
        await wait_for(
            pilot,
            lambda: app.query_one(ResponseView).side == "request",
            what="app.query_one(ResponseView).side == 'request'",
        )
        assert '"Ada"' in shown(app, "#request-body")
        assert app.query_one("#response-body").has_class("hidden")

    run_app(make_app(hello), body)


def test_invalid_json_says_where_and_is_never_sent(hello: Path) -> None:
    async def body(pilot: Pilot[int], app: WorkbenchApp) -> None:
        editor = app.query_one(EventEditor)
        history = app.query_one(InvocationHistory)
        editor.action_new()
        editor.text_area.load_text("")
        await type_text(pilot, '{\n  "name": "Ada",\n}')
        assert editor.problem is not None
        problem = shown(app, "#event-problem")
        assert "line 3, column 1" in problem and "double quotes" in problem
        assert app.query_one("#invoke-button").disabled
        editor.text_area.move_cursor((0, 0))
        await pilot.press("ctrl+r")
        await pilot.click("#invoke-button")
        for _ in range(10):  # give a wrongly sent invocation every chance to come back
            await pilot.pause(0.02)
        assert not history.rows_shown and not app.session.invocations()
        assert any("Not sent" in n and "line 3, column 1" in n for n in notices(app))
        assert editor.text_area.cursor_location == (2, 0)  # the cursor went to the problem
        # fixed, the same keys send it: the refusal above was the validation, nothing else
        await pilot.press("backspace", "backspace")  # the newline, then the stray comma
        await wait_for(
            pilot,
            lambda: editor.problem is None and not app.query_one("#invoke-button").disabled,
            what="the fixed event to be sendable",
        )
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: history.rows_shown, what="the fixed event's row")
        assert json.loads(history.rows_shown[0].event) == {"name": "Ada"}
        # had the broken one gone out, however late, it would have been answered before this
        assert len(app.session.invocations()) == 1 and len(history.rows_shown) == 1

    run_app(make_app(hello), body)


def test_save_save_as_rename_delete_then_reopen_through_the_picker(hello: Path) -> None:
    events = hello / "events"

    async def body(pilot: Pilot[int], app: WorkbenchApp) -> None:
        editor = app.query_one(EventEditor)
        assert editor.event_name == "hello"
        editor.text_area.move_cursor((0, 1))
        await type_text(pilot, '"greeting": "hi", ')
        assert "hello ●" in shown(app, "#event-name")
        await pilot.press("ctrl+s")
        saved = {"greeting": "hi", "name": "workbench"}
        assert json.loads((events / "hello.json").read_text()) == saved
        assert (events / "hello.json").read_text().startswith("{\n  ")  # pretty JSON
        assert "●" not in shown(app, "#event-name")

        # save as: a name that cannot be a file is refused, with the reason, in the dialog
        await pilot.press("f12")
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, NamePrompt),
            what="isinstance(app.screen, NamePrompt)",
        )
        await pilot.press("ctrl+u")
        await type_text(pilot, "new order!")
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, NamePrompt),
            what="isinstance(app.screen, NamePrompt)",
        )
        prompt = app.screen
        assert isinstance(prompt, NamePrompt) and "cannot name a saved event" in prompt.problem
        await pilot.press("ctrl+u")
        await type_text(pilot, "order")
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: not isinstance(app.screen, NamePrompt),
            what="not isinstance(app.screen, NamePrompt)",
        )
        assert json.loads((events / "order.json").read_text()) == saved
        assert editor.event_name == "order"

        # rename: refused onto an existing event, then done
        await pilot.press("f2")
        await pilot.press("ctrl+u")
        await type_text(pilot, "hello")
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, NamePrompt) and "exists" in app.screen.problem,
            what="isinstance(app.screen, NamePrompt) and 'exists'...",
        )
        await pilot.press("ctrl+u")
        await type_text(pilot, "order-2")
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: not (events / "order.json").exists() and (events / "order-2.json").is_file(),
            what="not (events / 'order.json').exists() and (event...",
        )
        assert editor.event_name == "order-2"

        # delete, after a confirmation
        await pilot.press("f8")
        await wait_for(
            pilot, lambda: isinstance(app.screen, Confirm), what="isinstance(app.screen, Confirm)"
        )
        await pilot.press("y")
        await wait_for(
            pilot,
            lambda: not (events / "order-2.json").exists(),
            what="not (events / 'order-2.json').exists()",
        )
        assert editor.event_name is None and "(not saved)" in shown(app, "#event-name")

        # reopen a saved event through the picker
        await pilot.press("ctrl+o")
        await wait_for(
            pilot, lambda: isinstance(app.screen, Picker), what="isinstance(app.screen, Picker)"
        )
        await type_text(pilot, "hello")
        await pilot.press("enter")
        # the deleted event's text is unsaved now: dropping it takes a yes
        assert isinstance(app.screen, Confirm)
        await pilot.press("y")
        await wait_for(pilot, lambda: editor.event_name == "hello", what="hello opened")
        assert json.loads(editor.text) == saved and not editor.modified

    run_app(make_app(hello), body)


def test_unsaved_changes_are_not_dropped_without_asking(hello: Path) -> None:
    async def body(pilot: Pilot[int], app: WorkbenchApp) -> None:
        editor = app.query_one(EventEditor)
        await type_text(pilot, "[1, ")
        await pilot.press("ctrl+o")
        await type_text(pilot, "s3/put")
        await pilot.press("enter")
        await wait_for(
            pilot, lambda: isinstance(app.screen, Confirm), what="isinstance(app.screen, Confirm)"
        )
        await pilot.press("n")
        await wait_for(
            pilot,
            lambda: editor.text.startswith("[1, ") and editor.event_name == "hello",
            what="editor.text.startswith('[1, ') and editor.event...",
        )

    run_app(make_app(hello), body)


def test_a_sample_event_is_invoked_then_saved_under_its_own_name(tmp_path: Path) -> None:
    echo = function_dir(tmp_path, "echo", ECHO)  # no events/ folder yet

    async def body(pilot: Pilot[int], app: WorkbenchApp) -> None:
        editor = app.query_one(EventEditor)
        history = app.query_one(InvocationHistory)
        assert editor.event_name is None and editor.text == "{}\n"
        await pilot.press("ctrl+o")
        await type_text(pilot, "sqs receive-message")
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: editor.origin == "sample sqs/receive-message",
            what="the SQS sample in the editor",
        )
        event = json.loads(editor.text)
        assert event["Records"][0]["eventSource"] == "aws:sqs"
        assert "sample sqs/receive-message (not saved)" in shown(app, "#event-name")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: history.rows_shown, what="the SQS invocation")
        assert json.loads(history.rows_shown[0].response) == event
        assert "aws:sqs" in shown(app, "#response-body")

        await pilot.press("ctrl+s")
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, NamePrompt),
            what="isinstance(app.screen, NamePrompt)",
        )
        await pilot.press("enter")  # the suggested name: the sample's own
        path = echo / "events" / "sqs-receive-message.json"
        assert json.loads(path.read_text()) == event
        assert editor.event_name == "sqs-receive-message" and not editor.modified

    run_app(make_app(echo), body)
