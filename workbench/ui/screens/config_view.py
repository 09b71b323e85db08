"""F3: the active function's configuration as workbench resolved it: every setting, where it
came from, and the environment variables with the file or flag each came from."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


class ConfigScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    ConfigScreen { align: center middle; }
    ConfigScreen > VerticalScroll { width: 100; height: 90%; border: thick $primary;
                                    background: $surface; padding: 0 1; }
    ConfigScreen #config-text { width: 1fr; }
    """
    BINDINGS = [Binding("escape,f3,q", "close", "Close")]

    def __init__(self, title: str, text: str) -> None:
        super().__init__()
        self.title_text = title
        self.text = text

    def compose(self) -> ComposeResult:
        with VerticalScroll() as box:
            box.border_title = self.title_text
            yield Static(self.text, id="config-text", markup=False)

    def action_close(self) -> None:
        self.dismiss(None)
