"""The Logs pane against real functions: filters by text, level and request (a cold start's
INIT lines included), follow, stderr told apart, and build and reload lines."""

from __future__ import annotations

import shutil
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Input, Select

from tests.ui.conftest import make_app, run_app, wait_for
from workbench.core.logfilter import line_level
from workbench.ui.app import WorkbenchApp
from workbench.ui.widgets.history_table import InvocationHistory
from workbench.ui.widgets.log_pane import LogPane

LEVELLED = """\
import json
import logging
import sys

print("init says hi")  # INIT output: no request id, but this cold start's
logging.getLogger().setLevel(logging.DEBUG)


def handler(event, context):
    print(json.dumps({"level": "DEBUG", "message": "json debug"}))
    print(json.dumps({"levelname": "error", "message": "json error"}))
    print(json.dumps({"severity": "WARNING", "message": "json warning"}))
    logging.getLogger().info("text info")  # [INFO]\\t<time>\\t<request id>\\ttext info
    logging.getLogger().error("text error")
    print("plain stdout")
    print("to stderr", file=sys.stderr)
    return {"ok": True}
"""


def _function(tmp_path: Path, name: str, source: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "app.py").write_text(source)
    return folder


def _lines(app: WorkbenchApp) -> list[str]:
    return list(app.query_one(LogPane).log_widget.lines)


async def _invoke(pilot: Pilot[int], app: WorkbenchApp, count: int) -> str:
    history = app.query_one(InvocationHistory)
    await pilot.press("ctrl+r")
    await wait_for(pilot, lambda: len(history.rows_shown) == count, what=f"invocation {count}")
    return history.rows_shown[0].request_id


def test_text_filter_refills_from_the_whole_log(hello: Path) -> None:
    async def body(pilot: Pilot[int], app: WorkbenchApp) -> None:
        pane = app.query_one(LogPane)
        rid = await _invoke(pilot, app, 1)
        await wait_for(pilot, lambda: any("greeting" in x for x in _lines(app)))
        pane.action_clear_request()
        pane.query_one("#log-text-filter", Input).focus()
        await pilot.press(*"GREETING")  # any case
        await wait_for(pilot, lambda: pane.filter.text == "GREETING")
        shown = _lines(app)
        assert shown and all("greeting" in x.lower() for x in shown), shown
        for _ in "GREETING":
            await pilot.press("backspace")
        await wait_for(
            pilot,
            lambda: any(f"REPORT RequestId: {rid}" in x for x in _lines(app)),
            what="every line again",
        )
        assert any(x.startswith("·INIT_START") for x in _lines(app))

    run_app(make_app(hello), body)


def test_level_filter_reads_json_and_text_levels(tmp_path: Path) -> None:
    fn = _function(tmp_path, "levels", LEVELLED)

    async def body(pilot: Pilot[int], app: WorkbenchApp) -> None:
        pane = app.query_one(LogPane)
        await _invoke(pilot, app, 1)
        await wait_for(pilot, lambda: any("plain stdout" in x for x in _lines(app)))
        pane.query_one("#log-level", Select).value = "WARN"
        await wait_for(pilot, lambda: pane.filter.level == "WARN", what="the level filter")
        shown = " | ".join(_lines(app))
        for wanted in ("json error", "json warning", "text error"):
            assert wanted in shown, shown
        for unwanted in ("json debug", "text info", "plain stdout", "START RequestId"):
            assert unwanted not in shown, shown
        pane.query_one("#log-level", Select).value = "DEBUG"
        await wait_for(pilot, lambda: pane.filter.level == "DEBUG")
        shown = " | ".join(_lines(app))
        assert "json debug" in shown and "text info" in shown and "plain stdout" not in shown
        pane.query_one("#log-level", Select).clear()
        await wait_for(
            pilot, lambda: any("plain stdout" in x for x in _lines(app)), what="any level again"
        )

    run_app(make_app(fn), body)


def test_selecting_an_older_row_shows_its_lines_and_its_cold_start(tmp_path: Path) -> None:
    fn = _function(tmp_path, "levels", LEVELLED)

    async def body(pilot: Pilot[int], app: WorkbenchApp) -> None:
        history = app.query_one(InvocationHistory)
        cold = await _invoke(pilot, app, 1)
        warm = await _invoke(pilot, app, 2)
        assert history.rows_shown[1].cold and not history.rows_shown[0].cold
        await wait_for(
            pilot,
            lambda: any(f"START RequestId: {warm}" in x for x in _lines(app)),
            what="the newest selected",
        )
        newest = " | ".join(_lines(app))
        assert cold not in newest and "init says hi" not in newest and "INIT_START" not in newest
        history.focus()
        await pilot.press("down")  # newest first: down is older
        await wait_for(
            pilot,
            lambda: any(f"START RequestId: {cold}" in x for x in _lines(app)),
            what="the older row's lines",
        )
        shown = _lines(app)
        assert warm not in " | ".join(shown)
        # the INIT of its cold start, though neither line carries a request id
        assert shown[0].startswith("·INIT_START") and " init says hi" in shown
        assert shown.index(" init says hi") < shown.index(
            f"·START RequestId: {cold} Version: $LATEST"
        )
        assert f"request {cold[:8]}" in str(app.query_one("#log-request").render())

    run_app(make_app(fn), body)


def test_stderr_is_told_apart_in_text_and_colour(tmp_path: Path) -> None:
    fn = _function(tmp_path, "levels", LEVELLED)

    async def body(pilot: Pilot[int], app: WorkbenchApp) -> None:
        pane = app.query_one(LogPane)
        await _invoke(pilot, app, 1)
        await wait_for(pilot, lambda: "▌to stderr" in _lines(app), what="the stderr line")
        assert " plain stdout" in _lines(app)
        log = pane.log_widget
        stderr_style = pane.get_component_rich_style("logpane--stderr")
        out_y, err_y = _lines(app).index(" plain stdout"), _lines(app).index("▌to stderr")
        err = log._render_line_strip(err_y, log.rich_style)
        out = log._render_line_strip(out_y, log.rich_style)
        assert {s.style and s.style.color for s in err if s.text.strip()} == {stderr_style.color}
        assert stderr_style.color not in {s.style and s.style.color for s in out if s.text.strip()}

    run_app(make_app(fn), body)


def test_follow_off_holds_the_view_and_on_catches_up(hello: Path) -> None:
    async def body(pilot: Pilot[int], app: WorkbenchApp) -> None:
        pane = app.query_one(LogPane)
        await _invoke(pilot, app, 1)
        pane.action_clear_request()
        pane.log_widget.focus()
        await pilot.press("f")
        await wait_for(pilot, lambda: not pane.follow, what="not pane.follow")
        before = _lines(app)
        record = await app.session.invoke("hello", b'{"name": "paused"}').record
        await wait_for(pilot, lambda: len(app.query_one(InvocationHistory).rows_shown) == 2)
        await pilot.pause(0.1)
        assert _lines(app) == before, "paused: nothing added or pruned under the reader"
        assert "paused" in str(app.query_one("#log-request").render())
        await pilot.press("f")
        await wait_for(
            pilot,
            lambda: any(f"REPORT RequestId: {record.request_id}" in x for x in _lines(app)),
            what="the catch-up",
        )
        assert any("greeting paused" in x for x in _lines(app))

    run_app(make_app(hello), body)


def test_build_output_and_reloads_are_in_the_log(tmp_path: Path, hello: Path) -> None:
    fn = tmp_path / "built"
    shutil.copytree(hello, fn)
    (fn / "workbench.toml").write_text('build = "echo compiling the thing"\n')

    async def body(pilot: Pilot[int], app: WorkbenchApp) -> None:
        await wait_for(
            pilot, lambda: "⚙compiling the thing" in _lines(app), what="the build's output"
        )
        source = fn / "app.py"
        source.write_text(source.read_text().replace("Hello", "Howdy"))
        await wait_for(
            pilot,
            lambda: any(x.startswith("↻reloaded: app.py changed; ready") for x in _lines(app)),
            what="the reload line",
        )
        line = next(x for x in _lines(app) if x.startswith("↻reloaded"))
        assert " ms after the save (build " in line and "init " in line

    run_app(make_app(fn, watch=True), body)


def test_a_request_filter_on_the_newest_moves_on_to_the_next(hello: Path) -> None:
    async def body(pilot: Pilot[int], app: WorkbenchApp) -> None:
        pane = app.query_one(LogPane)
        first = await _invoke(pilot, app, 1)
        assert pane.filter.request_id == first
        handle = app.session.invoke("hello", b'{"name": "next"}')  # not from the UI: boto3
        await handle.record
        await wait_for(
            pilot,
            lambda: pane.filter.request_id == handle.request_id,
            what="the filter to follow the new invocation",
        )
        await wait_for(pilot, lambda: any("greeting next" in x for x in _lines(app)))
        assert not any(first in x for x in _lines(app))

    run_app(make_app(hello), body)


def test_line_levels_of_the_formats_lambda_runtimes_write() -> None:
    cases = {
        '{"level": "INFO", "message": "json"}': "INFO",
        '{"timestamp": "t", "levelname": "warning", "message": "x"}': "WARN",
        '{"severity": "CRITICAL"}': "FATAL",
        '{"message": "{\\"level\\": \\"ERROR\\"}"}': None,  # a level inside a string is not
        "[ERROR]\t2026-01-01T00:00:00.000Z\trid\tboom": "ERROR",  # Python's runtime
        "2026-01-01T00:00:00.000Z\trid\tWARN\tcareful": "WARN",  # Node's console.warn
        "DEBUG:root:details": "DEBUG",
        'time=1 level=error msg="x"': "ERROR",  # logfmt
        "information only": None,
        "START RequestId: r Version: $LATEST": None,
    }
    assert {text: line_level(text) for text in cases} == cases
