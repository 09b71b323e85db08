"""The workbench TUI: wiring between the panes and the core's Session. Logic lives in the
widgets (what a pane shows) and in the core (what happens); this file connects them."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterable
from pathlib import Path

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Grid
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.widgets import Footer

from workbench.core.bus import (
    EnvironmentInitFailed,
    InvocationFinished,
    PinnedCheckFinished,
    ReloadFinished,
    WorkerFailed,
)
from workbench.core.config.function import FunctionConfig
from workbench.core.engine.payloads import ServiceError
from workbench.core.record import InvocationRecord
from workbench.core.saved_events import store as saved
from workbench.core.session import Session
from workbench.core.vocab import Source
from workbench.ui.bridge import Bridge
from workbench.ui.exit_guard import ExitGuard
from workbench.ui.messages import (
    CoreEvents,
    EditEventRequested,
    InvocationSelected,
    InvokeRequested,
    PayloadSwitchRequested,
    ReplayRequested,
    SaveEventRequested,
)
from workbench.ui.prefs import Prefs
from workbench.ui.screens.dialogs import Picker
from workbench.ui.themes import DEFAULT_THEME, load_themes, theme_variable_defaults
from workbench.ui.widgets.event_editor import Draft, EventEditor
from workbench.ui.widgets.history_table import InvocationHistory
from workbench.ui.widgets.log_pane import LogPane
from workbench.ui.widgets.pane import Pane
from workbench.ui.widgets.response_view import ResponseView
from workbench.ui.widgets.status_bar import StatusLine
from workbench.ui.widgets.timing_panel import TimingPanel

PANES = (
    ("pane-editor", "Event"),
    ("pane-response", "Response"),
    ("pane-timing", "Timing"),
    ("pane-history", "History"),
    ("pane-logs", "Logs"),
)


ROW_SHARES = (3, 2, 3)  # the grid's rows (top panes, history, logs); app.tcss says the same
ROW_OF = {"pane-history": 1, "pane-logs": 2}  # the top row's three panes are row 0
MAX_SHARE = 12


class WorkbenchApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "workbench"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]
    ALLOW_IN_MAXIMIZED_VIEW = "StatusLine, Footer"  # a maximised pane keeps the status
    BINDINGS = [
        Binding("ctrl+r,ctrl+enter", "invoke", "Invoke", id="invoke", priority=True),
        # none of these is a key the editor or an input field already uses (ctrl+e, ctrl+k
        # and ctrl+x are line editing there), so they work from every pane
        Binding("ctrl+o", "pick_event", "Open event", id="pick_event"),
        Binding("ctrl+s", "save_event", "Save", id="save_event", priority=True),
        Binding("ctrl+n", "cold_start", "Cold start", id="cold_start"),
        Binding("ctrl+g", "toggle_maximize", "Maximise", id="maximize"),
        Binding("ctrl+f", "switch_function", "Function", id="switch_function", show=False),
        Binding("ctrl+t", "change_theme", "Theme", id="change_theme"),
        Binding("alt+down", "resize_pane(1)", "Taller", id="pane_taller", show=False),
        Binding("alt+up", "resize_pane(-1)", "Shorter", id="pane_shorter", show=False),
        Binding("f1", "help", "Help", id="help"),
        Binding("f3", "show_config", "Config", id="show_config", show=False),
        Binding("ctrl+q", "quit", "Quit", id="quit", priority=True),
        Binding("ctrl+c", "quit", "Quit", id="interrupt", show=False, priority=True),
    ]

    def __init__(
        self,
        session: Session,
        *,
        prefs: Prefs | None = None,
        theme: str | None = None,
        project_theme: str | None = None,
        start_session: bool = True,
    ) -> None:
        super().__init__()
        self.session = session
        self.prefs = prefs if prefs is not None else Prefs.load()
        self.requested_theme = theme  # --theme: for this run only
        self.project_theme = project_theme  # workbench.toml's
        self._theme_chosen = False  # set once the starting theme is on: later changes are kept
        self.start_session = start_session
        self.active = session.names[0]
        self.rows: dict[str, InvocationRecord] = {}
        self.row_shares = list(ROW_SHARES)  # the grid's rows, as alt+up/down leave them
        self.drafts: dict[str, Draft] = {}  # the editor of each function not shown now
        self.mine: set[str] = set()  # invocations this UI asked for: selected when they end
        self.bridge: Bridge | None = None
        self.closed = False
        self.exit_guard = ExitGuard()
        self.theme_problems: list[str] = []

    # ---- building the screen ----

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """While a dialog is open only it and quitting act: ctrl+s in a name prompt must not
        save the editor's event behind it."""
        return not (
            isinstance(self.screen, ModalScreen) and action not in ("quit", "command_palette")
        )

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return theme_variable_defaults(self.current_theme)

    def compose(self) -> ComposeResult:
        with Grid(id="panes"):
            for pane_id, title in PANES:
                with Pane(id=pane_id, classes="pane") as pane:
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
        wanted = self.requested_theme or self.prefs.theme or self.project_theme or DEFAULT_THEME
        self.theme = wanted if wanted in self.available_themes else DEFAULT_THEME
        self._theme_chosen = True
        if wanted != self.theme:  # a typo in --theme, tui.toml or workbench.toml
            self.theme_problems.append(
                f"no theme {wanted!r}: showing {DEFAULT_THEME} (ctrl+t lists the themes there are)"
            )
        if self.prefs.keys:
            self.set_keymap(self.prefs.keys)
            self.call_after_refresh(self._check_keymap)
        for problem in [
            *self.theme_problems,
            *([self.prefs.problem] if self.prefs.problem else []),
        ]:
            self.notify(problem, title="Settings", severity="warning", timeout=10)
        for name in self.session.configs:
            note = self.session.status(name).runtime_note
            if note:
                self.notify(note, title="Runtime", severity="warning", timeout=10)
        self.bridge = Bridge(self, self.session.bus)
        self._load_history()
        self._load_first_event()
        self.query_one(EventEditor).text_area.focus()
        self._refresh_status()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, lambda: self.call_later(self._quit_on_signal))
        if self.start_session:
            self.run_session()

    @work(group="session", exit_on_error=False, name="start session")
    async def run_session(self) -> None:
        built = await self.session.start()
        for name, result in built.items():
            if not result.ok:
                self.notify(
                    f"{name}: the first build failed; save a fix to try again "
                    "(the build output is in the logs)",
                    severity="error",
                    timeout=10,
                )
        self._refresh_status()

    def watch_theme(self, theme: str) -> None:
        if self._theme_chosen and theme != self.prefs.theme:
            self.prefs.theme = theme
            try:
                self.prefs.save()
            except OSError as exc:
                self.notify(f"could not remember the theme: {exc}", severity="warning")
        if self._theme_chosen:  # highlighted payloads take their colours from the theme
            self._show_selected()

    # ---- what the core says ----

    def on_core_events(self, message: CoreEvents) -> None:
        finished: list[InvocationRecord] = []
        for event in message.events:
            if isinstance(event, InvocationFinished):
                row = self.session.invocation(event.record.request_id)
                if row is not None:
                    self.rows[row.request_id] = row
                    if row.function == self.active:
                        finished.append(row)
            else:
                self._announce(event)
        self.query_one(LogPane).catch_up()  # log lines are read from the session's LogBook
        if finished:
            history = self.query_one(InvocationHistory)
            history.add_invocations(finished)
            wanted = [r.request_id for r in finished if r.request_id in self.mine]
            if wanted:
                self.mine.difference_update(wanted)
                history.select_id(wanted[-1])
                self._show(wanted[-1])
            self.query_one(TimingPanel).show_figures(self.session.figures(self.active))
        self._refresh_status()

    def _announce(self, event: object) -> None:
        if isinstance(event, ReloadFinished) and not event.ok:
            self.notify(
                f"{event.function}: {event.error}\nThe last good version keeps serving.",
                title="Reload failed",
                severity="error",
                timeout=8,
            )
            if event.function == self.active:  # the compiler's output is what to read now
                self.query_one(LogPane).set_filter(request_id=None)
        elif isinstance(event, ReloadFinished):
            self.notify(f"{event.function} reloaded in {event.save_to_ready_ms:.0f} ms", timeout=2)
        elif isinstance(event, EnvironmentInitFailed):
            self.notify(f"{event.function}: init failed ({event.error_type})", severity="error")
        elif isinstance(event, PinnedCheckFinished):
            self._announce_check(event)
        elif isinstance(event, WorkerFailed):
            self.notify(
                event.summary(),
                severity="error",
                timeout=15,
            )

    def _announce_check(self, event: PinnedCheckFinished) -> None:
        """Regression on save: a pinned event's verdict after a reload; a difference stays
        on screen until dismissed, with the diff in the response pane when selected."""
        if event.request_id and event.request_id == self.query_one(InvocationHistory).selected_id:
            self._show(event.request_id)  # the row on screen now has its verdict
        where = f"{event.function}/{event.event_name}"
        if event.status == "diff":
            self.notify(
                f"{where} answers differently now ({event.detail}); select its row to see the diff",
                title="Pinned event changed",
                severity="error",
                timeout=30,
            )
        elif event.status == "error":
            self.notify(
                f"{where}: {event.detail}",
                title="Pinned event failed",
                severity="error",
                timeout=30,
            )
        else:
            self.notify(f"{where}: {event.status}", title="Pinned event", timeout=3)

    def _refresh_status(self) -> None:
        self.query_one(StatusLine).show(
            self.session.status(self.active),
            api_url=self.session.api_url,
            functions=len(self.session.names),
        )

    # ---- history, response, timing ----

    def _load_history(self) -> None:
        past = self.session.past(self.active)
        mine = self.session.invocations(self.active)
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
        self.query_one(ResponseView).show_row(row, self.session.verdict(request_id))
        self.query_one(TimingPanel).show_row(row)
        self.query_one(LogPane).select_request(
            request_id,
            row.log_lines if row else (),
            truncated=row is not None and row.log_truncated,
        )

    def _show_selected(self) -> None:
        rid = self.query_one(InvocationHistory).selected_id
        if rid is not None:
            self.query_one(ResponseView).show_row(self.rows.get(rid), self.session.verdict(rid))

    # ---- invoking ----

    def action_invoke(self) -> None:
        self.query_one(EventEditor).request_invoke()

    def on_invoke_requested(self, message: InvokeRequested) -> None:
        self._invoke(message.payload, message.event_name, "tui")

    def _invoke(self, payload: bytes, event_name: str | None, source: Source) -> None:
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

    # ---- saved events: the editor owns them; these are the app-wide keys and commands ----

    def _load_first_event(self) -> None:
        editor = self.query_one(EventEditor)
        editor.use_folder(self.events_folder)
        editor.open_first()

    def action_pick_event(self) -> None:
        self.query_one(EventEditor).action_open()

    def action_save_event(self) -> None:
        self.query_one(EventEditor).action_save()

    def action_save_event_as(self) -> None:
        self.query_one(EventEditor).action_save_as()

    def action_rename_event(self) -> None:
        self.query_one(EventEditor).action_rename()

    def action_delete_event(self) -> None:
        self.query_one(EventEditor).action_delete()

    def on_save_event_requested(self, message: SaveEventRequested) -> None:
        row = self.rows.get(message.request_id)
        if row is not None:
            self.query_one(EventEditor).save_text_as(
                row.event.decode("utf-8", "replace"), row.event_name or f"from-{row.request_id[:8]}"
            )

    def on_edit_event_requested(self, message: EditEventRequested) -> None:
        row = self.rows.get(message.request_id)
        if row is not None:
            editor = self.query_one(EventEditor)
            editor.replace(
                row.event.decode("utf-8", "replace"), None, f"invocation {row.request_id[:8]}"
            )
            editor.text_area.focus()

    def on_payload_switch_requested(self, message: PayloadSwitchRequested) -> None:
        self.query_one(ResponseView).action_switch()

    # ---- functions, panes, help, quitting ----

    def action_switch_function(self) -> None:
        names = self.session.names
        if len(names) < 2:
            self.notify(f"Only one function in this session: {self.active}")
            return
        choices = [
            (n, f"{n}  {s.runtime}  {s.state}") for n in names for s in [self.session.status(n)]
        ]
        self.push_screen(Picker("Switch to function", choices), self._switch)

    def _switch(self, name: str | None) -> None:
        if name is None or name == self.active:
            return
        editor = self.query_one(EventEditor)
        self.drafts[self.active] = editor.draft()  # unsaved edits wait for the way back
        self.active = name
        self.query_one(LogPane).set_filter(function=name, request_id=None)
        self._load_history()
        if name in self.drafts:
            editor.resume(self.drafts.pop(name))
        else:
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

    def action_resize_pane(self, step: int) -> None:
        """The focused pane's row of the grid grows (or shrinks) by a share; the others keep
        theirs, so the rest of the screen gives way."""
        pane = self._pane_of(self.focused)
        if pane is None or self.screen.maximized is not None:
            return
        row = ROW_OF.get(pane.id or "", 0)
        self.row_shares[row] = min(MAX_SHARE, max(1, self.row_shares[row] + step))
        self.query_one("#panes").styles.grid_rows = " ".join(
            f"{share}fr" for share in self.row_shares
        )

    def key_bindings(self) -> list[tuple[str, str, str]]:
        """(binding id, keys, description) of every keyed action, remapped ones included."""
        found: dict[str, tuple[list[str], str]] = {}  # id: (its keys, what it does)
        for node in [self, *self.query("EventEditor, InvocationHistory, ResponseView, LogPane")]:
            for key, bindings in node._bindings.key_to_bindings.items():  # one key each
                for b in bindings:
                    if b.id:
                        keys, _ = found.setdefault(b.id, ([], b.description or b.action))
                        if key not in keys:
                            keys.append(key)
        # the user's keymap replaces a binding's keys (Textual applies it the same way)
        return sorted(
            (i, self._keymap.get(i) or ",".join(keys), description)
            for i, (keys, description) in found.items()
        )

    def _check_keymap(self) -> None:
        """A binding id in tui.toml that names nothing is a typo: say so, and the nearest."""
        import difflib

        known = [i for i, _, _ in self.key_bindings()]
        for wrong in sorted(set(self.prefs.keys) - set(known)):
            close = difflib.get_close_matches(wrong, known, n=1)
            hint = f' (did you mean "{close[0]}"?)' if close else ""
            self.notify(
                f"[keys] {wrong!r} is not a binding id{hint}; F1 lists them",
                title="Settings",
                severity="warning",
                timeout=10,
            )

    def action_show_config(self) -> None:
        from workbench.ui.screens.config_view import ConfigScreen

        self.push_screen(
            ConfigScreen(
                f"{self.active}: configuration (F3 closes)", self.session.describe(self.active)
            )
        )

    def action_help(self) -> None:
        from workbench.ui.screens.help import HelpScreen  # Markdown: imported when first asked

        self.push_screen(HelpScreen(self.key_bindings()))

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        commands = [
            ("Invoke", "Send the event in the editor to the function", self.action_invoke),
            (
                "Show configuration",
                "Every setting of the function, where it came from, and its environment variables",
                self.action_show_config,
            ),
            ("Open event", "Pick a saved event or a sample event", self.action_pick_event),
            ("Save event", "Save the editor's event", self.action_save_event),
            (
                "Save event as",
                "Save the editor's event under a new name",
                self.action_save_event_as,
            ),
            ("Rename event", "Rename the saved event being edited", self.action_rename_event),
            ("Delete event", "Delete the saved event being edited", self.action_delete_event),
            (
                "New event",
                "Start a blank event in the editor",
                lambda: self.query_one(EventEditor).action_new(),
            ),
            (
                "Format event",
                "Pretty-print the editor's JSON",
                lambda: self.query_one(EventEditor).action_format(),
            ),
            (
                "Request or response",
                "Switch the response pane between the two",
                lambda: self.query_one(ResponseView).action_switch(),
            ),
            (
                "Force a cold start",
                "The next invoke starts a fresh environment",
                self.action_cold_start,
            ),
            (
                "Reload now",
                "Rebuild and restart the function without a change",
                lambda: self.session.reload_now(self.active),
            ),
            (
                "Switch function",
                "Choose which function the panes show",
                self.action_switch_function,
            ),
            (
                "Taller pane",
                "Give the focused pane's row more of the screen (alt+down)",
                lambda: self.action_resize_pane(1),
            ),
            (
                "Shorter pane",
                "Give the focused pane's row less of the screen (alt+up)",
                lambda: self.action_resize_pane(-1),
            ),
            (
                "Maximise pane",
                "Show the focused pane alone (again to restore)",
                self.action_toggle_maximize,
            ),
            (
                "Follow logs",
                "Toggle following the end of the log",
                lambda: self.query_one(LogPane).action_toggle_follow(),
            ),
            (
                "All requests' logs",
                "Stop filtering the log to one request",
                lambda: self.query_one(LogPane).action_clear_request(),
            ),
            (
                "Replay invocation",
                "Send the selected invocation's event again",
                lambda: self.query_one(InvocationHistory).action_replay(),
            ),
            (
                "Save invocation's event",
                "Save the selected invocation's event by name",
                lambda: self.query_one(InvocationHistory).action_save_event(),
            ),
            (
                "Edit invocation's event",
                "Open the selected invocation's event in the editor",
                lambda: self.query_one(InvocationHistory).action_edit_event(),
            ),
            (
                "Filter logs",
                "Show only the log lines with some text",
                lambda: self.query_one(LogPane).action_focus_filter(),
            ),
            (
                "Copy response",
                "Copy the shown response to the clipboard",
                lambda: self.query_one(ResponseView).action_copy(),
            ),
            ("Help", "Every key and its binding id", self.action_help),
        ]
        for title, help_text, callback in commands:
            yield SystemCommand(title, help_text, callback)

    async def action_quit(self) -> None:
        await self.shutdown()
        self.exit(0)

    async def _quit_on_signal(self) -> None:
        """SIGTERM, or SIGHUP when the terminal closed: quit as ctrl+q does. Textual's own
        teardown then writes to the terminal, and with the terminal gone that write can block
        for good (seen under load). By then every function is stopped and history is on disk,
        so the guard ends the process if the teardown has not within EXIT_GRACE_S."""
        await self.shutdown()
        self.exit_guard.arm()
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
