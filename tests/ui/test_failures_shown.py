"""Failures of workbench's own are shown, and preferences are kept only when chosen.

A bus listener that raises, or a route that raises, must neither stop an invocation nor fail
unseen: it reaches the TUI as a notice and a line in the log pane. `--theme` is for one run;
only a theme picked in the UI is remembered, so a `theme` in workbench.toml keeps working."""

from __future__ import annotations

from pathlib import Path

from textual.pilot import Pilot

from tests.ui.conftest import make_app, run_app, wait_for
from tests.ui.editing import notices
from workbench.core.bus import Event, InvocationStarted, WorkerFailed
from workbench.ui.app import WorkbenchApp
from workbench.ui.prefs import Prefs, prefs_path
from workbench.ui.widgets.log_pane import LogPane


def log_lines(app: WorkbenchApp) -> list[str]:
    return [str(line) for line in app.query_one(LogPane).log_widget.lines]


def test_a_failing_listener_is_shown_and_the_invocation_still_finishes(hello: Path) -> None:
    async def body(pilot: Pilot[int], app: WorkbenchApp) -> None:
        def broken(event: Event) -> None:
            if isinstance(event, InvocationStarted):
                raise RuntimeError("listener bug")

        app.session.bus.subscribe(broken)
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.session.invocations(), what="the invocation")
        (record,) = app.session.invocations()
        assert record.status == "ok"
        await wait_for(
            pilot,
            lambda: any("listener bug" in n for n in notices(app)),
            what="a notice of the failure",
        )
        (notice,) = [n for n in notices(app) if "listener bug" in n]
        assert "InvocationStarted" in notice and "RuntimeError" in notice
        book = app.session.log
        (line,) = [e for e in book.entries(book.first, book.total) if "listener bug" in e[1]]
        assert line[1].startswith("[ERROR] workbench: a listener") and line[2] == "workbench"
        # the pane follows the new request; with every line shown, the failure is there
        app.query_one(LogPane).set_filter(request_id=None)
        await wait_for(
            pilot,
            lambda: any("listener bug" in line for line in log_lines(app)),
            what="the failure in the log pane",
        )

    run_app(make_app(hello), body)


def test_a_worker_failure_reaches_the_screen_and_the_log(hello: Path) -> None:
    async def body(pilot: Pilot[int], app: WorkbenchApp) -> None:
        app.session.bus.emit(WorkerFailed("hello", "watcher", "OSError: too many open files"))
        want = "hello: watcher stopped: OSError: too many open files"
        await wait_for(pilot, lambda: want in notices(app), what="the notice")
        await wait_for(
            pilot, lambda: any(want in line for line in log_lines(app)), what="the log line"
        )

    run_app(make_app(hello), body)


def test_the_theme_flag_is_for_this_run_only(hello: Path) -> None:
    async def light(pilot: Pilot[int], app: WorkbenchApp) -> None:
        assert app.theme == "workbench-light"

    run_app(make_app(hello, theme="workbench-light"), light)
    assert Prefs.load().theme is None
    assert not prefs_path().exists()

    async def default(pilot: Pilot[int], app: WorkbenchApp) -> None:
        assert app.theme == "workbench-dark"

    run_app(make_app(hello), default)


def test_a_theme_in_workbench_toml_is_read_on_every_run(hello: Path) -> None:
    seen: list[str] = []

    async def record(pilot: Pilot[int], app: WorkbenchApp) -> None:
        seen.append(app.theme)

    (hello / "workbench.toml").write_text('theme = "workbench-high-contrast"\n')
    run_app(make_app(hello), record)
    (hello / "workbench.toml").write_text('theme = "workbench-light"\n')
    run_app(make_app(hello), record)
    assert seen == ["workbench-high-contrast", "workbench-light"]
    assert Prefs.load().theme is None
