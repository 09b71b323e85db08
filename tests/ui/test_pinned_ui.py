"""Regression on save in the TUI: pinned events run again after each reload, and a changed
answer is shown, with its diff kept by the session for the response pane."""

from __future__ import annotations

from pathlib import Path

from textual.pilot import Pilot

from tests.ui.conftest import make_app, run_app, wait_for
from workbench.core.saved_events.store import pin_event, save_meta
from workbench.ui.app import WorkbenchApp
from workbench.ui.widgets.history_table import InvocationHistory


def test_a_save_that_changes_a_pinned_answer_is_flagged(hello: Path) -> None:
    events = hello / "events"
    save_meta(
        events,
        "hello",
        {"expected": {"statusCode": 200, "body": '{"message": "Hello, workbench!"}'}},
    )
    pin_event(events, "hello")
    source = hello / "app.py"
    shown: list[str] = []

    async def body(pilot: Pilot[int], app: WorkbenchApp) -> None:
        original_notify = app.notify

        def notify(message: str, **kwargs: object) -> None:
            shown.append(f"{kwargs.get('title', '')}: {message}")
            original_notify(message, **kwargs)  # type: ignore[arg-type]

        app.notify = notify  # type: ignore[method-assign]
        session = app.session
        source.write_text(source.read_text().replace("# nothing", "# nothing") + "\n# touched\n")
        await wait_for(pilot, lambda: len(session.verdicts()) == 1, what="the first check")
        (first,) = session.verdicts()
        assert first.status == "pass" and first.event_name == "hello"

        source.write_text(source.read_text().replace('f"Hello, {name}!"', 'f"Bye, {name}!"'))
        await wait_for(pilot, lambda: len(session.verdicts()) == 2, what="the second check")
        second = list(session.verdicts())[-1]
        assert second.status == "diff" and second.diff is not None
        assert "Bye, workbench!" in second.diff and "Hello, workbench!" in second.diff
        await wait_for(
            pilot, lambda: any("Pinned event changed" in m for m in shown), what="the notification"
        )
        history = app.query_one(InvocationHistory)
        await wait_for(pilot, lambda: len(history.rows_shown) == 2, what="both check runs")
        assert {r.source for r in history.rows_shown} == {"pinned"}
        assert [r.event_name for r in history.rows_shown] == ["hello", "hello"]
        history.focus()
        history.move_cursor(row=1)
        await pilot.press("up")  # onto the newest row, the run that differs
        await wait_for(
            pilot,
            lambda: "Pinned check: DIFF" in str(app.query_one("#response-body").render()),
            what="the verdict in the response",
        )
        body_text = str(app.query_one("#response-body").render())
        assert "+" in body_text and "Bye, workbench!" in body_text

    run_app(make_app(hello, watch=True), body)
