"""The event editor: JSON with highlighting, checked as you type, and the saved events of the
function's folder (open, new, save, save as, rename, delete).

An event that is not valid JSON says where and why under the text, the Invoke button is
disabled, and ctrl+r refuses it and puts the cursor on the problem: a typo is never sent by
accident. Saved events are plain pretty JSON files (workbench.core.saved_events.store); the
header names the event being edited and marks unsaved changes with a dot."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Button, Static, TextArea

from workbench.core.saved_events import store as saved
from workbench.core.saved_events.render import EventError
from workbench.ui.messages import InvokeRequested
from workbench.ui.screens.dialogs import Confirm, NamePrompt, Picker

BLANK = "{}\n"


@dataclass(frozen=True, slots=True)
class JsonProblem:
    """Where and why a text is not JSON; line and column count from 1, as editors show them."""

    line: int
    column: int
    message: str
    excerpt: str  # the offending line

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}: {self.message}"


def json_problem(text: str) -> JsonProblem | None:
    """Why `text` is not a JSON event; None when it is one. Empty text is fine: Lambda sends
    {} for an empty payload."""
    if not text.strip():
        return None
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        lines = text.splitlines() or [""]
        excerpt = lines[min(exc.lineno, len(lines)) - 1]
        return JsonProblem(exc.lineno, exc.colno, exc.msg, excerpt)
    return None


def problem_content(problem: JsonProblem) -> Content:
    """The problem and the line it is on, with a caret under the column (the excerpt is
    shifted left so that the caret stays in view on long lines)."""
    start = max(0, problem.column - 40)
    excerpt = problem.excerpt[start : start + 80]
    caret = " " * (problem.column - 1 - start) + "^"
    return Content.assemble(
        ("✗ ", "bold"), str(problem), "\n", ("  " + excerpt, "$text"), "\n", ("  " + caret, "bold")
    )


def suggested_name(origin: str | None) -> str:
    """A file name for an event that has none yet: a sample's own name flattened, or the
    name a deleted event had."""
    for prefix in ("sample ", "deleted "):
        if origin and origin.startswith(prefix):
            return origin.removeprefix(prefix).replace("/", "-")
    return ""


@dataclass(frozen=True)
class Draft:
    folder: Path
    text: str
    event_name: str | None
    origin: str | None
    baseline: str


class EventEditor(Vertical):
    DEFAULT_CSS = """
    EventEditor #event-header { height: 1; }
    EventEditor #event-name { width: 1fr; padding: 0 1; color: $text-muted; }
    EventEditor #event-name.-dirty { color: $text-warning; }
    EventEditor #invoke-button { min-width: 12; height: 1; border: none; margin: 0 1; }
    EventEditor TextArea, EventEditor TextArea:focus { height: 1fr; border: none; }
    EventEditor #event-problem { height: auto; max-height: 4; padding: 0 1;
                                 color: $text-error; background: $error-muted; }
    EventEditor #event-problem.hidden { display: none; }
    """
    BINDINGS = [
        Binding("f2", "rename", "Rename", id="editor.rename", show=False),
        Binding("f12", "save_as", "Save as", id="editor.save_as", show=False),
        Binding("f8", "delete", "Delete", id="editor.delete", show=False),
        Binding("ctrl+l", "format", "Format", id="editor.format", show=False),
    ]

    def __init__(self, folder: Path | None = None, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.folder = folder or Path("events")  # where saved events live
        self.event_name: str | None = None  # the saved event being edited, if any
        self.origin: str | None = None  # where an unsaved event came from ("sample s3/put")
        self.baseline = BLANK  # the text as loaded or last saved
        self.problem: JsonProblem | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="event-header"):
            yield Static("", id="event-name")
            button = Button("Invoke ▶", id="invoke-button", variant="primary", compact=True)
            button.can_focus = False  # ctrl+r invokes; tab goes from the text to the next pane
            yield button
        # theme "css": the editor's colours follow the app's theme, light ones included
        yield TextArea.code_editor(
            BLANK,
            language="json",
            id="event-text",
            theme="css",
            soft_wrap=False,
            tab_behavior="indent",
        )
        yield Static("", id="event-problem", classes="hidden")

    def on_mount(self) -> None:
        self._check()

    # ---- what is being edited ----

    @property
    def text_area(self) -> TextArea:
        return self.query_one("#event-text", TextArea)

    @property
    def text(self) -> str:
        return self.text_area.text

    @property
    def modified(self) -> bool:
        """Edited since it was loaded or saved."""
        return self.text != self.baseline

    @property
    def title(self) -> str:
        """What the header calls the event (without the unsaved-changes dot)."""
        if self.event_name is not None:
            return self.event_name
        return f"{self.origin or 'new event'} (not saved)"

    def use_folder(self, folder: Path) -> None:
        self.folder = folder

    def draft(self) -> Draft:
        """Everything being edited, to set aside (another function becomes active)."""
        return Draft(self.folder, self.text, self.event_name, self.origin, self.baseline)

    def resume(self, draft: Draft) -> None:
        """Back to a draft set aside: its text, name and unsaved changes as they were."""
        self.folder = draft.folder
        self.load(draft.text, draft.event_name, draft.origin)
        self.baseline = draft.baseline
        self._check()

    def load(self, text: str, name: str | None, origin: str | None = None) -> None:
        """Show an event: `name` is the saved event it is; `origin` says where an unsaved one
        came from. Unsaved changes are dropped: see `replace`."""
        self.event_name, self.origin = name, origin
        self.baseline = text
        self.text_area.load_text(text)
        self._check()

    def replace(self, text: str, name: str | None, origin: str | None = None) -> None:
        """`load`, after asking whether to drop unsaved changes (when there are some)."""
        if not self.modified:
            self.load(text, name, origin)
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self.load(text, name, origin)

        self.app.push_screen(
            Confirm(f"Drop your unsaved changes to {self.title}?", yes="Drop them"), answer
        )

    def open_saved(self, name: str, *, ask: bool = True) -> bool:
        try:
            text = saved.saved_path(self.folder, name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError, EventError) as exc:
            self.notify(f"Cannot open {name}: {exc}", severity="error")
            return False
        (self.replace if ask else self.load)(text, name)
        return True

    def open_sample(self, name: str) -> None:
        try:
            event = saved.render_sample(name)
        except EventError as exc:
            self.notify(str(exc), severity="error")
            return
        self.replace(json.dumps(event, indent=2, ensure_ascii=False) + "\n", None, f"sample {name}")

    def open_first(self) -> None:
        """The first saved event, or a blank one when the folder has none (or is missing)."""
        names = saved.list_saved(self.folder)
        if not names or not self.open_saved(names[0], ask=False):
            self.load(BLANK, None)

    # ---- invoking ----

    def payload(self) -> bytes | None:
        """The event to send, or None when it is not valid JSON."""
        self._check()
        return None if self.problem is not None else self.text.encode("utf-8")

    def request_invoke(self) -> bool:
        data = self.payload()
        if data is None:
            self.refuse("Not sent")
            return False
        self.post_message(InvokeRequested(data, self.event_name))
        return True

    def refuse(self, what: str) -> None:
        """Say why the event cannot be used, and put the cursor where the problem is."""
        assert self.problem is not None
        self.app.bell()
        self.notify(
            f"{what}: the event is not valid JSON ({self.problem})",
            title="Invalid JSON",
            severity="error",
        )
        area = self.text_area
        area.move_cursor((self.problem.line - 1, self.problem.column - 1))
        area.focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "invoke-button":
            event.stop()
            self.request_invoke()

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        event.stop()
        self._check()

    def _check(self) -> None:
        self.problem = json_problem(self.text)
        box = self.query_one("#event-problem", Static)
        box.update(problem_content(self.problem) if self.problem else "")
        box.set_class(self.problem is None, "hidden")
        button = self.query_one("#invoke-button", Button)
        button.disabled = self.problem is not None
        button.tooltip = f"Fix the JSON first: {self.problem}" if self.problem else "ctrl+r"
        self._show_name()

    def _show_name(self) -> None:
        label = self.query_one("#event-name", Static)
        label.update(self.title + (" ●" if self.modified else ""))
        label.set_class(self.modified, "-dirty")
        label.tooltip = "unsaved changes (ctrl+s saves)" if self.modified else None

    # ---- saved events ----

    def action_open(self) -> None:
        names = saved.list_saved(self.folder)
        where = self.folder.name + "/"
        choices: list[tuple[str | None, str]] = [
            (
                None,
                f"Saved events in {where}"
                if names
                else f"No saved events yet in {where} (ctrl+s saves one)",
            )
        ]
        choices += [(f"saved:{n}", f"  {n}") for n in names]
        choices.append((None, "Sample events"))
        choices += [(f"sample:{s.name}", f"  {s.name}  {s.title}") for s in saved.list_samples()]
        self.app.push_screen(Picker("Open an event (type to filter)", choices), self._picked)

    def _picked(self, choice: str | None) -> None:
        if choice is None:
            return
        kind, _, name = choice.partition(":")
        if kind == "saved":
            self.open_saved(name)
        else:
            self.open_sample(name)

    def action_new(self) -> None:
        self.replace(BLANK, None)

    def action_format(self) -> None:
        """Pretty-print the event (two-space indent, as saved files are)."""
        if self.problem is not None:
            self.refuse("Not formatted")
            return
        if self.text.strip():
            pretty = json.dumps(json.loads(self.text), indent=2, ensure_ascii=False) + "\n"
            if pretty != self.text:
                self.text_area.replace(pretty, (0, 0), self.text_area.document.end)

    def action_save(self) -> None:
        if self.event_name is None:
            self.action_save_as()
        else:
            self._write(self.event_name, self.text)

    def action_save_as(self) -> None:
        if self.problem is not None:
            self.refuse("Not saved")
            return
        suggestion = self.event_name or suggested_name(self.origin)
        self.ask_name("Save the event as", suggestion, lambda name: self._write(name, self.text))

    def save_text_as(self, text: str, suggestion: str) -> None:
        """Save some other event (a past invocation's) under a name the user chooses; the
        editor keeps what it has."""
        self.ask_name(
            "Save this invocation's event as",
            suggestion,
            lambda name: self._write(name, text, adopt=False),
        )

    def ask_name(
        self, title: str, suggestion: str, then: Callable[[str], object], *, replace: bool = True
    ) -> None:
        def answer(name: str | None) -> None:
            if name is not None:
                then(name)

        self.app.push_screen(
            NamePrompt(title, suggestion, saved.list_saved(self.folder), replace=replace), answer
        )

    def _write(self, name: str, text: str, *, adopt: bool = True) -> bool:
        """Save `text` as `name` (the folder is made when missing); with `adopt` the editor is
        now editing that saved event."""
        problem = json_problem(text)
        if problem is not None:
            self.notify(f"Not saved: {problem}", severity="error")
            return False
        try:
            path = saved.save_event(self.folder, name, json.loads(text or "{}"))
        except (EventError, OSError) as exc:
            self.notify(f"Not saved: {exc}", severity="error")
            return False
        if adopt:
            self.event_name, self.origin, self.baseline = name, None, text
            self._show_name()
        self.notify(f"Saved {self._shown(path)}")
        return True

    def action_rename(self) -> None:
        old = self.event_name
        if old is None:
            self.notify("This event is not saved yet: ctrl+s saves it", severity="warning")
            return

        def rename(new: str) -> None:
            if new == old:
                return
            try:
                path = saved.rename_event(self.folder, old, new)
            except (EventError, OSError) as exc:
                self.notify(f"Not renamed: {exc}", severity="error")
                return
            self.event_name = new
            self._show_name()
            self.notify(f"Renamed {old} to {self._shown(path)}")

        self.ask_name(f"Rename {old} to", old, rename, replace=False)

    def action_delete(self) -> None:
        name = self.event_name
        if name is None:
            self.notify("This event is not saved: nothing to delete", severity="warning")
            return

        def delete(yes: bool | None) -> None:
            if not yes:
                return
            try:
                saved.delete_event(self.folder, name)
            except (EventError, OSError) as exc:
                self.notify(f"Not deleted: {exc}", severity="error")
                return
            # the text stays, unsaved, so that a delete by mistake is one ctrl+s from undone
            self.event_name, self.origin, self.baseline = None, f"deleted {name}", ""
            self._show_name()
            self.notify(f"Deleted {name}; the text stays here until you open another event")

        self.app.push_screen(Confirm(f"Delete the saved event {name!r}?", yes="Delete"), delete)

    def _shown(self, path: Path) -> str:
        """A saved event's path as the user knows it: relative to the function's folder."""
        try:
            return str(path.relative_to(self.folder.parent))
        except ValueError:
            return str(path)
