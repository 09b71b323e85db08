#!/usr/bin/env python3
"""Keypress latency in the TUI while a function floods its output, beside no flood, one run.

    python bench/tui_flood.py                 # 200,000 lines, 3 floods (about a minute)
    python bench/tui_flood.py --quick         # 1 flood
    python bench/tui_flood.py --lines 1000000 # a bigger flood

The real app (WorkbenchApp over a real Session) runs headless (`App.run_test`, 120x36) on a
function whose handler prints LINES lines in a burst. A probe task sends a key every ~20 ms
through the driver, as a terminal's input thread does; the key is bound to an action that
notes the time. Measured per key: key sent -> action run ("handled"), and key sent -> the next
screen update after it ("painted"; headless, so the frame is composed but not written to a
terminal). The same probe runs with no flood first (the baseline), then during each flood, and
the table prints both and their ratios. Also: the event loop's longest stall (a 1 ms sleeper's
overshoot) in each phase, the lines the widget held at most, and the whole log's count.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from textual import events  # noqa: E402
from textual.binding import Binding  # noqa: E402

from workbench.core.config.resolve import resolve_functions  # noqa: E402
from workbench.core.session import Session  # noqa: E402
from workbench.ui.app import WorkbenchApp  # noqa: E402
from workbench.ui.widgets.log_pane import MAX_LINES, LogPane  # noqa: E402

FLOOD_APP = """\
def handler(event, context):
    for i in range(int(event.get("lines", 0))):
        print(f"flood line {i} of a function that prints a great deal")
    return {"printed": event.get("lines", 0)}
"""
PROBE_KEY = "f12"


def say(text: str = "") -> None:
    print(text, flush=True)


class ProbedApp(WorkbenchApp):
    """The real app plus one key that notes when it was handled."""

    CSS_PATH = str(HERE.parent / "workbench" / "ui" / "app.tcss")  # relative to the subclass
    BINDINGS = [  # noqa: RUF012 (Textual reads a plain list)
        *WorkbenchApp.BINDINGS,
        Binding(PROBE_KEY, "probe", "probe", show=False, priority=True),
    ]

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self.handled: list[float] = []
        self.painted: list[float] = []
        self.waiting_paint = False

    def action_probe(self) -> None:
        self.handled.append(time.perf_counter())
        self.waiting_paint = True
        self.query_one("#status").refresh()  # something to paint, as any key's effect is

    def _display(self, screen, renderable) -> None:  # type: ignore[no-untyped-def]
        super()._display(screen, renderable)
        if self.waiting_paint and renderable is not None:
            self.waiting_paint = False
            self.painted.append(time.perf_counter())


@dataclass
class Phase:
    name: str
    handled_ms: list[float] = field(default_factory=list)
    painted_ms: list[float] = field(default_factory=list)
    lost: int = 0
    max_stall_ms: float = 0.0
    widget_max: int = 0
    seconds: float = 0.0
    invoke_s: float = 0.0


async def probe(app: ProbedApp, phase: Phase, until: asyncio.Future[object] | float) -> None:
    """Send the probe key every ~20 ms until `until` (a future, or a duration in seconds)."""
    driver = app._driver
    assert driver is not None
    log = app.query_one(LogPane).log_widget
    end = until if isinstance(until, float) else None
    t_start = time.perf_counter()
    while True:
        if end is not None and time.perf_counter() - t_start > end:
            break
        if end is None and isinstance(until, asyncio.Future) and until.done():
            break
        n_h, n_p = len(app.handled), len(app.painted)
        key = events.Key(PROBE_KEY, None)
        key.set_sender(app)
        sent = time.perf_counter()
        driver.send_message(key)
        deadline = sent + 10
        while len(app.painted) == n_p and time.perf_counter() < deadline:
            phase.widget_max = max(phase.widget_max, len(log.lines))
            await asyncio.sleep(0.0005)
        if len(app.handled) > n_h and len(app.painted) > n_p:
            phase.handled_ms.append((app.handled[n_h] - sent) * 1000)
            phase.painted_ms.append((app.painted[n_p] - sent) * 1000)
        else:
            phase.lost += 1
        await asyncio.sleep(0.02)
    phase.seconds = time.perf_counter() - t_start


async def stall_monitor(stop: asyncio.Event, out: list[float]) -> None:
    last = time.perf_counter()
    while not stop.is_set():
        await asyncio.sleep(0.001)
        now = time.perf_counter()
        out.append((now - last) * 1000)
        last = now


async def run(lines: int, floods: int, baseline_s: float) -> list[Phase]:
    folder = Path(tempfile.mkdtemp(prefix="wb-flood-")) / "flood"
    folder.mkdir()
    (folder / "app.py").write_text(FLOOD_APP)
    (folder / "workbench.toml").write_text("timeout = 120\n")  # a slow flood is measured, not cut
    configs = [fn.config for fn in resolve_functions([folder])]
    session = Session(configs, watch=False, port=None, record=False)
    app = ProbedApp(session)
    phases: list[Phase] = []
    async with app.run_test(size=(120, 36)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        name = session.names[0]
        await session.invoke(name, b'{"lines": 10}').record  # the cold start, not measured

        stop, stalls = asyncio.Event(), []
        mon = asyncio.create_task(stall_monitor(stop, stalls))
        base = Phase("no flood")
        await probe(app, base, baseline_s)
        stop.set()
        await mon
        base.max_stall_ms = max(stalls, default=0)
        phases.append(base)

        for i in range(floods):
            await pilot.pause(0.2)
            app.query_one(LogPane).set_filter(request_id=None)  # the whole flood, unfiltered
            await pilot.pause(0.1)
            stop, stalls = asyncio.Event(), []
            mon = asyncio.create_task(stall_monitor(stop, stalls))
            phase = Phase(f"flood {i + 1}")
            before = session.log.total
            handle = session.invoke(name, f'{{"lines": {lines}}}'.encode())
            record = asyncio.ensure_future(handle.record)
            await probe(app, phase, record)
            rec = record.result()
            await pilot.pause(0.1)  # the last frame's batch reaches the widget
            stop.set()
            await mon
            phase.max_stall_ms = max(stalls, default=0)
            got = session.log.total - before
            assert rec.status == "ok", rec.status
            phase.invoke_s = rec.duration_ms / 1000
            assert got >= lines, f"the whole log got {got} of {lines} lines"
            phases.append(phase)
        await app.shutdown()
    return phases


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--floods", type=int, default=3)
    ap.add_argument("--baseline-seconds", type=float, default=3.0)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    floods = 1 if args.quick else args.floods
    phases = asyncio.run(run(args.lines, floods, args.baseline_seconds))
    base = phases[0]
    b50, b99 = pct(base.painted_ms, 50), pct(base.painted_ms, 99)
    say(
        f"tui_flood: {args.lines:,} lines per flood, widget cap {MAX_LINES:,} lines, "
        f"probe key every ~20 ms"
    )
    say(
        f"{'phase':<10} {'keys':>5} {'lost':>4} {'secs':>5} | {'handled p50':>11} {'p99':>6} "
        f"{'max':>6} | {'painted p50':>11} {'p99':>6} {'max':>6} | {'p50/base':>8} "
        f"{'p99/base':>8} | {'stall max':>9} {'widget max':>10} {'invoke s':>8}"
    )
    for ph in phases:
        if not ph.painted_ms:
            say(f"{ph.name:<10} no key came back ({ph.lost} lost)")
            continue
        say(
            f"{ph.name:<10} {len(ph.painted_ms):>5} {ph.lost:>4} {ph.seconds:>5.1f} | "
            f"{pct(ph.handled_ms, 50):>11.1f} {pct(ph.handled_ms, 99):>6.1f} "
            f"{max(ph.handled_ms):>6.1f} | {pct(ph.painted_ms, 50):>11.1f} "
            f"{pct(ph.painted_ms, 99):>6.1f} {max(ph.painted_ms):>6.1f} | "
            f"{pct(ph.painted_ms, 50) / b50:>8.2f} {pct(ph.painted_ms, 99) / b99:>8.2f} | "
            f"{ph.max_stall_ms:>9.1f} {ph.widget_max:>10,} {ph.invoke_s:>8.2f}"
        )
    flood_ms = [ms for ph in phases[1:] for ms in ph.painted_ms]
    if flood_ms:
        say(
            f"all floods: painted p50 {statistics.median(flood_ms):.1f} ms, p99 "
            f"{pct(flood_ms, 99):.1f} ms, max {max(flood_ms):.1f} ms "
            f"(a frame at 60 Hz is 16.7 ms)"
        )


if __name__ == "__main__":
    main()
