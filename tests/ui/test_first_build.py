"""A function whose first build fails: the TUI opens anyway, says so, refuses to invoke in
words, and a save that fixes the build brings the function up."""

from __future__ import annotations

from pathlib import Path

from textual.pilot import Pilot

from tests.ui.conftest import make_app, run_app, wait_for
from tests.ui.editing import ECHO, function_dir, notices
from workbench.ui.app import WorkbenchApp
from workbench.ui.widgets.history_table import InvocationHistory


def test_a_broken_first_build_then_a_fix(tmp_path: Path) -> None:
    fn = function_dir(tmp_path, "builds", ECHO, 'build = "sh build.sh"\n')
    (fn / "build.sh").write_text("echo compiling; echo broken >&2; exit 3\n")

    async def body(pilot: Pilot[int], app: WorkbenchApp) -> None:
        status = app.query_one("#status")
        assert app.session.status("builds").state == "failed"
        await wait_for(pilot, lambda: "failed" in str(status.render()), what="failed status")
        await wait_for(
            pilot, lambda: any("first build failed" in n for n in notices(app)), what="the notice"
        )
        logs = app.query_one("LogPane")
        await wait_for(
            pilot,
            lambda: any("broken" in line for line in logs.log_widget.lines),  # type: ignore[attr-defined]
            what="the build's output in the log",
        )
        await pilot.press("ctrl+r")
        await wait_for(
            pilot,
            lambda: any("ResourceConflictException" in n for n in notices(app)),
            what="the refusal",
        )
        assert app.query_one(InvocationHistory).rows_shown == []

        (fn / "build.sh").write_text("echo compiling\n")
        await wait_for(
            pilot, lambda: app.session.status("builds").state == "ready", what="the fixed build"
        )
        await pilot.press("ctrl+r")
        history = app.query_one(InvocationHistory)
        await wait_for(pilot, lambda: history.rows_shown, what="an invocation")
        assert history.rows_shown[0].outcome == "ok"

    run_app(make_app(fn, watch=True), body)
