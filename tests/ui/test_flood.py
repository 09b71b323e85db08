"""A function that prints 200,000 lines in one burst must not starve the keyboard.

No time is asserted (the latencies are measured in bench/tui_flood.py). What is asserted is
structural: keys typed during the flood take effect while the flood is still arriving; the
log reaches the UI once per frame, not once per line; the widget never holds more than
MAX_LINES while the session's LogBook keeps every line; and the filter typed mid-flood is the
one the widget shows at the end."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual import events
from textual.pilot import Pilot
from textual.widgets import Input

from tests.ui.conftest import make_app, run_app, wait_for
from workbench.ui.app import WorkbenchApp
from workbench.ui.widgets.log_pane import MAX_LINES, LogPane

FLOOD = 200_000
FLOODING = f"""\
import sys


def handler(event, context):
    sys.stdout.write("".join(f"flood line {{i}}\\n" for i in range({FLOOD})))  # one burst
    sys.stdout.flush()
    return {{"printed": {FLOOD}}}
"""
TYPED = "999"


def test_keys_typed_during_a_flood_take_effect_while_it_arrives(tmp_path: Path) -> None:
    folder = tmp_path / "flood"
    folder.mkdir()
    (folder / "app.py").write_text(FLOODING)
    (folder / "workbench.toml").write_text("timeout = 120\n")  # not what is tested here

    async def body(pilot: Pilot[int], app: WorkbenchApp) -> None:
        pane, book = app.query_one(LogPane), app.session.log
        box = pane.query_one("#log-text-filter", Input)
        frames = 0
        catch_up = pane.catch_up

        def counted() -> None:
            nonlocal frames
            frames += 1
            catch_up()

        pane.catch_up = counted  # type: ignore[method-assign]
        widget_most = 0

        def sample() -> None:
            nonlocal widget_most
            widget_most = max(widget_most, len(pane.log_widget.lines))

        box.focus()
        start = book.total
        handle = app.session.invoke("flood", b"{}")
        await wait_for(pilot, lambda: book.total - start > 1000, what="the flood to begin")
        seen_at: list[int] = []  # lines of the flood in the book when each key took effect
        assert app._driver is not None
        for n, ch in enumerate(TYPED, 1):
            # as a terminal's input thread sends it; Pilot.press would wait for the app to idle
            app._driver.send_message(events.Key(ch, ch))
            while box.value != TYPED[:n]:
                sample()
                await asyncio.sleep(0.001)
            seen_at.append(book.total - start)
        record = await handle.record
        assert record.status == "ok"
        await wait_for(
            pilot,
            lambda: not pane.scanning and pane.cursor == book.total,
            what="the widget to catch up",
        )
        sample()

        assert seen_at[-1] < FLOOD, (
            f"the keys took effect only after the flood: {seen_at} of {FLOOD} lines in"
        )
        assert book.total - start >= FLOOD, "the LogBook keeps every line"
        assert widget_most <= MAX_LINES
        assert frames < FLOOD / 100, f"{frames} refreshes for {FLOOD} lines: not per frame"
        shown = pane.log_widget.lines
        assert shown and all(TYPED in line for line in shown), "the filter typed mid-flood"
        assert shown[-1] == f" flood line {FLOOD - 1}"

    run_app(make_app(folder), body)
