"""Themes, keys, help, the palette, maximising, the status line and the timing pane, driven
through the real app over a real Session (no function is faked)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.color import Color
from textual.command import Command, CommandList, CommandPalette
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import TextArea

from tests.ui.conftest import make_app, notices, run_app, wait_for
from workbench.ui.app import WorkbenchApp
from workbench.ui.prefs import Prefs, prefs_path
from workbench.ui.screens.help import HelpScreen
from workbench.ui.themes import (
    THEME_VARIABLES,
    ThemeError,
    load_theme,
    load_themes,
    themes_folder,
    user_themes_folder,
)
from workbench.ui.widgets.history_table import InvocationHistory
from workbench.ui.widgets.status_bar import StatusLine
from workbench.ui.widgets.timing_panel import TimingPanel

UI = Path(__file__).resolve().parents[2] / "workbench" / "ui"
SHIPPED = ("workbench-dark", "workbench-light", "workbench-high-contrast")


def key_for(app: WorkbenchApp, binding_id: str) -> str:
    """The first key bound to `binding_id` now (after the user's keymap)."""
    for i, keys, _ in app.key_bindings():
        if i == binding_id:
            return keys.split(",")[0]
    raise AssertionError(f"no binding with id {binding_id!r}")


def rendered(app: WorkbenchApp, selector: str) -> str:
    return str(app.query_one(selector).render())


# ---- themes as data ----


def test_every_shipped_theme_loads_with_every_workbench_variable() -> None:
    themes, problems = load_themes(themes_folder())
    assert problems == []
    by_name = {t.name: t for t in themes}
    assert set(SHIPPED) <= set(by_name)
    assert by_name["workbench-dark"].dark and not by_name["workbench-light"].dark
    for theme in themes:
        assert set(THEME_VARIABLES) <= set(theme.variables), theme.name
        for value in theme.variables.values():
            Color.parse(value)


def test_a_bad_theme_file_is_reported_and_the_good_ones_still_load(tmp_path: Path) -> None:
    (tmp_path / "good.toml").write_text('name = "good"\nprimary = "#336699"\n')
    (tmp_path / "broken.toml").write_text('name = "broken"\nprimary = "#336699\n')
    (tmp_path / "colour.toml").write_text('name = "colour"\nprimary = "not-a-colour"\n')
    (tmp_path / "typo.toml").write_text(
        'name = "typo"\nprimary = "#336699"\n[variables]\nstatus-okay = "#00FF00"\n'
    )
    themes, problems = load_themes(tmp_path)
    assert [t.name for t in themes] == ["good"]
    assert len(problems) == 3
    text = "\n".join(problems)
    assert "broken.toml" in text and "'not-a-colour' is not a colour" in text
    assert "unknown variable 'status-okay'" in text
    with pytest.raises(ThemeError, match="primary"):
        (tmp_path / "empty.toml").write_text('name = "empty"\n')
        load_theme(tmp_path / "empty.toml")


def test_a_theme_without_workbench_variables_gets_them_from_its_own_colours(tmp_path: Path) -> None:
    (tmp_path / "plain.toml").write_text(
        'name = "plain"\nprimary = "#336699"\nsuccess = "#00AA00"\nerror = "#CC0000"\n'
    )
    theme = load_theme(tmp_path / "plain.toml")
    system = theme.to_color_system().generate()
    assert theme.variables["status-ok"] == system["success"]
    assert theme.variables["status-error"] == system["error"]
    assert Color.parse(theme.variables["status-ok"]).hex == "#00AA00"


def test_the_ui_code_names_no_colour_outside_themes() -> None:
    """Colours come from theme variables only: no hex or named colour in ui code or TCSS
    (comments aside)."""
    colour = re.compile(
        r"#[0-9A-Fa-f]{3}(?:[0-9A-Fa-f]{3}(?:[0-9A-Fa-f]{2})?)?\b"
        r"|(?<![\w$-])(?:red|green|blue|white|black|yellow|magenta|cyan|grey"
        r"|gray|orange|purple|pink|ansi_\w+|rgb\(|hsl\()(?![\w-])"
    )
    offenders = []
    for path in [*UI.rglob("*.py"), *UI.rglob("*.tcss")]:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            code = (
                line.split("/*")[0] if path.suffix == ".tcss" else re.sub(r"(^|\s)#\s.*", "", line)
            )
            if colour.search(code):
                offenders.append(f"{path.name}:{n}: {line.strip()}")
    assert offenders == []


# ---- themes in the app ----


def test_switching_theme_in_the_ui_is_remembered_by_the_next_app(hello: Path) -> None:
    async def switch(pilot: Pilot[int], app: WorkbenchApp) -> None:
        assert app.theme == "workbench-dark"
        dark_ok = app.theme_variables["status-ok"]
        await pilot.press(key_for(app, "change_theme"))
        await pilot.press(*"workbench-light", "enter")
        await wait_for(pilot, lambda: app.theme == "workbench-light", what="the light theme")
        assert app.theme_variables["status-ok"] != dark_ok  # the variables changed with it
        assert Prefs.load().theme == "workbench-light"
        assert 'theme = "workbench-light"' in prefs_path().read_text()

    run_app(make_app(hello), switch)

    async def starts_light(pilot: Pilot[int], app: WorkbenchApp) -> None:
        assert app.theme == "workbench-light"

    run_app(make_app(hello), starts_light)


def test_every_theme_applies_to_the_running_app(hello: Path) -> None:
    async def body(pilot: Pilot[int], app: WorkbenchApp) -> None:
        names = [t.name for t in load_themes()[0]] + ["textual-dark", "nord"]
        for name in names:
            app.theme = name
            await pilot.pause()
            assert app.theme == name
            for variable in THEME_VARIABLES:
                Color.parse(app.theme_variables[variable])
            # the stylesheet really uses them: a pane's border follows the theme
        assert app.query_one("#pane-editor").styles.border_top[1] == Color.parse(
            app.theme_variables["accent"]
        )

    run_app(make_app(hello), body)


def test_a_broken_user_theme_is_reported_and_the_app_still_starts(hello: Path) -> None:
    folder = user_themes_folder()
    folder.mkdir(parents=True)
    (folder / "mine.toml").write_text('name = "mine"\ndark = true\nprimary = "#AA5500"\n')
    (folder / "broken.toml").write_text("name = 'broken\n")

    async def body(pilot: Pilot[int], app: WorkbenchApp) -> None:
        assert "mine" in app.available_themes
        await wait_for(
            pilot, lambda: any("broken.toml" in n for n in notices(app)), what="the notice"
        )
        assert app.theme == "workbench-dark"
        app.theme = "mine"
        await pilot.pause()
        mine = app.get_theme("mine")
        assert mine is not None
        assert app.theme_variables["primary"] == mine.to_color_system().generate()["primary"]

    run_app(make_app(hello), body)


def test_an_unknown_remembered_theme_falls_back_to_the_default(hello: Path) -> None:
    Prefs(theme="gone-theme").save()

    async def body(pilot: Pilot[int], app: WorkbenchApp) -> None:
        assert app.theme == "workbench-dark"

    run_app(make_app(hello), body)


# ---- keys ----


def test_a_remapped_key_works_and_the_old_one_no_longer_does(hello: Path) -> None:
    path = prefs_path()
    path.parent.mkdir(parents=True)
    path.write_text('[keys]\ninvoke = "f5"\nhelp = "f9"\n')

    async def body(pilot: Pilot[int], app: WorkbenchApp) -> None:
        history = app.query_one(InvocationHistory)
        editor = app.query_one("#event-text", TextArea)
        editor.load_text('{"name": "old key"}')
        await pilot.press("ctrl+r")  # no longer invoke
        editor.load_text('{"name": "new key"}')
        await pilot.press("f5")
        await wait_for(pilot, lambda: history.rows_shown, what="the f5 invocation")
        # one environment answers in order, so a ctrl+r invoke would have come first
        assert [json.loads(r.event)["name"] for r in history.rows_shown] == ["new key"]
        assert app.session.status("hello").invocations == 1
        assert ("invoke", "f5", "Invoke") in app.key_bindings()
        await pilot.press("f1")  # help moved to f9: f1 now does nothing
        await pilot.pause()
        await wait_for(
            pilot,
            lambda: not isinstance(app.screen, HelpScreen),
            what="not isinstance(app.screen, HelpScreen)",
        )
        await pilot.press("f9")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="help on f9")

    run_app(make_app(hello), body)


def test_help_lists_every_key_with_its_binding_id(hello: Path) -> None:
    async def body(pilot: Pilot[int], app: WorkbenchApp) -> None:
        await pilot.press(key_for(app, "help"))
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
        text = str(app.screen.query_one("#help-keys").render())
        ids = [i for i, _, _ in app.key_bindings()]
        for binding_id in (
            "invoke",
            "pick_event",
            "maximize",
            "change_theme",
            "quit",
            "help",
            "history.replay",
            "logs.filter",
        ):
            assert binding_id in ids
        for binding_id, keys, description in app.key_bindings():
            assert re.search(
                rf"{re.escape(keys)}\s+{re.escape(description)}\s+"
                rf"{re.escape(binding_id)}",
                text,
            ), binding_id
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, HelpScreen), what="close")

    run_app(make_app(hello), body)


# every binding, and the palette command that does the same
PALETTE = {
    "invoke": "Invoke",
    "pick_event": "Open event",
    "save_event": "Save event",
    "cold_start": "Force a cold start",
    "maximize": "Maximise pane",
    "switch_function": "Switch function",
    "change_theme": "Theme",
    "help": "Help",
    "quit": "Quit",
    "interrupt": "Quit",
    "show_config": "Show configuration",
    "pane_taller": "Taller pane",
    "pane_shorter": "Shorter pane",
    "editor.rename": "Rename event",
    "editor.save_as": "Save event as",
    "editor.delete": "Delete event",
    "editor.format": "Format event",
    "history.replay": "Replay invocation",
    "history.save_event": "Save invocation's event",
    "history.edit_event": "Edit invocation's event",
    "history.request": "Request or response",
    "response.switch": "Request or response",
    "response.copy": "Copy response",
    "logs.filter": "Filter logs",
    "logs.follow": "Follow logs",
    "logs.all_requests": "All requests' logs",
}


def palette_offers(app: WorkbenchApp, title: str) -> bool:
    """The command palette is open, done searching, and its highlighted command is `title`."""
    palette = app.screen
    if not isinstance(palette, CommandPalette):
        return False
    group = CommandPalette._GATHER_COMMANDS_GROUP
    if any(w.group == group and not w.is_finished for w in app.workers):
        return False  # still searching (in a worker)
    commands = palette.query_one(CommandList)
    if commands.highlighted is None:
        return False
    option = commands.get_option_at_index(commands.highlighted)
    return isinstance(option, Command) and option.hit.text == title


def test_the_palette_has_every_keyed_action_and_runs_them(hello: Path) -> None:
    async def body(pilot: Pilot[int], app: WorkbenchApp) -> None:
        titles = {c.title for c in app.get_system_commands(app.screen)}
        for binding_id, _, _ in app.key_bindings():
            assert binding_id in PALETTE, f"{binding_id}: which palette command does it?"
            assert PALETTE[binding_id] in titles, f"{binding_id}: no {PALETTE[binding_id]!r}"
        await pilot.press("ctrl+p")
        await pilot.press(*"Maximise pane")
        await wait_for(pilot, lambda: palette_offers(app, "Maximise pane"), what="the search")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.maximized is not None, what="maximised")
        assert app.screen.maximized is not None
        assert app.screen.maximized.id == "pane-editor"

    run_app(make_app(hello), body)


def maximised(app: WorkbenchApp, pane: Widget) -> Callable[[], bool]:
    return lambda: app.screen.maximized is pane


def rows_shown(history: InvocationHistory, n: int) -> Callable[[], bool]:
    return lambda: len(history.rows_shown) == n


def test_every_pane_maximises_and_escape_or_the_key_restores(hello: Path) -> None:
    async def body(pilot: Pilot[int], app: WorkbenchApp) -> None:
        key = key_for(app, "maximize")
        for pane_id in ("pane-editor", "pane-response", "pane-timing", "pane-history", "pane-logs"):
            pane = app.query_one(f"#{pane_id}")
            target = next(w for w in pane.query("*") if w.focusable)
            target.focus()
            await pilot.pause()
            await pilot.press(key)
            await wait_for(pilot, maximised(app, pane), what=pane_id)
            assert pane.region.size == (120, 36 - 2)  # all but the status line and footer
            assert app.query_one(StatusLine).region.height == 1
            assert not app.query_one(
                "#pane-history" if pane_id != "pane-history" else "#pane-logs"
            ).region  # the others are hidden
            await pilot.press("escape" if pane_id != "pane-logs" else key)
            await wait_for(pilot, lambda: app.screen.maximized is None, what="restored")

    run_app(make_app(hello), body)


# ---- status line, timing pane, layout ----


def test_the_status_line_says_function_runtime_state_and_api(hello: Path) -> None:
    async def body(pilot: Pilot[int], app: WorkbenchApp) -> None:
        await wait_for(pilot, lambda: "ready" in rendered(app, "#status"), what="ready")
        text = rendered(app, "#status")
        assert app.session.api_url and app.session.api_url in text
        assert "hello" in text and app.cfg.runtime in text
        assert "no reload yet" in text and "0 invocations" in text
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        short = rendered(app, "#status")
        assert app.session.api_url.removeprefix("http://") in short and "ready" in short
        assert len(short) <= 80 - 2

    run_app(make_app(hello), body)


def test_the_timing_pane_fits_at_120x36_after_invocations(hello: Path) -> None:
    async def body(pilot: Pilot[int], app: WorkbenchApp) -> None:
        history = app.query_one(InvocationHistory)
        for n in range(1, 4):
            await pilot.press("ctrl+r")
            await wait_for(pilot, rows_shown(history, n), what=f"invoke {n}")
        panel = app.query_one(TimingPanel)
        await pilot.pause()
        text = str(app.query_one("#timing-session").render())
        assert "3 invoke" in text and "1 cold" in text
        assert re.search(r"p50 [\d.]+ p95 [\d.]+ max [\d.]+ ms", text)
        breakdown = str(app.query_one("#timing-selected").render())
        assert "warm start" in breakdown and "Duration" in breakdown and "Billed" in breakdown
        # all of it is visible: nothing scrolled away or cut at the right
        assert panel.virtual_size.height <= panel.size.height
        assert panel.max_scroll_y == 0 and panel.max_scroll_x == 0

    run_app(make_app(hello), body)


def test_a_narrow_terminal_stacks_the_panes_and_scrolls(hello: Path) -> None:
    async def body(pilot: Pilot[int], app: WorkbenchApp) -> None:
        panes = app.query_one("#panes")
        editor, logs = app.query_one("#pane-editor"), app.query_one("#pane-logs")
        assert editor.region.width >= 70
        logs.query_one("Input").focus()
        await pilot.pause()
        assert editor.region.x == logs.region.x == 0  # one column
        assert panes.max_scroll_y > 0 and panes.scroll_y > 0  # scrolled to the focused pane
        assert logs.region.height >= 10

    run_app(make_app(hello), body, size=(80, 30))


def test_alt_up_and_down_resize_the_focused_panes_row(hello: Path) -> None:
    async def body(pilot: Pilot[int], app: WorkbenchApp) -> None:
        logs = app.query_one("#pane-logs")
        editor = app.query_one("#pane-editor")
        before = (logs.size.height, editor.size.height)
        app.query_one("#log-text-filter").focus()
        await pilot.press("alt+down", "alt+down")
        await pilot.pause()
        assert logs.size.height > before[0] and editor.size.height < before[1]
        app.query_one("#event-text").focus()
        for _ in range(20):  # never below one share
            await pilot.press("alt+up")
        await pilot.pause()
        assert 0 < editor.size.height < before[1]
        assert app.row_shares[0] == 1

    run_app(make_app(hello), body)


def test_an_unknown_theme_name_is_said_and_the_default_shown(hello: Path) -> None:
    async def body(pilot: Pilot[int], app: WorkbenchApp) -> None:
        assert app.theme == "workbench-dark"
        assert any("no theme 'workbench-drak'" in n for n in notices(app)), notices(app)

    run_app(make_app(hello, theme="workbench-drak"), body)
