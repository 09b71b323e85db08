"""Timing: the selected invocation's breakdown, and the session's figures with a sparkline."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Sparkline, Static

from workbench.core.session import Figures, Row


def ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f} ms" if value < 10 else f"{value:.0f} ms"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


class TimingPanel(Vertical):
    DEFAULT_CSS = """
    TimingPanel { padding: 0 1; }
    TimingPanel #timing-selected { height: auto; }
    TimingPanel #timing-session { height: auto; margin-top: 1; }
    TimingPanel Sparkline { height: 2; margin-top: 1; }
    TimingPanel Sparkline > .sparkline--min-color { color: $sparkline-min; }
    TimingPanel Sparkline > .sparkline--max-color { color: $sparkline-max; }
    """

    def compose(self) -> ComposeResult:
        yield Static("No invocation selected.", id="timing-selected")
        yield Sparkline([], id="timing-sparkline")
        yield Static("", id="timing-session")

    def show_row(self, row: Row | None) -> None:
        target = self.query_one("#timing-selected", Static)
        if row is None:
            target.update("No invocation selected.")
            return
        start = "[$cold-start]cold start[/]" if row.cold else "warm"
        lines = [Content.from_markup(f"{start}  $rid", rid=row.request_id[:8])]
        if row.init_ms is not None:
            lines.append(Content(f"Init      {ms(row.init_ms)}"))
        lines.append(Content(f"Duration  {ms(row.duration_ms)}"))
        lines.append(Content(f"Billed    {row.billed_ms} ms"))
        lines.append(Content(f"Memory    {row.max_memory_mb} of {row.memory_mb} MB"))
        total = (row.init_ms or 0) + row.duration_ms
        if total > 0:
            width = 24
            init_w = round(width * (row.init_ms or 0) / total)
            bar = Content.from_markup(f"[$cold-start]{'█' * init_w}[/][$primary]"
                                      f"{'█' * (width - init_w)}[/]")
            lines.append(bar)
        target.update(Content("\n").join(lines))

    def show_figures(self, figures: Figures) -> None:
        self.query_one("#timing-sparkline", Sparkline).data = list(figures.recent_ms) or [0.0]
        text = (f"Session: {plural(figures.count, 'invocation')}, {figures.cold_starts} cold\n"
                f"p50 {ms(figures.p50_ms)}  p95 {ms(figures.p95_ms)}  max {ms(figures.max_ms)}")
        self.query_one("#timing-session", Static).update(text)
