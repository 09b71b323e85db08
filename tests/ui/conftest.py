"""UI tests: the real app, over a real Session, against real example functions.

Pilot tests are plain functions that run their coroutine with `run_app`, so no asyncio plugin
is needed. Every test gets its own XDG_CONFIG_HOME: the user's remembered theme and keys never
leak into a test, and a test's never leak out."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from tests.conftest import EXAMPLES
from workbench.core.config.resolve import resolve_functions
from workbench.core.session import Session
from workbench.ui.app import WorkbenchApp
from workbench.ui.prefs import Prefs

SIZE = (120, 36)


@pytest.fixture(autouse=True)
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "config-home"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    yield home


@pytest.fixture
def hello(tmp_path: Path) -> Path:
    """A private copy of examples/hello-python (its events/ included)."""
    target = tmp_path / "hello"
    shutil.copytree(
        EXAMPLES / "hello-python",
        target,
        ignore=shutil.ignore_patterns(".workbench", "__pycache__"),
    )
    return target


def make_app(
    *targets: Path,
    watch: bool = False,
    port: int | None = 0,
    theme: str | None = None,
    prefs: Prefs | None = None,
) -> WorkbenchApp:
    resolved = resolve_functions(list(targets))
    session = Session([fn.config for fn in resolved], watch=watch, port=port)
    # as the TUI command does: the first function's folder may name a theme
    app = WorkbenchApp(session, theme=theme, prefs=prefs, project_theme=resolved[0].theme)
    shown = _NOTICES.setdefault(id(app), [])
    notify = app.notify

    def recording(message: str, *args: Any, **kwargs: Any) -> None:
        shown.append(str(message))
        notify(message, *args, **kwargs)

    app.notify = recording  # type: ignore[method-assign]
    return app


_NOTICES: dict[int, list[str]] = {}


def notices(app: WorkbenchApp) -> list[str]:
    """Every notification the app has shown so far. Textual drops a notification after its
    timeout (a few seconds), which a loaded machine can spend before the test looks."""
    return list(_NOTICES.get(id(app), []))


def run_app(
    app: WorkbenchApp,
    body: Callable[[Pilot[int], WorkbenchApp], Awaitable[None]],
    size: tuple[int, int] = SIZE,
) -> None:
    """Run the app headless, wait for its session to be up, then run `body`; the app is
    always shut down (every function process stopped) at the end."""

    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await app.workers.wait_for_complete()
            await pilot.pause()
            try:
                await body(pilot, app)
            finally:
                await app.shutdown()

    asyncio.run(main())


async def wait_for(
    pilot: Pilot[int], check: Callable[[], object], timeout: float = 60, what: str = "the condition"
) -> None:
    """Let the app run until `check()` is true; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)
