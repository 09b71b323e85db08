"""The workbench TUI: wiring between the panes and the core's Session. Logic lives in the
widgets (what a pane shows) and in the core (what happens); this file connects them."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Iterable
from pathlib import Path

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Container, Grid
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer

from workbench.core import events as saved
from workbench.core.bus import (
    BuildFinished,
    EnvironmentInitFailed,
    InvocationFinished,
    LogLine,
    ReloadFinished,
    WorkerFailed,
)
from workbench.core.config import FunctionConfig
from workbench.core.events_render import EventError
from workbench.core.payloads import ServiceError
from workbench.core.session import Row, Session
from workbench.ui.bridge import Bridge
from workbench.ui.messages import (
    CoreEvents,
    InvocationSelected,
    InvokeRequested,
    ReplayRequested,
    SaveEventRequested,
)
from workbench.ui.prefs import Prefs
from workbench.ui.screens.dialogs import Confirm, NamePrompt, Picker
from workbench.ui.screens.help import HelpScreen
from workbench.ui.themes import DEFAULT_THEME, THEME_VARIABLES, load_themes
from workbench.ui.widgets.event_editor import EventEditor
from workbench.ui.widgets.history_table import InvocationHistory
from workbench.ui.widgets.log_pane import LogPane
from workbench.ui.widgets.response_view import ResponseView
from workbench.ui.widgets.status_bar import StatusLine
from workbench.ui.widgets.timing_panel import TimingPanel

PANES = (("pane-editor", "Event"), ("pane-response", "Response"), ("pane-timing", "Timing"),
         ("pane-history", "History"), ("pane-logs", "Logs"))


class WorkbenchApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "workbench"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]
    BINDINGS = [
        Binding("ctrl+r,ctrl+enter", "invoke", "Invoke", id="invoke", priority=True),
        Binding("ctrl+e", "pick_event", "Events", id="pick_event"),
        Binding("ctrl+s", "save_event", "Save", id="save_event", priority=True),
        Binding("ctrl+k", "cold_start", "Cold start", id="cold_start"),
        Binding("ctrl+o", "toggle_maximize", "Maximise", id="maximize"),
        Binding("ctrl+f", "switch_function", "Function", id="switch_function", show=False),
        Binding("ctrl+t", "change_theme", "Theme", id="change_theme"),
        Binding("f1", "help", "Help", id="help"),
        Binding("ctrl+q", "quit", "Quit", id="quit", priority=True),
        Binding("ctrl+c", "quit", "Quit", id="interrupt", show=False, priority=True),
    ]

    def __init__(self, session: Session, *, prefs: Prefs | None = None,
                 theme: str | None = None, start_session: bool = True) -> None:
        super().__init__()
        self.session = session
        self.prefs = prefs if prefs is not None else Prefs.load()
        self.requested_theme = theme
        self.start_session = start_session
        self.active = session.names[0]
        self.rows: dict[str, Row] = {}
        self.mine: set[str] = set()  # invocations this UI asked for: selected when they end
        self.bridge: Bridge | None = None
        self.closed = False
        self.theme_problems: list[str] = []

    # ---- building the screen ----

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(THEME_VARIABLES)

    def compose(self) -> ComposeResult:
        with Grid(id="panes"):
            for pane_id, title in PANES:
                with Container(id=pane_id, classes="pane") as pane:
                    pane.border_title = title
                    yield self._pane_body(pane_id)
        yield StatusLine(id="status")
        yield Footer()

    def _pane_body(self, pane_id: str) -> Widget:
        if pane_id == "pane-editor":
            return EventEditor(id="editor")
        if pane_id == "pane-response":
            return ResponseView(id="response")
        if pane_id == "pane-timing":
            return TimingPanel(id="timing")
        if pane_id == "pane-history":
            return InvocationHistory(id="history")
        return LogPane(self.session.log, id="logs")

    @property
    def cfg(self) -> FunctionConfig:
        return self.session.configs[self.active]

    @property
    def events_folder(self) -> Path:
        return saved.events_folder(self.cfg.code_dir, self.cfg.events_dir)

    def on_mount(self) -> None:
        themes, self.theme_problems = load_themes()
        for theme in themes:
            self.register_theme(theme)
        wanted = self.requested_theme or self.prefs.theme or self.cfg.theme or DEFAULT_THEME
        self.theme = wanted if wanted in self.available_themes else DEFAULT_THEME
        if self.prefs.keys:
            self.set_keymap(self.prefs.keys)
        for problem in [*self.theme_problems, *([self.prefs.problem] if self.prefs.problem
                                                else [])]:
            self.notify(problem, title="Settings", severity="warning", timeout=10)
        self.bridge = Bridge(self, self.session.bus)
        self._load_history()
        self._load_first_event()
        self.query_one(EventEditor).text_area.focus()
        self._refresh_status()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, lambda: self.call_later(self.action_quit))
        if self.start_session:
            self.run_session()

    @work(group="session", exit_on_error=False, name="start session")
    async def run_session(self) -> None:
        built = await self.session.start()
        for name, result in built.items():
            if not result.ok:
                self.notify(f"{name}: the first build failed; save a fix to try again "
                            "(the build output is in the logs)", severity="error", timeout=10)
        self._refresh_status()

    def watch_theme(self, theme: str) -> None:
        if self.is_mounted and theme != self.prefs.theme:
            self.prefs.theme = theme
            try:
                self.prefs.save()
            except OSError as exc:
                self.notify(f"could not remember the theme: {exc}", severity="warning")
        if self.is_mounted:  # highlighted payloads take their colours from the theme
            self._show_selected()

    # ---- what the core says ----

    def on_core_events(self, message: CoreEvents) -> None:
        lines: list[LogLine] = []
        finished: list[Row] = []
        for event in message.events:
            if isinstance(event, LogLine):
                lines.append(event)
            elif isinstance(event, InvocationFinished):
                row = self.session.rows.get(event.record.request_id)
                if row is not None:
                    self.rows[row.request_id] = row
                    if row.function == self.active:
                        finished.append(row)
            else:
                self._announce(event)
        if lines:
            self.query_one(LogPane).add(lines)
        if finished:
            history = self.query_one(InvocationHistory)
            history.add_rows(finished)
            wanted = [r.request_id for r in finished if r.request_id in self.mine]
            if wanted:
                self.mine.difference_update(wanted)
                history.select_id(wanted[-1])
                self._show(wanted[-1])
            self.query_one(TimingPanel).show_figures(self.session.figures(self.active))
        self._refresh_status()

    def _announce(self, event: object) -> None:
        if isinstance(event, ReloadFinished) and not event.ok:
            self.notify(f"{event.function}: {event.error}\nThe last good version keeps serving.",
                        title="Reload failed", severity="error", timeout=8)
        elif isinstance(event, ReloadFinished):
            self.notify(f"{event.function} reloaded in {event.save_to_ready_ms:.0f} ms",
                        timeout=2)
        elif isinstance(event, BuildFinished) and not event.ok and not event.cancelled:
            self.notify(f"{event.function}: the build failed (its output is in the logs)",
                        severity="error", timeout=8)
        elif isinstance(event, EnvironmentInitFailed):
            self.notify(f"{event.function}: init failed ({event.error_type})", severity="error")
        elif isinstance(event, WorkerFailed):
            self.notify(f"{event.function}: {event.worker} stopped: {event.error}",
                        severity="error", timeout=15)

    def _refresh_status(self) -> None:
        reloaders = self.session.functions[self.active]
        last = reloaders.last_reload
        self.query_one(StatusLine).show(
            function=self.active, runtime=self.cfg.runtime,
            state=self.session.state[self.active], api_url=self.session.api_url,
            last_reload_ms=last.save_to_ready_ms if last is not None and last.ok else None,
            count=self.session.tallies[self.active].count,
            functions=len(self.session.names))

    # ---- history, response, timing ----

    def _load_history(self) -> None:
        past = [Row.of_entry(e) for e in self.session.past(self.active)]
        mine = [r for r in self.session.rows.values() if r.function == self.active]
        rows = {r.request_id: r for r in [*past, *mine]}
        self.rows.update(rows)
        ordered = sorted(rows.values(), key=lambda r: r.started_at, reverse=True)
        self.query_one(InvocationHistory).set_rows(ordered)
        self.query_one(TimingPanel).show_figures(self.session.figures(self.active))

    def on_invocation_selected(self, message: InvocationSelected) -> None:
        if message.request_id is not None:
            self._show(message.request_id)

    def _show(self, request_id: str) -> None:
        row = self.rows.get(request_id)
        self.query_one(ResponseView).show_row(row)
        self.query_one(TimingPanel).show_row(row)
        self.query_one(LogPane).set_filter(request_id=request_id)

    def _show_selected(self) -> None:
        rid = self.query_one(InvocationHistory).selected_id
        if rid is not None:
            self.query_one(ResponseView).show_row(self.rows.get(rid))

    # ---- invoking ----

    def action_invoke(self) -> None:
        self.query_one(EventEditor).request_invoke()

    def on_invoke_requested(self, message: InvokeRequested) -> None:
        self._invoke(message.payload, message.event_name, "tui")

    def _invoke(self, payload: bytes, event_name: str | None, source: str) -> None:
        try:
            handle = self.session.invoke(self.active, payload, event_name, source)
        except ServiceError as exc:
            self.notify(f"{exc.code}: {exc.message}", title="Not invoked", severity="error")
            return
        self.mine.add(handle.request_id)

    def on_replay_requested(self, message: ReplayRequested) -> None:
        row = self.rows.get(message.request_id)
        if row is not None:
            self._invoke(row.event, row.event_name, "replay")

    def action_cold_start(self) -> None:
        self.session.force_cold(self.active)
        self.notify("The next invoke starts cold")

    # ---- saved events ----

    def _load_first_event(self) -> None:
        names = saved.list_saved(self.events_folder)
        editor = self.query_one(EventEditor)
        if names:
            self._open_saved(names[0])
        else:
            editor.load("{}\n", None)

    def _open_saved(self, name: str) -> None:
        path = saved.saved_path(self.events_folder, name)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            self.notify(f"cannot read {path}: {exc}", severity="error")
            return
        self.query_one(EventEditor).load(text, name)

    def action_pick_event(self) -> None:
        from workbench.core.sample_catalog import list_samples

        choices = [(f"saved:{n}", f"saved   {n}") for n in saved.list_saved(self.events_folder)]
        choices += [(f"sample:{s.name}", f"sample  {s.name}  {s.title}") for s in list_samples()]
        self.push_screen(Picker("Open an event: saved ones, then the sample library", choices),
                         self._picked_event)

    def _picked_event(self, choice: str | None) -> None:
        if choice is None:
            return
        kind, _, name = choice.partition(":")
        if kind == "saved":
            self._open_saved(name)
            return
        from workbench.core.sample_catalog import render_sample

        try:
            event = render_sample(name)
        except EventError as exc:
            self.notify(str(exc), severity="error")
            return
        self.query_one(EventEditor).load(json.dumps(event, indent=2) + "\n", None)
        self.notify(f"Sample {name} loaded; ctrl+s saves it as an event of yours")

    def action_save_event(self) -> None:
        editor = self.query_one(EventEditor)
        if editor.event_name is None:
            self.action_save_event_as()
        else:
            self._save(editor.event_name)

    def action_save_event_as(self) -> None:
        editor = self.query_one(EventEditor)
        self.push_screen(NamePrompt("Save the event as", editor.event_name or ""), self._save)

    def _save(self, name: str | None, text: str | None = None) -> None:
        if name is None:
            return
        editor = self.query_one(EventEditor)
        try:
            doc = json.loads(editor.text if text is None else text or "{}")
            path = saved.save_event(self.events_folder, name, doc)
        except ValueError as exc:  # EventError is one; so is invalid JSON
            self.notify(f"Not saved: {exc}", severity="error")
            return
        except OSError as exc:
            self.notify(f"Not saved: {exc}", severity="error")
            return
        if text is None:
            editor.mark_saved(name)
        self.notify(f"Saved {path}")

    def on_save_event_requested(self, message: SaveEventRequested) -> None:
        row = self.rows.get(message.request_id)
        if row is None:
            return
        text = row.event.decode("utf-8", "replace")
        self.push_screen(NamePrompt("Save this invocation's event as",
                                    row.event_name or f"from-{row.request_id[:8]}"),
                         lambda name: self._save(name, text))

    def action_rename_event(self) -> None:
        editor = self.query_one(EventEditor)
        old = editor.event_name
        if old is None:
            self.notify("This event is not saved yet: ctrl+s saves it", severity="warning")
            return

        def rename(new: str | None) -> None:
            if new is None or new == old:
                return
            try:
                saved.rename_event(self.events_folder, old, new)
            except (EventError, OSError) as exc:
                self.notify(f"Not renamed: {exc}", severity="error")
                return
            editor.event_name = new
            editor.mark_saved(new) if not editor.modified else editor._show_name()
            self.notify(f"Renamed {old} to {new}")
        self.push_screen(NamePrompt(f"Rename {old} to", old), rename)

    def action_delete_event(self) -> None:
        editor = self.query_one(EventEditor)
        name = editor.event_name
        if name is None:
            self.notify("This event is not saved: nothing to delete", severity="warning")
            return

        def delete(yes: bool | None) -> None:
            if not yes:
                return
            try:
                saved.delete_event(self.events_folder, name)
            except (EventError, OSError) as exc:
                self.notify(f"Not deleted: {exc}", severity="error")
                return
            editor.event_name = None
            editor.saved_text = ""
            editor._show_name()
            self.notify(f"Deleted {name}; the text stays in the editor until you leave it")
        self.push_screen(Confirm(f"Delete the saved event {name!r}?"), delete)

    # ---- functions, panes, help, quitting ----

    def action_switch_function(self) -> None:
        names = self.session.names
        if len(names) < 2:
            self.notify(f"Only one function in this session: {self.active}")
            return
        choices = [(n, f"{n}  {self.session.configs[n].runtime}  "
                       f"{self.session.state[n]}") for n in names]
        self.push_screen(Picker("Switch to function", choices), self._switch)

    def _switch(self, name: str | None) -> None:
        if name is None or name == self.active:
            return
        self.active = name
        self.query_one(LogPane).set_filter(function=name, request_id=None)
        self._load_history()
        self._load_first_event()
        self.query_one(ResponseView).show_row(None)
        self.query_one(TimingPanel).show_row(None)
        self._refresh_status()

    def _pane_of(self, widget: Widget | None) -> Widget | None:
        while widget is not None and not widget.has_class("pane"):
            parent = widget.parent
            widget = parent if isinstance(parent, Widget) else None
        return widget

    def action_toggle_maximize(self) -> None:
        screen = self.screen
        if screen.maximized is not None:
            screen.minimize()
            return
        pane = self._pane_of(self.focused)
        if pane is not None:
            screen.maximize(pane, container=False)

    def key_bindings(self) -> list[tuple[str, str, str]]:
        """(binding id, keys, description) of every keyed action, remapped ones included."""
        out = []
        for node in [self, *self.query("InvocationHistory, LogPane")]:
            for binding in node._bindings.key_to_bindings.values():
                for b in binding:
                    if b.id and (b.id, b.description) not in {(i, d) for i, _, d in out}:
                        keys = self.keymap.get(b.id, b.key) if self.keymap else b.key
                        out.append((b.id, keys, b.description or b.action))
        return sorted(out)

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.key_bindings()))

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        commands = [
            ("Invoke", "Send the event in the editor to the function", self.action_invoke),
            ("Open event", "Pick a saved event or a sample event", self.action_pick_event),
            ("Save event", "Save the editor's event", self.action_save_event),
            ("Save event as", "Save the editor's event under a new name",
             self.action_save_event_as),
            ("Rename event", "Rename the saved event being edited", self.action_rename_event),
            ("Delete event", "Delete the saved event being edited", self.action_delete_event),
            ("Force a cold start", "The next invoke starts a fresh environment",
             self.action_cold_start),
            ("Reload now", "Rebuild and restart the function without a change",
             lambda: self.session.reload_now(self.active)),
            ("Switch function", "Choose which function the panes show",
             self.action_switch_function),
            ("Maximise pane", "Show the focused pane alone (again to restore)",
             self.action_toggle_maximize),
            ("Follow logs", "Toggle following the end of the log",
             lambda: self.query_one(LogPane).action_toggle_follow()),
            ("All requests' logs", "Stop filtering the log to one request",
             lambda: self.query_one(LogPane).action_clear_request()),
            ("Help", "Every key and its binding id", self.action_help),
        ]
        for title, help_text, callback in commands:
            yield SystemCommand(title, help_text, callback)

    async def action_quit(self) -> None:
        await self.shutdown()
        self.exit(0)

    async def shutdown(self) -> None:
        """Stop every function process and server, and get history onto disk; once."""
        if self.closed:
            return
        self.closed = True
        if self.bridge is not None:
            self.bridge.close()
        await self.session.close()

    async def on_unmount(self) -> None:
        await self.shutdown()
