"""F1: every key, what it does, and its binding id (for remapping in tui.toml)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

from workbench.ui.prefs import prefs_path

INTRO = """\
# workbench

Runs your Lambda function on this machine as Lambda would, and reloads it when you save.

* **ctrl+r** (or the Invoke button) sends the event in the editor; an event that is not valid
  JSON is never sent.
* Select an invocation in the history to see its response, its logs and its timing.
* **ctrl+p** opens the command palette: every action is there.
* Tab / shift+tab move between panes; **ctrl+o** maximises the focused pane.
"""


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90; height: 90%; border: thick $primary;
                                  background: $surface; padding: 0 1; }
    """
    BINDINGS = [Binding("escape,f1,q", "close", "Close")]

    def __init__(self, keys: list[tuple[str, str, str]]) -> None:
        """`keys`: (binding id, keys, description)."""
        super().__init__()
        self.keys = keys

    def compose(self) -> ComposeResult:
        rows = "\n".join(f"| `{k}` | {d} | `{i}` |" for i, k, d in self.keys)
        remap = (f"\n\nRemap a key in `{prefs_path()}`:\n\n```toml\n[keys]\n"
                 'invoke = "ctrl+r,f5"\n```\n')
        text = INTRO + "\n## Keys\n\n| keys | action | binding id |\n|---|---|---|\n" + rows
        with VerticalScroll():
            yield Markdown(text + remap)

    def action_close(self) -> None:
        self.dismiss(None)
