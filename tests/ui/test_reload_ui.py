"""Live reload inside the TUI: save, and the next invoke from the editor runs the new code; a
broken save is shown and the last good version keeps answering."""

from __future__ import annotations

import json
from pathlib import Path

from textual.pilot import Pilot

from tests.ui.conftest import make_app, run_app, wait_for
from workbench.ui.app import WorkbenchApp
from workbench.ui.widgets.history_table import InvocationHistory
from workbench.ui.widgets.log_pane import LogPane


def _message(app: WorkbenchApp) -> str:
    row = app.query_one(InvocationHistory).rows_shown[0]
    return str(json.loads(json.loads(row.response)["body"])["message"])


def test_a_save_reloads_and_a_broken_save_keeps_the_last_good_version(hello: Path) -> None:
    source = hello / "app.py"
    original = source.read_text()

    async def body(pilot: Pilot[int], app: WorkbenchApp) -> None:
        history = app.query_one(InvocationHistory)
        session = app.session

        async def invoke(count: int) -> None:
            await pilot.press("ctrl+r")
            await wait_for(
                pilot, lambda: len(history.rows_shown) == count, what=f"invocation {count}"
            )

        await invoke(1)
        assert _message(app) == "Hello, workbench!"
        source.write_text(original.replace('f"Hello, {name}!"', 'f"Howdy, {name}!"'))
        await wait_for(
            pilot, lambda: session.status("hello").last_reload is not None, what="the reload"
        )
        last = session.status("hello").last_reload
        assert last is not None and last.ok
        await wait_for(
            pilot,
            lambda: "last reload" in str(app.query_one("#status").render()),
            what="the status line to show the reload",
        )
        await invoke(2)
        assert _message(app) == "Howdy, workbench!"
        assert not history.rows_shown[0].cold, "the reload started the new code eagerly"

        first = session.status("hello").last_reload
        source.write_text("def handler(event, context):\n    return (\n")  # a syntax error
        await wait_for(
            pilot,
            lambda: session.status("hello").last_reload is not first,
            what="the failed reload",
        )
        last = session.status("hello").last_reload
        assert last is not None and not last.ok
        await wait_for(
            pilot, lambda: session.status("hello").state == "failed", what="failed state"
        )
        await wait_for(
            pilot,
            lambda: "failed" in str(app.query_one("#status").render()),
            what="the status line to say failed",
        )
        logs = app.query_one(LogPane)
        await wait_for(
            pilot,
            lambda: (
                logs.filter.request_id is None
                and any("SyntaxError" in line for line in logs.log_widget.lines)
            ),
            what="the log to show the failure, unfiltered",
        )
        await invoke(3)
        assert _message(app) == "Howdy, workbench!", "the last good version keeps serving"

        second = session.status("hello").last_reload
        source.write_text(original)
        await wait_for(
            pilot, lambda: session.status("hello").last_reload is not second, what="the recovery"
        )
        await invoke(4)
        assert _message(app) == "Hello, workbench!"
        assert session.status("hello").state == "ready"

    run_app(make_app(hello, watch=True), body)


def test_ctrl_n_forces_a_cold_start_without_a_change(hello: Path) -> None:
    async def body(pilot: Pilot[int], app: WorkbenchApp) -> None:
        history = app.query_one(InvocationHistory)
        for count in (1, 2):
            await pilot.press("ctrl+r")
            await wait_for(pilot, lambda c=count: len(history.rows_shown) == c)  # type: ignore[misc]
        assert [r.cold for r in history.rows_shown] == [False, True]
        await pilot.press("ctrl+n")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: len(history.rows_shown) == 3)
        assert history.rows_shown[0].cold

    run_app(make_app(hello), body)
