"""Helpers for the editor and history tests: typing as a user types, reading what a widget
shows, and small function folders written for one test."""

from __future__ import annotations

from pathlib import Path

from textual.pilot import Pilot

from tests.ui.conftest import notices
from workbench.ui.app import WorkbenchApp

__all__ = ["function_dir", "notices", "shown", "type_text"]

ECHO = "def handler(event, context):\n    print('echo', event)\n    return event\n"


async def type_text(pilot: Pilot[int], text: str) -> None:
    """Press one key per character (a newline is enter), as a person typing would."""
    await pilot.press(*["enter" if ch == "\n" else ch for ch in text])


def shown(app: WorkbenchApp, selector: str) -> str:
    """The plain text a widget shows (a Static, or a widget that renders itself)."""
    return str(app.screen.query_one(selector).render())


def function_dir(tmp_path: Path, name: str, code: str, toml: str = "") -> Path:
    """A Python function folder with `app.py` (and a workbench.toml when given)."""
    folder = tmp_path / name
    folder.mkdir()
    (folder / "app.py").write_text(code)
    if toml:
        (folder / "workbench.toml").write_text(toml)
    return folder
