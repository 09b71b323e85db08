"""The Logs pane when a function logs more than history keeps of one invocation: the live log
says so, the selected row says its log was cut, and a 1 MB line shows only its beginning."""

from __future__ import annotations

from pathlib import Path

from textual.pilot import Pilot

from tests.ui.conftest import make_app, run_app, wait_for
from workbench.ui.app import WorkbenchApp
from workbench.ui.widgets.history_table import InvocationHistory
from workbench.ui.widgets.log_pane import SHOWN_CHARS, LogPane

BIG = """\
def handler(event, context):
    print("z" * (3 * 1024 * 1024))  # one line of 3 MB: three lines of 1 MB in the log
    return {"ok": True}
"""


def test_a_cut_log_is_said_live_and_on_its_row(tmp_path: Path) -> None:
    fn = tmp_path / "big"
    fn.mkdir()
    (fn / "app.py").write_text(BIG)
    (fn / "workbench.toml").write_text("timeout = 120\nlog_max_mb = 1\n")

    async def body(pilot: Pilot[int], app: WorkbenchApp) -> None:
        pane = app.query_one(LogPane)
        history = app.query_one(InvocationHistory)
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: len(history.rows_shown) == 1, what="the invocation")
        rid = history.rows_shown[0].request_id
        assert app.rows[rid].log_truncated
        await wait_for(
            pilot,
            lambda: "log cut" in str(app.query_one("#log-request").render()),
            what="the row's log said to be cut",
        )
        lines = list(pane.log_widget.lines)
        assert any("log is past what history keeps of it (1 MB" in x for x in lines), lines
        big = [x for x in lines if x.lstrip().startswith("z")]
        assert len(big) == 3
        assert all(x.endswith("(1,038,576 more characters not shown)") for x in big)
        assert all(len(x) < SHOWN_CHARS + 100 for x in lines)

    run_app(make_app(fn), body)
