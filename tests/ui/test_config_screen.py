"""What the function is configured with, visible in the UI (F3), and followed live: the TUI
built as `workbench DIR` builds it, with the command line's flags."""

from __future__ import annotations

import json
from pathlib import Path

from textual.pilot import Pilot

from tests.ui.conftest import run_app, wait_for
from workbench.commands._common import rereader, resolve
from workbench.commands._tui import build_parser as tui_parser
from workbench.core.session import Session
from workbench.ui.app import WorkbenchApp
from workbench.ui.prefs import Prefs
from workbench.ui.screens.config_view import ConfigScreen
from workbench.ui.widgets.history_table import InvocationHistory

HANDLER = """import os

def handler(event, context):
    return {"colour": os.environ.get("COLOUR"), "size": os.environ.get("SIZE")}
"""


def _app_like_the_cli(*argv: str, prefs: Prefs | None = None) -> WorkbenchApp:
    args = tui_parser().parse_args([*argv, "--port", "0"])
    resolved = resolve(args.dirs, args)
    readers = {fn.config.name: rereader(fn, args) for fn in resolved}
    session = Session(
        [fn.config for fn in resolved],
        watch=True,
        port=0,
        resolvers=readers,
        describers={n: r.describe for n, r in readers.items()},
    )
    return WorkbenchApp(session, prefs=prefs)


def test_f3_shows_each_variable_and_where_it_came_from_and_follows_an_edit(tmp_path: Path) -> None:
    fn = tmp_path / "paint"
    fn.mkdir()
    (fn / "app.py").write_text(HANDLER)
    (fn / "workbench.toml").write_text('[environment]\nCOLOUR = "red"\n')
    (fn / ".env").write_text("SIZE=small\n")

    async def body(pilot: Pilot[int], app: WorkbenchApp) -> None:
        await pilot.press("f3")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfigScreen), what="F3")
        text = str(app.screen.query_one("#config-text").render())
        assert "COLOUR = red" in text and "workbench.toml" in text
        assert "SIZE = large (--env)" in text, "the flag wins over .env, and says so"
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfigScreen))

        history = app.query_one(InvocationHistory)
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: len(history.rows_shown) == 1)
        assert json.loads(history.rows_shown[0].response) == {"colour": "red", "size": "large"}

        (fn / "workbench.toml").write_text('[environment]\nCOLOUR = "blue"\n')
        await wait_for(
            pilot, lambda: app.session.status("paint").last_reload is not None, what="the reload"
        )
        last = app.session.status("paint").last_reload
        assert last is not None and last.ok
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: len(history.rows_shown) == 2)
        assert json.loads(history.rows_shown[0].response)["colour"] == "blue"
        await pilot.press("f3")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfigScreen))
        assert "COLOUR = blue" in str(app.screen.query_one("#config-text").render())

    run_app(_app_like_the_cli(str(fn), "--env", "SIZE=large"), body)


def test_a_misspelt_binding_id_in_the_keymap_is_reported(hello: Path) -> None:
    seen: list[str] = []

    async def body(pilot: Pilot[int], app: WorkbenchApp) -> None:
        await wait_for(pilot, lambda: seen, what="the warning")
        assert "'invok' is not a binding id" in seen[0] and '"invoke"' in seen[0]

    app = _app_like_the_cli(str(hello), prefs=Prefs(keys={"invok": "f5"}))
    original = app.notify

    def notify(message: str, **kwargs: object) -> None:
        seen.append(message)
        original(message, **kwargs)  # type: ignore[arg-type]

    app.notify = notify  # type: ignore[method-assign]
    run_app(app, body)
