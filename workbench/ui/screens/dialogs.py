"""Small modal dialogs: ask for a name, confirm, pick from a list."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList
from textual.widgets.option_list import Option

from workbench.core.saved_events.store import EventError, validate_name

DIALOG_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{ width: 64; height: auto; max-height: 80%; padding: 1 2;
                    border: thick $primary; background: $surface; }}
{name} Label.problem {{ color: $text-error; }}
{name} Label.hint {{ color: $text-muted; }}
{name} Horizontal {{ height: auto; align-horizontal: right; margin-top: 1; }}
{name} Button {{ margin-left: 1; }}
"""


class NamePrompt(ModalScreen[str | None]):
    """Ask for a saved event's name. A name that cannot be a file name is refused with the
    reason, as you type; a name already taken is refused (`replace=False`) or needs a second
    enter to replace it."""

    DEFAULT_CSS = DIALOG_CSS.format(name="NamePrompt")
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self, title: str, value: str = "", taken: Collection[str] = (), *, replace: bool = True
    ) -> None:
        super().__init__()
        self.title_text = title
        self.value = value
        self.taken = frozenset(taken)
        self.replace = replace
        self.confirming: str | None = None  # a taken name entered once: enter again replaces

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text)
            yield Input(self.value, placeholder="event name", id="name-input")
            yield Label("", classes="problem", id="name-problem")
            yield Label("letters, digits, '.', '-' and '_'; saved as NAME.json", classes="hint")
            with Horizontal():
                yield Button("Cancel", id="cancel")
                yield Button("OK", id="ok", variant="primary")

    @property
    def problem(self) -> str:
        return str(self.query_one("#name-problem", Label).content)

    def _say(self, text: str) -> None:
        self.query_one("#name-problem", Label).update(text)

    def on_input_changed(self, event: Input.Changed) -> None:
        self.confirming = None
        value = event.value.strip()
        try:
            name = validate_name(value) if value else ""
        except EventError as exc:
            self._say(str(exc))
            return
        self._say(self._taken_note(name) if name in self.taken else "")

    def _taken_note(self, name: str) -> str:
        if self.replace:
            return f"{name!r} exists: OK replaces it"
        return f"{name!r} exists: choose another name"

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._accept(event.value)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "ok":
            self._accept(self.query_one("#name-input", Input).value)
        else:
            self.dismiss(None)

    def _accept(self, value: str) -> None:
        try:
            name = validate_name(value.strip())
        except EventError as exc:
            self._say(str(exc))
            self.app.bell()
            return
        if name in self.taken and name != self.value:
            if not self.replace:
                self._say(self._taken_note(name))
                self.app.bell()
                return
            if self.confirming != name:  # a second enter is the user's yes
                self.confirming = name
                self._say(f"{name!r} exists: enter again to replace it")
                return
        self.dismiss(name)

    def action_cancel(self) -> None:
        self.dismiss(None)


class Confirm(ModalScreen[bool]):
    """Yes or no; "No" has the focus, so a stray enter does nothing harmful."""

    DEFAULT_CSS = DIALOG_CSS.format(name="Confirm")
    BINDINGS = [Binding("escape,n", "cancel", "No"), Binding("y", "yes", "Yes")]

    def __init__(self, question: str, yes: str = "Yes") -> None:
        super().__init__()
        self.question = question
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question)
            yield Label("y: yes   n / esc: no", classes="hint")
            with Horizontal():
                yield Button("No", id="no")
                yield Button(self.yes, id="yes", variant="error")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_yes(self) -> None:
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)


class Picker(ModalScreen[str | None]):
    """Choose one of many, with a filter: type to narrow, up/down to move, enter to pick.
    A choice whose id is None is a heading: shown while the filter is empty, never picked."""

    DEFAULT_CSS = (
        DIALOG_CSS.format(name="Picker")
        + """
    Picker > Vertical { width: 90; height: 80%; }
    Picker OptionList { height: 1fr; }
    """
    )
    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("down", "move(1)", show=False),
        Binding("up", "move(-1)", show=False),
    ]

    def __init__(self, title: str, choices: Sequence[tuple[str | None, str]]) -> None:
        """`choices`: (id, label) pairs, in order."""
        super().__init__()
        self.title_text = title
        self.choices = choices

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text)
            yield Input(placeholder="type to filter", id="picker-filter")
            yield OptionList(*self._options(""), id="picker-options")

    def on_mount(self) -> None:
        self._highlight_first()

    def _options(self, text: str) -> list[Option]:
        words = text.lower().split()
        if not words:
            return [Option(label, id=key, disabled=key is None) for key, label in self.choices]
        return [
            Option(label, id=key)
            for key, label in self.choices
            if key is not None and all(w in label.lower() for w in words)
        ]

    def _highlight_first(self) -> None:
        options = self.query_one(OptionList)
        for index in range(options.option_count):
            if not options.get_option_at_index(index).disabled:
                options.highlighted = index
                return

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        options = self.query_one(OptionList)
        options.clear_options()
        options.add_options(self._options(event.value))
        self._highlight_first()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        options = self.query_one(OptionList)
        index = options.highlighted
        if index is not None and not options.get_option_at_index(index).disabled:
            self.dismiss(options.get_option_at_index(index).id)
        else:
            self.app.bell()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_move(self, step: int) -> None:
        """Up and down move the highlight while the filter keeps the focus, so typing more
        narrows the list further."""
        options = self.query_one(OptionList)
        if step > 0:
            options.action_cursor_down()
        else:
            options.action_cursor_up()

    def action_cancel(self) -> None:
        self.dismiss(None)
