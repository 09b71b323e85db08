"""The headless core never loads the UI toolkit: each core module and the headless commands are
imported in a fresh interpreter, and textual/rich must not be in sys.modules afterwards."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import workbench.core

# a fresh interpreter per module: some forty processes
pytestmark = pytest.mark.integration

CORE_MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(workbench.core.__path__, "workbench.core.")
    if ".runtimes.pyric" not in m.name
)

PROBE = """
import importlib, sys
importlib.import_module({module!r})
bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))
print(','.join(bad))
"""


@pytest.mark.parametrize("module", [*CORE_MODULES, "workbench.cli"])
def test_module_imports_no_ui_toolkit(module: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"{module} pulled in {done.stdout.strip()}"


def test_the_probe_would_notice_a_ui_import() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(module="textual.app")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "textual" in done.stdout


def test_core_list_covers_the_engine() -> None:
    for name in (
        "engine.runtime_api",
        "engine.environment",
        "engine.function",
        "invoke_api",
        "engine.procs",
        "config.sam",
        "reload.reloader",
        "history.store",
    ):
        assert f"workbench.core.{name}" in CORE_MODULES
