"""A Python function imports what it would in Lambda: its code, its layers and the runtime's
boto3, never workbench's own packages; it runs on the interpreter its runtime names."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, ROOT
from tests.rt_helpers import cli
from workbench.core.runtimes import interpreters, isolation

WORKBENCH_PACKAGES = ("textual", "rich", "yaml", "watchfiles", "dotenv", "workbench")


def exact(runtime: str) -> interpreters.Choice:
    interpreters.clear_cache()
    choice = interpreters.choose(runtime)
    if not choice.exact:
        pytest.skip(f"no interpreter for {runtime} on this machine")
    return choice


def init_start_version(stderr: str) -> str:
    found = re.search(r"INIT_START Runtime Version: (\S+)\t", stderr)
    assert found, stderr
    return found.group(1)


@pytest.mark.parametrize("minor", [12, 9])
def test_a_python_runtime_runs_on_its_version_without_workbench_packages(minor: int) -> None:
    choice = exact(f"python3.{minor}")
    run = cli(FIXTURES / "py-report", "--runtime", f"python3.{minor}", timeout=90)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["version"] == [3, minor]
    assert init_start_version(run.stderr) == f"python:3.{minor}.local"
    assert "warning" not in run.stderr
    for name in WORKBENCH_PACKAGES:
        assert out["imports"][name] is False, (name, out["path"])
    venv = Path(sys.prefix).resolve()
    for entry in out["path"]:
        real = Path(entry).resolve()
        assert not real.is_relative_to(venv), entry
        assert real == (FIXTURES / "py-report").resolve() or not real.is_relative_to(ROOT), entry
    # boto3 is there exactly when the rule finds a copy that suits this interpreter
    shipped = isolation.runtime_packages(choice.interpreter) is not None
    assert out["imports"]["boto3"] is shipped and out["imports"]["botocore"] is shipped


def test_the_runtime_packages_come_after_the_code_and_the_layers(tmp_path: Path) -> None:
    exact("python3.11")
    folder = tmp_path / "fn"
    shutil.copytree(FIXTURES / "py-report", folder)
    layer = tmp_path / "layer" / "python"
    layer.mkdir(parents=True)
    (folder / "workbench.toml").write_text('runtime = "python3.11"\nlayers = ["../layer"]\n')
    run = cli(folder, timeout=90)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    path = [str(Path(p).resolve()) for p in out["path"]]
    assert path[0] == str(folder.resolve())
    assert str(layer.resolve()) in path
    if out["imports"]["boto3"]:  # the runtime's folder sits after the layer, before the stdlib
        runtime_dir = next(p for p in out["path"] if "python-runtime" in p)
        assert path.index(str(layer.resolve())) < out["path"].index(runtime_dir)
        assert out["path"].index(runtime_dir) < next(
            i for i, p in enumerate(out["path"]) if p.endswith(("python3.11", ".zip"))
        )


def test_a_venv_interpreter_is_replaced_by_its_base() -> None:
    if sys.prefix == sys.base_prefix:
        pytest.skip("the tests do not run in a virtual environment")
    base = isolation.base_interpreter(sys.executable)
    assert base != sys.executable
    assert not (Path(base).parent.parent / "pyvenv.cfg").exists()


def test_awslambdaric_on_another_python_is_an_error_that_names_the_fix() -> None:
    other = next(
        (m for m in (12, 13, 10, 9) if m != sys.version_info.minor),
        None,
    )
    choice = exact(f"python3.{other}")
    if isolation.ric_installed(choice.interpreter):
        pytest.skip("awslambdaric is installed for that interpreter too")
    run = cli(
        FIXTURES / "py-report",
        "--runtime",
        f"python3.{other}",
        "--runtime-client",
        "awslambdaric",
    )
    assert run.returncode != 0
    assert f"awslambdaric is not installed for Python 3.{other}" in run.stderr
    assert "-m pip install awslambdaric" in run.stderr
    assert "INIT_START" not in run.stderr  # refused before anything starts


def test_node_path_holds_nothing_of_workbench() -> None:
    run = cli(FIXTURES / "node-report", timeout=60)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    for entry in filter(None, out["nodePath"].split(":")):
        assert not Path(entry).resolve().is_relative_to(ROOT), entry
