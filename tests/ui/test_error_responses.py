"""Failures read well: a raised error, a timeout and a crash, in the response pane and in the
history's status column."""

from __future__ import annotations

from pathlib import Path

from textual.pilot import Pilot

from tests.ui.conftest import make_app, run_app, wait_for
from tests.ui.editing import function_dir, shown
from workbench.ui.app import WorkbenchApp
from workbench.ui.widgets.history_table import InvocationHistory

RAISES = """\
def handler(event, context):
    check(event)


def check(event):
    raise ValueError("order 42 has no lines")
"""
SLEEPS = """\
import time


def handler(event, context):
    print("sleeping past the deadline", flush=True)
    time.sleep(30)
"""
EXITS = """\
import os


def handler(event, context):
    print("exiting mid-invoke", flush=True)
    os._exit(3)
"""


def invoke_and_read(folder: Path) -> tuple[str, str]:
    """Invoke the function once from the editor; (the status cell, the response pane)."""
    seen: list[str] = []

    async def body(pilot: Pilot[int], app: WorkbenchApp) -> None:
        history = app.query_one(InvocationHistory)
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: history.rows_shown, what="the failed row")
        await wait_for(pilot, lambda: history.selected_id is not None, what="the selection")
        seen.extend([str(history.get_row_at(0)[2]), shown(app, "#response-body")])

    run_app(make_app(folder), body)
    return seen[0], seen[1]


def test_a_raised_error_shows_type_message_and_stack_trace(tmp_path: Path) -> None:
    status, response = invoke_and_read(function_dir(tmp_path, "raises", RAISES))
    assert status == "ValueError"
    lines = response.splitlines()
    assert lines[0] == "ValueError" and lines[1] == "order 42 has no lines"
    assert "Stack trace" in lines
    assert 'raise ValueError("order 42 has no lines")' in response
    assert "in check" in response and "in handler" in response
    # the frames read top to bottom, as Python prints them
    assert response.index("in handler") < response.index("in check")


def test_a_timeout_says_so_and_what_happens_next(tmp_path: Path) -> None:
    folder = function_dir(tmp_path, "sleeps", SLEEPS, toml="timeout = 1\n")
    status, response = invoke_and_read(folder)
    assert status == "timeout"
    assert response.splitlines()[0] == "Timed out  Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in response
    assert "RequestId:" not in response  # the header already names the request
    assert "next invoke starts cold" in response


def test_a_crash_says_the_runtime_exited(tmp_path: Path) -> None:
    status, response = invoke_and_read(function_dir(tmp_path, "exits", EXITS))
    assert status == "crash"
    assert response.splitlines()[0] == "Crashed  Runtime.ExitError"
    assert "exit status 3" in response and "RequestId:" not in response
    assert "last output is in the logs" in response
