"""F1: every key, what it does, and its binding id (for remapping in tui.toml).

The keys come from the app's bindings after the user's keymap, so the help never disagrees
with the keyboard, remapped keys included."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Markdown, Static

from workbench.ui.prefs import prefs_path

# Keys Textual itself owns: not remappable through [keys], listed so nothing is a secret.
FIXED_KEYS = (
    ("tab / shift+tab", "Next / previous pane (in the event editor tab indents)"),
    ("ctrl+p", "Command palette: every action, by name"),
    ("escape", "Leave the event editor; restore a maximised pane; close a dialog"),
)
PANE_TITLES = {
    "": "Everywhere",
    "editor": "Event editor",
    "history": "History",
    "response": "Response",
    "logs": "Logs",
}


def shown_path(path: Path) -> str:
    """The path with the home folder as ~: shorter, and the same on every machine."""
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)


def first_key(keys: str) -> str:
    return keys.split(",")[0].strip()


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 96; max-width: 100%; height: 90%;
                                  border: thick $primary; background: $surface;
                                  padding: 0 1; }
    HelpScreen Markdown { margin: 0; }
    HelpScreen #help-keys { padding: 0 2 1 2; }
    """
    BINDINGS = [Binding("escape,f1,q", "close", "Close")]

    def __init__(self, keys: list[tuple[str, str, str]]) -> None:
        """`keys`: (binding id, keys, description) of every remappable binding."""
        super().__init__()
        self.keys = keys

    def key_of(self, binding_id: str, fallback: str) -> str:
        for i, keys, _ in self.keys:
            if i == binding_id:
                return first_key(keys)
        return fallback

    def intro(self) -> str:
        invoke = self.key_of("invoke", "ctrl+r")
        maximize = self.key_of("maximize", "ctrl+g")
        pick = self.key_of("pick_event", "ctrl+o")
        return (
            "# workbench\n\n"
            "Runs your Lambda function on this machine as Lambda would, and reloads it when "
            "you save.\n\n"
            f"* **{invoke}** (or the Invoke button) sends the event in the editor; an event "
            "that is not valid JSON is never sent.\n"
            f"* **{pick}** opens a saved event or one of the bundled samples.\n"
            "* Select an invocation in the history to see its response, its logs and its "
            "timing.\n"
            f"* **{maximize}** maximises the focused pane; again, or escape, restores it.\n"
            "* **ctrl+p** opens the command palette: every action is there.\n"
        )

    def table(self) -> Content:
        """The keys, grouped by where they work: everywhere first, then pane by pane."""
        groups: dict[str, list[tuple[str, str, str]]] = {}
        for binding_id, keys, description in self.keys:
            where = binding_id.split(".")[0] if "." in binding_id else ""
            groups.setdefault(where, []).append((binding_id, keys, description))
        width = max((len(k) for _, k, _ in self.keys), default=4) + 2
        what = max((len(d) for _, _, d in self.keys), default=6) + 2
        lines = [Content.styled(f"{'keys'.ljust(width)}{'action'.ljust(what)}binding id", "bold")]
        for where in sorted(groups, key=lambda w: (w != "", w)):
            lines.append(Content.styled(PANE_TITLES.get(where, where), "bold $accent"))
            for binding_id, keys, description in groups[where]:
                lines.append(
                    Content.assemble(
                        (keys.ljust(width), "$text-primary"),
                        description.ljust(what),
                        (binding_id, "$text-muted"),
                    )
                )
        lines.append(Content.styled("Always (Textual's own)", "bold $accent"))
        for keys, description in FIXED_KEYS:
            lines.append(Content.assemble((keys.ljust(width), "$text-primary"), description))
        return Content("\n").join(lines)

    def remap(self) -> str:
        invoke = self.key_of("invoke", "ctrl+r")
        return (
            f"Remap a key in `{shown_path(prefs_path())}` by its binding id "
            "(several keys: comma-separated):\n\n"
            f'```toml\n[keys]\ninvoke = "{invoke},f5"\n```\n'
        )

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Markdown(self.intro())
            yield Static(self.table(), id="help-keys")
            yield Markdown(self.remap())

    def action_close(self) -> None:
        self.dismiss(None)
