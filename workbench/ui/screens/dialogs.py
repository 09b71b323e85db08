"""Small modal dialogs: ask for a name, confirm, pick from a list."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList
from textual.widgets.option_list import Option

from workbench.core.events import EventError, validate_name

DIALOG_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{ width: 64; height: auto; max-height: 80%; padding: 1 2;
                    border: thick $primary; background: $surface; }}
{name} Label.problem {{ color: $text-error; }}
{name} Horizontal {{ height: auto; align-horizontal: right; margin-top: 1; }}
{name} Button {{ margin-left: 1; }}
"""


class NamePrompt(ModalScreen[str | None]):
    """Ask for an event name; refuses names that are not plain file names."""

    DEFAULT_CSS = DIALOG_CSS.format(name="NamePrompt")
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, value: str = "", taken: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self.title_text = title
        self.value = value
        self.taken = taken

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text)
            yield Input(self.value, placeholder="event name", id="name-input")
            yield Label("", classes="problem", id="name-problem")
            with Horizontal():
                yield Button("Cancel", id="cancel")
                yield Button("OK", id="ok", variant="primary")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._accept(event.value)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self._accept(self.query_one("#name-input", Input).value)
        else:
            self.dismiss(None)

    def _accept(self, value: str) -> None:
        try:
            name = validate_name(value.strip())
        except EventError as exc:
            self.query_one("#name-problem", Label).update(str(exc))
            return
        self.dismiss(name)

    def action_cancel(self) -> None:
        self.dismiss(None)


class Confirm(ModalScreen[bool]):
    DEFAULT_CSS = DIALOG_CSS.format(name="Confirm")
    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("y", "yes", "Yes")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question)
            with Horizontal():
                yield Button("No", id="no")
                yield Button("Yes", id="yes", variant="error")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_yes(self) -> None:
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)


class Picker(ModalScreen[str | None]):
    """Choose one of many, with a filter: type to narrow, enter to pick."""

    DEFAULT_CSS = DIALOG_CSS.format(name="Picker") + """
    Picker > Vertical { width: 90; height: 80%; }
    Picker OptionList { height: 1fr; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("down", "down", show=False)]

    def __init__(self, title: str, choices: list[tuple[str, str]]) -> None:
        """`choices`: (id, label) pairs, in order."""
        super().__init__()
        self.title_text = title
        self.choices = choices

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text)
            yield Input(placeholder="type to filter", id="picker-filter")
            yield OptionList(*self._options(""), id="picker-options")

    def _options(self, text: str) -> list[Option]:
        words = text.lower().split()
        return [Option(label, id=key) for key, label in self.choices
                if all(w in label.lower() for w in words)]

    def on_input_changed(self, event: Input.Changed) -> None:
        options = self.query_one(OptionList)
        options.clear_options()
        options.add_options(self._options(event.value))
        if options.option_count:
            options.highlighted = 0

    def on_input_submitted(self, event: Input.Submitted) -> None:
        options = self.query_one(OptionList)
        if options.option_count:
            index = options.highlighted or 0
            self.dismiss(options.get_option_at_index(index).id)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_down(self) -> None:
        self.query_one(OptionList).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)
