"""Timing: the selected invocation's breakdown, and the session's figures with a sparkline.

The breakdown is drawn as a little Gantt chart on one time axis: init, then the handler's
duration after it, then what was billed, so a cold start's cost reads at a glance. Both
parts render to the width they are given, and the pane scrolls when it is shorter than them.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widget import Widget

from workbench.core.record import InvocationRecord
from workbench.core.session import Figures

BARS = "▁▂▃▄▅▆▇█"
LABEL = 9  # "Duration " and the like
VALUE = 9  # "  62.0 ms"


def ms(value: float | None) -> str:
    """Three significant figures or so: 0.84, 7.20, 62.0, 1234."""
    if value is None:
        return "-"
    if value < 10:
        return f"{value:.2f}"
    if value < 100:
        return f"{value:.1f}"
    return f"{value:.0f}"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def span_bar(start: float, end: float, scale: float, width: int) -> tuple[int, int]:
    """The cells [a, b) that the time span [start, end) covers on a `width`-cell axis
    running from 0 to `scale`; never empty, so even a 0.1 ms span leaves a mark."""
    if width <= 0 or scale <= 0:
        return 0, 0
    a = min(width - 1, int(start / scale * width))
    b = min(width, round(end / scale * width))
    return a, max(b, a + 1)


class Breakdown(Widget):
    """The selected invocation: how it started, and init / duration / billed / memory."""

    DEFAULT_CSS = "Breakdown { height: auto; }"

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.row: InvocationRecord | None = None

    def show(self, row: InvocationRecord | None) -> None:
        self.row = row
        self.refresh(layout=True)

    def render(self) -> Content:
        row = self.row
        if row is None:
            return Content.from_markup(
                "[$text-muted]No invocation selected.\n"
                "Invoke (ctrl+r), or pick one in the history.[/]"
            )
        width = max(0, self.size.width - LABEL - VALUE - 1)
        start = (
            Content.styled("cold start", "bold $cold-start")
            if row.cold
            else Content.styled("warm start", "bold")
        )
        lines = [Content.assemble(start, "  ", (row.request_id[:8], "$text-muted"))]
        init = row.init_ms or 0.0
        scale = max(float(row.billed_ms), init + row.duration_ms)

        def line(label: str, value: str, bar: tuple[int, int] | None, style: str) -> Content:
            parts: list[str | Content | tuple[str, str]] = [label.ljust(LABEL), value.rjust(VALUE)]
            if bar is not None and width > 0:
                a, b = bar
                parts += [" " * (a + 1), ("█" * (b - a), style)]
            return Content.assemble(*parts)

        if row.init_ms is not None:
            lines.append(
                line("Init", f"{ms(init)} ms", span_bar(0, init, scale, width), "$cold-start")
            )
        else:
            lines.append(line("Init", "-", None, ""))
        if not row.measured:  # kept from history's journal: workbench stopped before its end
            lines.append(
                Content.styled("Unfinished: workbench stopped before its REPORT", "$text-muted")
            )
            lines.append(line("Memory", f"-/{row.memory_mb} MB", None, ""))
            return Content("\n").join(lines)
        lines.append(
            line(
                "Duration",
                f"{ms(row.duration_ms)} ms",
                span_bar(init, init + row.duration_ms, scale, width),
                "$primary",
            )
        )
        lines.append(
            line(
                "Billed",
                f"{row.billed_ms} ms",
                span_bar(0, row.billed_ms, scale, width),
                "$secondary",
            )
        )
        used = span_bar(0, row.max_memory_mb, row.memory_mb, width) if row.memory_mb else None
        lines.append(line("Memory", f"{row.max_memory_mb}/{row.memory_mb} MB", used, "$status-ok"))
        return Content("\n").join(lines)


class SessionFigures(Widget):
    """This session's invocations: count and cold starts, a sparkline of the recent
    durations (newest on the right, one column each, from zero so heights compare), and
    p50 / p95 / max."""

    DEFAULT_CSS = "SessionFigures { height: auto; margin-top: 1; }"
    SPARK_ROWS = 2

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.figures = Figures(0, 0, None, None, None, ())

    def show(self, figures: Figures) -> None:
        self.figures = figures
        self.refresh(layout=True)

    def render(self) -> Content:
        f = self.figures
        width = max(1, self.size.width)
        count = plural(f.count, "invocation")
        if len(count) + len(" · 00 cold") + len("Session  ") > width:
            count = plural(f.count, "invoke")
        head = Content.assemble(
            ("Session", "bold"),
            "  ",
            count,
            " · ",
            (f"{f.cold_starts} cold", "$cold-start" if f.cold_starts else ""),
        )
        lines = [head, *self.sparkline(width)]
        if f.count:
            lines.append(
                Content.assemble(
                    ("p50 ", "$text-muted"),
                    ms(f.p50_ms),
                    (" p95 ", "$text-muted"),
                    ms(f.p95_ms),
                    (" max ", "$text-muted"),
                    ms(f.max_ms),
                    " ms",
                )
            )  # 29 cells: fits the column
        else:
            lines.append(Content.styled("p50 - p95 - max -", "$text-muted"))
        return Content("\n").join(lines)

    def sparkline(self, width: int) -> list[Content]:
        """SPARK_ROWS lines of bars; a duration above the p95 stands out in $sparkline-max."""
        values = list(self.figures.recent_ms)[-width:]
        rows = self.SPARK_ROWS
        if not values:
            return [Content(""), Content.styled("▁" * width, "$text-muted")][-rows:]
        top = max(values) or 1.0
        p95 = self.figures.p95_ms or top
        levels = len(BARS) * rows
        lines: list[list[tuple[str, str]]] = [[] for _ in range(rows)]
        for value in values:
            height = max(1, round(value / top * levels))  # every invoke shows, however quick
            style = "$sparkline-max" if value > p95 else "$sparkline-min"
            for r in range(rows):  # r = 0 is the bottom row
                fill = height - r * len(BARS)
                char = " " if fill <= 0 else BARS[min(fill, len(BARS)) - 1]
                lines[rows - 1 - r].append((char, style))
        return [Content.assemble(*parts) for parts in lines]


class TimingPanel(VerticalScroll):
    DEFAULT_CSS = """
    TimingPanel { padding: 0 1; scrollbar-size-vertical: 1; }
    """

    def compose(self) -> ComposeResult:
        yield Breakdown(id="timing-selected")
        yield SessionFigures(id="timing-session")

    def show_row(self, row: InvocationRecord | None) -> None:
        self.query_one(Breakdown).show(row)

    def show_figures(self, figures: Figures) -> None:
        self.query_one(SessionFigures).show(figures)
