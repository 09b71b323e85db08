"""One line under the panes: which function, whether it is ready, where the API is."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

STATE_CLASS = {"ready": "ok", "failed": "bad", "init failed": "bad"}


class StatusLine(Static):
    DEFAULT_CSS = """
    StatusLine { height: 1; background: $panel; color: $foreground; padding: 0 1; }
    """

    def show(self, *, function: str, runtime: str, state: str, api_url: str | None,
             last_reload_ms: float | None, count: int, functions: int) -> None:
        tone = STATE_CLASS.get(state, "busy")
        colour = {"ok": "$status-ok", "bad": "$status-error", "busy": "$status-timeout"}[tone]
        parts = [Content.from_markup("[b]$fn[/b] $rt", fn=function, rt=runtime),
                 Content.from_markup(f"[{colour}]● $st[/]", st=state)]
        if functions > 1:
            parts.append(Content(f"{functions} functions (ctrl+f switches)"))
        parts.append(Content(f"API {api_url}" if api_url else "API off"))
        if last_reload_ms is not None:
            parts.append(Content(f"last reload {last_reload_ms:.0f} ms"))
        parts.append(Content(f"{count} invocation" + ("" if count == 1 else "s")))
        self.update(Content("  │  ").join(parts))
