"""A Python function's own dependencies: installed from its requirements.txt (or pyproject.toml)
for the interpreter it runs on, into its `.workbench/deps/`, again only when the requirements
change, on its path after its code; a failed install keeps the last good set; a `.venv` in the
folder is used as it is; a missing module's error says where dependencies go.

Packages come from wheels the tests write themselves (`--no-index --find-links`): pip is the
real one, the network is not needed."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from tests.rt_helpers import cli
from tests.test_reload import Events, answer, in_loop
from workbench.core.bus import Bus, ReloadFinished
from workbench.core.config.function import detect
from workbench.core.reload.reloader import Reloader

# pip and npm really run: not for the quick layer
pytestmark = pytest.mark.integration

APP = "import greet\n\n\ndef handler(event, context):\n    return {'greet': greet.VERSION}\n"


def write_wheel(folder: Path, version: str) -> None:
    """A minimal pure-Python wheel of a package `greet` that knows its own version."""
    folder.mkdir(parents=True, exist_ok=True)
    info = f"greet-{version}.dist-info"
    with zipfile.ZipFile(folder / f"greet-{version}-py3-none-any.whl", "w") as whl:
        whl.writestr("greet/__init__.py", f"VERSION = {version!r}\n")
        whl.writestr(
            f"{info}/METADATA", f"Metadata-Version: 2.1\nName: greet\nVersion: {version}\n"
        )
        whl.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        whl.writestr(f"{info}/RECORD", f"greet/__init__.py,,\n{info}/METADATA,,\n{info}/RECORD,,\n")


def requirements(version: str) -> str:
    return f"--no-index\n--find-links wheels\ngreet=={version}\n"


def function(tmp_path: Path, versions: tuple[str, ...] = ("1.0",), wanted: str = "1.0") -> Path:
    folder = tmp_path / "needs-greet"
    folder.mkdir()
    (folder / "app.py").write_text(APP)
    for version in versions:
        write_wheel(folder / "wheels", version)
    (folder / "requirements.txt").write_text(requirements(wanted))
    return folder


def test_requirements_are_installed_once_and_importable(tmp_path: Path) -> None:
    folder = function(tmp_path)
    first = cli(folder, "--handler", "app.handler", event=b"{}")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {"greet": "1.0"}
    assert "installing requirements.txt for" in first.stderr
    assert "Successfully installed greet-1.0" in first.stderr
    key = (folder / ".workbench" / "deps" / "current").read_text().strip()
    assert (folder / ".workbench" / "deps" / key / "greet" / "__init__.py").is_file()
    assert not (folder / "greet").exists()  # the code folder itself stays as it was
    again = cli(folder, "--handler", "app.handler", event=b"{}")
    assert again.returncode == 0 and json.loads(again.stdout) == {"greet": "1.0"}
    assert "installing" not in again.stderr  # nothing changed: nothing installed


def test_pyproject_dependencies_are_installed(tmp_path: Path) -> None:
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / "app.py").write_text(APP)
    write_wheel(tmp_path / "wheels", "3.1")
    (folder / "pyproject.toml").write_text(
        f'[project]\nname = "proj"\nversion = "0"\ndependencies = ["greet @ {(tmp_path / "wheels" / "greet-3.1-py3-none-any.whl").as_uri()}"]\n'
    )
    done = cli(folder, "--handler", "app.handler", event=b"{}")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"greet": "3.1"}
    assert "installing pyproject.toml for" in done.stderr


def test_a_venv_in_the_folder_is_used_as_it_is(tmp_path: Path) -> None:
    folder = tmp_path / "has-venv"
    site = folder / ".venv" / "lib" / "python3.11" / "site-packages" / "greet"
    site.mkdir(parents=True)
    (site / "__init__.py").write_text("VERSION = 'from-venv'\n")
    (folder / "app.py").write_text(APP)
    (folder / "requirements.txt").write_text("this-would-not-install==0\n")
    done = cli(folder, "--handler", "app.handler", event=b"{}")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"greet": "from-venv"}
    assert "installing" not in done.stderr and not (folder / ".workbench" / "deps").exists()


def test_a_missing_module_says_where_dependencies_go(tmp_path: Path) -> None:
    folder = tmp_path / "no-deps"
    folder.mkdir()
    (folder / "app.py").write_text(APP)
    done = cli(folder, "--handler", "app.handler", event=b"{}")
    assert done.returncode == 1
    doc = json.loads(done.stdout)  # the error itself is the service's, unchanged
    assert doc["errorType"] == "Runtime.ImportModuleError"
    assert doc["errorMessage"] == "Unable to import module 'app': No module named 'greet'"
    assert "hint: greet is not installed for no-deps: list it in a requirements.txt" in done.stderr


@in_loop
async def test_an_edited_requirement_reinstalls_and_a_bad_one_keeps_the_last_good(
    tmp_path: Path,
) -> None:
    folder = function(tmp_path, versions=("1.0", "2.0"))
    bus = Bus()
    events = Events(bus)
    reloader = Reloader(detect(folder), bus)
    try:
        assert (await reloader.start()).ok
        assert await answer(reloader) == {"greet": "1.0"}
        since = len(events.items)
        (folder / "requirements.txt").write_text(requirements("2.0"))
        done = await events.wait(ReloadFinished, since)
        assert done.ok and done.build_ms is not None  # the install is the reload's build step
        assert await answer(reloader) == {"greet": "2.0"}
        since = len(events.items)
        (folder / "requirements.txt").write_text(requirements("9.9"))  # no such wheel
        failed = await events.wait(ReloadFinished, since)
        assert not failed.ok
        assert await answer(reloader) == {"greet": "2.0"}  # the last good set still serves
    finally:
        await reloader.close()


def node_function(tmp_path: Path, version: str) -> Path:
    folder = tmp_path / "node-needs-greet"
    package = folder / "pkgs" / "greet"
    package.mkdir(parents=True)
    (package / "package.json").write_text('{"name": "greet", "version": "1.0.0"}')
    (package / "index.js").write_text(f"module.exports = {{ VERSION: {version!r} }};\n")
    (folder / "package.json").write_text(
        '{"name": "fn", "version": "1.0.0", "dependencies": {"greet": "file:./pkgs/greet"}}'
    )
    (folder / "index.js").write_text(
        'const greet = require("greet");\nexports.handler = async () => ({ greet: greet.VERSION });\n'
    )
    return folder


def test_a_node_package_gets_npm_install_when_it_has_no_node_modules(tmp_path: Path) -> None:
    folder = node_function(tmp_path, "n1")
    first = cli(folder, event=b"{}")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {"greet": "n1"}
    assert "running npm install for node-needs-greet" in first.stderr
    assert (folder / "node_modules").exists() and (folder / "package-lock.json").is_file()
    again = cli(folder, event=b"{}")
    assert again.returncode == 0 and "running npm" not in again.stderr
    # with the lock file npm wrote, a changed package.json means `npm ci`
    (folder / "package.json").write_text(
        '{"name": "fn", "version": "1.0.1", "dependencies": {"greet": "file:./pkgs/greet"}}'
    )
    changed = cli(folder, event=b"{}")
    assert changed.returncode == 0, changed.stderr
    assert "running npm ci for node-needs-greet" in changed.stderr


def test_a_node_modules_of_the_developers_own_is_left_alone(tmp_path: Path) -> None:
    folder = node_function(tmp_path, "n1")
    own = folder / "node_modules" / "greet"
    own.mkdir(parents=True)
    (own / "index.js").write_text("module.exports = { VERSION: 'hand-made' };\n")
    done = cli(folder, event=b"{}")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"greet": "hand-made"}
    assert "running npm" not in done.stderr
