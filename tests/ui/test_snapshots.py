"""SVG snapshots of the real app at 120x36 (pytest-textual-snapshot; the SVGs live in
__snapshots__/test_snapshots/ and are committed). `pytest --snapshot-update` rewrites them:
look at them before committing.

Everything that varies from run to run is frozen so the pictures are the same on every
machine: the history is written with fixed request ids, times and durations; times are shown
in UTC; the Invoke API's address is a fixed one (the real server still listens on a free
port); cursors do not blink; the help shows the config path under a fixed ~; no invocation
happens in this session, so no measured figure appears.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from textual.pilot import Pilot
from textual.widgets import TextArea

from tests.ui.conftest import SIZE, make_app
from workbench.core.history.store import HistoryStore
from workbench.core.record import InvocationRecord, InvokeRequest, InvokeResult
from workbench.core.vocab import Status
from workbench.ui.app import WorkbenchApp

API_URL = "http://127.0.0.1:9001"
T0 = 1_767_268_800.0  # 2026-01-01 12:00:00 UTC
OK = b'{"statusCode": 200, "body": "{\\"message\\": \\"Hello, workbench!\\"}"}'
KEY_ERROR = (
    b'{"errorMessage": "\'orderId\'", "errorType": "KeyError", "requestId": "", '
    b'"stackTrace": ["  File \\"/var/task/app.py\\", line 14, in handler\\n    '
    b'order = event[\\"orderId\\"]\\n"]}'
)
TIMEOUT = (
    b'{"errorMessage": "2026-01-01T12:03:03.000Z 3c1f5d7e-4b8a-4f0e-9d6c-2a7b8e9f0a13 '
    b'Task timed out after 3.00 seconds", "errorType": "Sandbox.Timedout"}'
)
# (request id, seconds after T0, event name, status, cold, duration, billed, init, memory,
#  response); oldest first
HISTORY = [
    ("0a6e2c41-7d3b-4c2e-8f1a-5b9d0e3c7a21", 0, "hello", "ok", True, 6.31, 149, 142.5, 41, OK),
    ("1b7f3d52-8e4c-4d3f-9a2b-6c0e1f4d8b32", 60, "hello", "ok", False, 1.42, 2, None, 41, OK),
    (
        "2c8a4e63-9f5d-4e4a-8b3c-7d1f2a5e9c43",
        120,
        "order-created",
        "error",
        False,
        3.10,
        4,
        None,
        42,
        KEY_ERROR,
    ),
    (
        "3c1f5d7e-4b8a-4f0e-9d6c-2a7b8e9f0a13",
        180,
        "slow",
        "timeout",
        False,
        3000.0,
        3000,
        None,
        44,
        TIMEOUT,
    ),
    ("4d2a6e8f-5c9b-4a1f-8e7d-3b8c9f0a1b24", 240, None, "ok", False, 0.88, 1, None, 44, OK),
    ("5e3b7f90-6d0c-4b2a-9f8e-4c9d0a1b2c35", 300, "hello", "ok", True, 7.94, 125, 116.2, 40, OK),
]


def write_history(folder: Path, function: str = "hello") -> None:
    with HistoryStore(folder) as store:
        for rid, dt, name, status, cold, duration, billed, init, mem, response in HISTORY:
            event = b'{"name": "workbench"}' if name != "order-created" else b'{"order": 7}'
            report = (
                f"REPORT RequestId: {rid}\tDuration: {duration:.2f} ms\t"
                f"Billed Duration: {billed} ms\tMemory Size: 128 MB\t"
                f"Max Memory Used: {mem} MB"
            )
            store.record(
                InvocationRecord(
                    function=function,
                    request_id=rid,
                    request=InvokeRequest(event, source="tui"),
                    result=InvokeResult(rid, response, function_error=status == "error"),
                    status=cast(Status, status),
                    cold=cold,
                    started_at=T0 + dt,
                    duration_ms=duration,
                    billed_ms=billed,
                    init_ms=init,
                    memory_mb=128,
                    max_memory_mb=mem,
                    log_lines=[
                        f"START RequestId: {rid} Version: $LATEST",
                        "greeting workbench",
                        f"END RequestId: {rid}",
                        report,
                    ],
                ),
                name,
            )


@pytest.fixture
def frozen(hello: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The example function with a crafted history, shown in UTC, with ~ at tmp_path."""
    write_history(hello)
    monkeypatch.setenv("HOME", str(tmp_path))  # the help shows ~/config-home/...
    old_tz = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield hello
    if old_tz is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old_tz
    time.tzset()


def key_for(app: WorkbenchApp, binding_id: str) -> str:
    return next(keys for i, keys, _ in app.key_bindings() if i == binding_id).split(",")[0]


def freeze(app: WorkbenchApp) -> None:
    """The run-to-run differences left once the session is up: the API's port, and cursors
    that blink on a timer."""
    app.session.api_url = API_URL
    app._refresh_status()
    for screen in app.screen_stack:
        for widget in screen.query("TextArea, Input"):
            widget.cursor_blink = False  # type: ignore[attr-defined]
            # TextArea caches rendered lines under a key that leaves the cursor out when it
            # does not blink, so a line cached while the cursor blinked off would be reused
            # without it: drop the cache so the steady cursor is drawn every time.
            if isinstance(widget, TextArea):
                widget._line_cache.clear()
                widget.refresh()


Steps = Callable[[Pilot[Any], WorkbenchApp], Any]


def prepare(steps: Steps | None = None) -> Callable[[Pilot[Any]], Any]:
    """run_before for snap_compare: wait for the session, do `steps`, then freeze."""

    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, WorkbenchApp)
        await app.workers.wait_for_complete()
        await pilot.pause()
        if steps is not None:
            await steps(pilot, app)
            await pilot.pause()
        freeze(app)
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("theme", ["workbench-dark", "workbench-light", "workbench-high-contrast"])
def test_app_with_history_in_each_theme(snap_compare: Any, frozen: Path, theme: str) -> None:
    """The whole app at 120x36 over a crafted history: the newest invocation (a cold start)
    selected, so the response, its timing breakdown and the statuses show the theme."""
    assert snap_compare(make_app(frozen, theme=theme), terminal_size=SIZE, run_before=prepare())


def test_history_error_selected(snap_compare: Any, frozen: Path) -> None:
    """The function error selected in the history: the response pane lays out the error
    type, message and stack trace, and the timing pane follows the selection."""

    async def steps(pilot: Pilot[Any], app: WorkbenchApp) -> None:
        app.query_one("#history").focus()
        await pilot.press("down", "down", "down")

    assert snap_compare(make_app(frozen), terminal_size=SIZE, run_before=prepare(steps))


def test_help_screen(snap_compare: Any, frozen: Path) -> None:
    """F1: the keys with their binding ids."""

    async def steps(pilot: Pilot[Any], app: WorkbenchApp) -> None:
        await pilot.press(key_for(app, "help"))

    assert snap_compare(make_app(frozen), terminal_size=SIZE, run_before=prepare(steps))


def test_event_picker(snap_compare: Any, frozen: Path) -> None:
    """The picker: saved events first, then the bundled samples."""

    async def steps(pilot: Pilot[Any], app: WorkbenchApp) -> None:
        await pilot.press(key_for(app, "pick_event"))

    assert snap_compare(make_app(frozen), terminal_size=SIZE, run_before=prepare(steps))


def test_invalid_json_in_the_editor(snap_compare: Any, frozen: Path) -> None:
    """An event that is not JSON: where and why, and Invoke disabled."""

    async def steps(pilot: Pilot[Any], app: WorkbenchApp) -> None:
        app.query_one("#event-text").focus()
        await pilot.press("end", "left", ",")  # {"name": "workbench",}

    assert snap_compare(make_app(frozen), terminal_size=SIZE, run_before=prepare(steps))


def test_maximised_history(snap_compare: Any, frozen: Path) -> None:
    """The history pane maximised: every column with room, the status line kept."""

    async def steps(pilot: Pilot[Any], app: WorkbenchApp) -> None:
        app.query_one("#history").focus()
        await pilot.press(key_for(app, "maximize"))

    assert snap_compare(make_app(frozen), terminal_size=SIZE, run_before=prepare(steps))
