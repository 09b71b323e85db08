"""One line under the panes: which function, whether it is ready, where the Invoke API
listens, how long the last reload took from save to ready, and how many invocations.

It renders to its width: when the full wording does not fit (a narrow terminal), the labels
shorten before anything is cut off."""

from __future__ import annotations

from dataclasses import dataclass

from textual.content import Content
from textual.widget import Widget

from workbench.core.session import FunctionStatus

STATE_STYLE = {
    "ready": "$status-ok",
    "failed": "$status-error",
    "init failed": "$status-error",
}  # anything else is on its way: building...
SEPARATOR = Content.styled("  │  ", "$text-muted")
SHORT_SEPARATOR = Content.styled(" │ ", "$text-muted")


@dataclass
class Status:
    function: str = ""
    runtime: str = ""
    state: str = "starting"
    api_url: str | None = None
    last_reload_ms: float | None = None
    count: int = 0
    functions: int = 1


class StatusLine(Widget):
    DEFAULT_CSS = """
    StatusLine { height: 1; background: $panel; color: $foreground; padding: 0 1; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.status = Status()

    def show(self, fn: FunctionStatus, *, api_url: str | None, functions: int) -> None:
        last = fn.last_reload
        reload_ms = last.save_to_ready_ms if last is not None and last.ok else None
        # a runtime without its own version shows what runs it instead: "python3.14 on Python 3.13"
        runtime = f"{fn.runtime} on {fn.runs_on}" if fn.runtime_note and fn.runs_on else fn.runtime
        self.status = Status(
            fn.name, runtime, fn.state, api_url, reload_ms, fn.invocations, functions
        )
        self.refresh()

    def line(self, short: bool = False) -> Content:
        s = self.status
        parts = [
            Content.assemble((s.function, "bold"), " ", (s.runtime, "$text-muted")),
            Content.styled(f"● {s.state}", STATE_STYLE.get(s.state, "$status-timeout")),
        ]
        if s.functions > 1:
            parts.append(
                Content(
                    f"{s.functions} functions"
                    if short
                    else f"{s.functions} functions (ctrl+f switches)"
                )
            )
        api = s.api_url or "off"
        if short:
            parts.append(Content.assemble(("API ", "$text-muted"), api.removeprefix("http://")))
        else:
            parts.append(Content.assemble(("Invoke API ", "$text-muted"), api))
        if s.last_reload_ms is None:
            parts.append(Content.styled("no reload yet", "$text-muted"))
        else:  # save-to-ready: from the save that triggered it to the new code answering
            parts.append(
                Content.assemble(
                    ("reload " if short else "last reload ", "$text-muted"),
                    f"{s.last_reload_ms:.0f} ms",
                )
            )
        parts.append(
            Content(
                f"{s.count} invoke" + ("" if s.count == 1 else "s")
                if short
                else f"{s.count} invocation" + ("" if s.count == 1 else "s")
            )
        )
        return (SHORT_SEPARATOR if short else SEPARATOR).join(parts)

    def render(self) -> Content:
        full = self.line()
        return full if full.cell_length <= self.size.width else self.line(short=True)
