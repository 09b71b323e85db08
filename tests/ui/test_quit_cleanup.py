"""Quitting the TUI in the middle of things: an invoke still running, a function that forked a
child that outlives its handler. Nothing of the function may be left running afterwards."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from textual.pilot import Pilot

from tests.conftest import processes_with_env
from tests.ui.conftest import make_app, run_app, wait_for
from tests.ui.editing import function_dir
from workbench.core.bus import InvocationStarted
from workbench.ui.app import WorkbenchApp

SLOW = """import os, subprocess, sys, time

def handler(event, context):
    if event.get("fork"):
        # a grandchild in its own session, which a process-group kill alone would miss
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                         start_new_session=True)
    time.sleep(event.get("sleep", 0))
    return {"done": True}
"""


def _gone(marker: str) -> bool:
    deadline = time.monotonic() + 60
    while processes_with_env(marker):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _app(tmp_path: Path, marker: str) -> WorkbenchApp:
    key, value = marker.split("=")
    fn = function_dir(tmp_path, "slow", SLOW, f'timeout = 60\n[environment]\n{key} = "{value}"\n')
    return make_app(fn)


def test_quit_while_an_invoke_is_running_stops_everything(tmp_path: Path) -> None:
    marker = f"WB_QUIT_MARK={uuid.uuid4().hex}"

    async def body(pilot: Pilot[int], app: WorkbenchApp) -> None:
        started: list[str] = []
        app.session.bus.subscribe(
            lambda e: started.append(e.request_id) if isinstance(e, InvocationStarted) else None
        )
        editor = app.query_one("#event-text")
        editor.load_text('{"sleep": 30}')  # type: ignore[attr-defined]
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: started, what="the invocation to start")
        assert processes_with_env(marker), "the function is running"
        await app.shutdown()
        assert _gone(marker), "quitting mid-invoke left the function running"

    run_app(_app(tmp_path, marker), body)


def test_quit_reaps_a_child_the_function_left_behind(tmp_path: Path) -> None:
    marker = f"WB_FORK_MARK={uuid.uuid4().hex}"

    async def body(pilot: Pilot[int], app: WorkbenchApp) -> None:
        history = app.query_one("InvocationHistory")
        editor = app.query_one("#event-text")
        editor.load_text('{"fork": true}')  # type: ignore[attr-defined]
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: history.rows_shown, what="the invocation")  # type: ignore[attr-defined]
        assert len(processes_with_env(marker)) >= 2, "the runtime and its forked child"
        await pilot.press("ctrl+q")
        assert _gone(marker), "the forked child outlived the workbench"

    run_app(_app(tmp_path, marker), body)
