"""Each runtime runs on an interpreter found here: the configured one, PATH, the version managers,
or the nearest with a warning; nodejs24.x refuses callback handlers as Lambda does."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, run_workbench
from tests.rt_helpers import cli
from workbench.core.config.function import ConfigError
from workbench.core.runtimes import interpreters

PYENV = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"


def init_start_version(stderr: str) -> str:
    found = re.search(r"INIT_START Runtime Version: (\S+)\t", stderr)
    assert found, stderr
    return found.group(1)


def real_python(minor: int) -> Path:
    """A real interpreter of 3.minor, or skip."""
    interpreters.clear_cache()
    choice = interpreters.choose(f"python3.{minor}")
    if not choice.exact:
        pytest.skip(f"no Python 3.{minor} on this machine")
    return Path(choice.interpreter.path)


@pytest.fixture
def fresh() -> Iterator[None]:
    interpreters.clear_cache()
    yield
    interpreters.clear_cache()


# ---- the nearest interpreter, when none matches ----


def test_a_runtime_with_no_interpreter_runs_on_the_nearest_and_says_so() -> None:
    interpreters.clear_cache()
    choice = interpreters.choose("python3.14")
    if choice.exact:
        pytest.skip("Python 3.14 is installed here")
    nearest = choice.interpreter.release
    run = cli(FIXTURES / "py-report", "--runtime", "python3.14", timeout=90)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["version"] == [3, choice.interpreter.number]
    assert init_start_version(run.stderr) == f"python:{nearest}.local"
    warnings = [line for line in run.stderr.splitlines() if line.startswith("workbench: warning")]
    assert len(warnings) == 1
    assert "no Python 3.14 found" in warnings[0] and f"Python {nearest}" in warnings[0]

    doctor = run_workbench("doctor", str(FIXTURES / "py-report"), "--runtime", "python3.14")
    text = doctor.stdout.decode()
    assert f"runs on: Python {nearest}" in text
    assert "warning: python3.14: no Python 3.14 found" in text


def test_the_nearest_is_the_closest_version_and_the_newer_on_a_tie(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh: None
) -> None:
    python = real_python(sys.version_info.minor)
    for version in ("3.10.4", "3.12.2"):
        bin_dir = tmp_path / "pyenv" / "versions" / version / "bin"
        bin_dir.mkdir(parents=True)
        (bin_dir / "python3").symlink_to(python)
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "pyenv"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setenv("UV_PYTHON_INSTALL_DIR", str(tmp_path / "no-uv"))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "pyenv" / "versions" / "3.12.2"))
    own = sys.version_info.minor
    chosen = interpreters.choose("python3.11").interpreter
    # 3.10 and 3.12 are both one away (and workbench's own may be 3.11 itself)
    assert chosen.number == (11 if own == 11 else 12)
    assert interpreters.choose("python3.9").interpreter.number == min(10, own)


# ---- discovery ----


def test_a_configured_python_wins_and_a_mismatch_is_said(tmp_path: Path, fresh: None) -> None:
    python = real_python(12)
    folder = tmp_path / "fn"
    shutil.copytree(FIXTURES / "py-report", folder)
    (folder / "workbench.toml").write_text(f'runtime = "python3.13"\npython = "{python}"\n')
    run = cli(folder, timeout=90)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["version"] == [3, 12]
    assert init_start_version(run.stderr) == "python:3.12.local"
    assert "the configured python" in run.stderr and "is Python 3.12, not Python 3.13" in run.stderr


def test_a_configured_python_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "fn"
    shutil.copytree(FIXTURES / "py-report", folder)
    (folder / "workbench.toml").write_text('python = "no-such-python3.99"\n')
    run = cli(folder)
    assert run.returncode != 0
    assert "python = 'no-such-python3.99' is not an executable found here" in run.stderr


def test_uv_pythons_are_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh: None) -> None:
    python = real_python(12)
    bin_dir = tmp_path / "uv" / "cpython-3.12.9-linux-x86_64-gnu" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python3").symlink_to(python)
    free = tmp_path / "uv" / "cpython-3.12.9+freethreaded-linux-x86_64-gnu" / "bin"
    free.mkdir(parents=True)
    (free / "python3").symlink_to(python)
    env = {
        **os.environ,
        "PATH": "/usr/bin:/bin",
        "PYENV_ROOT": str(tmp_path / "no-pyenv"),
        "UV_PYTHON_INSTALL_DIR": str(tmp_path / "uv"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    choice = interpreters.choose("python3.12")
    assert choice.exact and choice.interpreter.source == "uv"
    assert choice.interpreter.path == str(bin_dir / "python3")
    run = cli(FIXTURES / "py-report", "--runtime", "python3.12", env=env, timeout=90)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["version"] == [3, 12]
    assert init_start_version(run.stderr) == "python:3.12.local"


@pytest.mark.parametrize(
    ("manager", "variable", "layout"),
    [
        ("nvm", "NVM_DIR", "versions/node/v22.3.0/bin/node"),
        ("fnm", "FNM_DIR", "node-versions/v22.3.0/installation/bin/node"),
        ("volta", "VOLTA_HOME", "tools/image/node/22.3.0/bin/node"),
    ],
)
def test_node_version_managers_are_found(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fresh: None,
    manager: str,
    variable: str,
    layout: str,
) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("no node on this machine")
    exe = tmp_path / manager / layout
    exe.parent.mkdir(parents=True)
    exe.symlink_to(node)
    for other in ("NVM_DIR", "FNM_DIR", "VOLTA_HOME"):
        monkeypatch.setenv(other, str(tmp_path / "none"))
    monkeypatch.setenv(variable, str(tmp_path / manager))
    choice = interpreters.choose("nodejs22.x")
    if choice.interpreter.source == "PATH":
        pytest.skip("the node on PATH is already Node.js 22")
    assert choice.exact and choice.interpreter.source == manager
    assert choice.interpreter.path == str(exe)


def test_discovery_is_cached_per_process(monkeypatch: pytest.MonkeyPatch, fresh: None) -> None:
    interpreters.choose("nodejs20.x")
    calls: list[object] = []
    monkeypatch.setattr("subprocess.run", lambda *a, **k: calls.append(a))
    for _ in range(3):
        interpreters.choose("nodejs20.x")
        interpreters.choose("python3.12")
    assert calls == []


def test_no_python_at_all_is_an_error_that_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh: None
) -> None:
    monkeypatch.setattr(interpreters, "_pythons", lambda: [])
    with pytest.raises(ConfigError, match=r"Install Python 3\.12"):
        interpreters.choose("python3.12")


# ---- nodejs24.x ----


def node_run(handler: str, runtime: str) -> tuple[int, dict[str, object], str]:
    run = cli(FIXTURES / "node-report", "--runtime", runtime, "--handler", handler, timeout=60)
    return run.returncode, json.loads(run.stdout), run.stderr


@pytest.mark.parametrize("handler", ["index.callback", "index.asyncThree"])
def test_nodejs24_refuses_a_callback_handler(handler: str) -> None:
    code, out, stderr = node_run(handler, "nodejs24.x")
    assert code != 0
    assert out["errorType"] == "Runtime.CallbackHandlerDeprecated"
    assert str(out["errorMessage"]).startswith(
        "ERROR: AWS Lambda has removed support for callback-based function handlers starting "
        "with Node.js 24."
    )
    assert "Runtime.CallbackHandlerDeprecated" in stderr


def test_nodejs24_has_no_context_succeed_but_runs_async_handlers() -> None:
    code, out, _ = node_run("index.handler", "nodejs24.x")
    assert code == 0 and out["executionEnv"] == "AWS_Lambda_nodejs24.x"
    code, out, _ = node_run("index.legacySucceed", "nodejs24.x")
    assert code != 0 and out["errorType"] == "TypeError"
    assert "context.succeed is not a function" in str(out["errorMessage"])


def test_nodejs22_still_takes_callbacks_on_the_nearest_node() -> None:
    interpreters.clear_cache()
    choice = interpreters.choose("nodejs22.x")
    code, out, stderr = node_run("index.callback", "nodejs22.x")
    assert code == 0 and out == {"via": "callback"}
    assert init_start_version(stderr) == f"nodejs:{choice.interpreter.release}.local"
    if not choice.exact:
        assert "warning: nodejs22.x: no Node.js 22 found" in stderr
    code, out, _ = node_run("index.legacySucceed", "nodejs22.x")
    assert code == 0 and out == {"via": "succeed"}


# ---- the nearest layer wins the runtime ----


def test_flags_and_settings_override_a_template_runtime(tmp_path: Path) -> None:
    real_python(12)
    folder = tmp_path / "sam"
    shutil.copytree(FIXTURES / "sam-runtime", folder)
    run = cli(folder, "--runtime", "python3.12", timeout=90)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == [3, 12]
    assert init_start_version(run.stderr) == "python:3.12.local"

    (folder / "src" / "workbench.toml").write_text('runtime = "python3.12"\n')
    run = cli(folder, timeout=90)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == [3, 12]


def test_a_template_runtime_workbench_does_not_know_is_replaced_by_a_flag(tmp_path: Path) -> None:
    folder = tmp_path / "sam"
    shutil.copytree(FIXTURES / "sam-runtime", folder)
    template = folder / "template.yaml"
    template.write_text(template.read_text().replace("python3.9", "java21"))
    refused = cli(folder)
    assert refused.returncode != 0 and "runtime java21 is not one workbench runs" in refused.stderr
    minor = sys.version_info.minor
    run = cli(folder, "--runtime", f"python3.{minor}", timeout=90)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == [3, minor]


def test_sam_hello_world_python314_is_accepted(tmp_path: Path) -> None:
    folder = tmp_path / "sam"
    shutil.copytree(FIXTURES / "sam-runtime", folder)
    template = folder / "template.yaml"
    template.write_text(template.read_text().replace("python3.9", "python3.14"))
    run = cli(folder, timeout=90)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)[0] == 3
    interpreters.clear_cache()
    if not interpreters.choose("python3.14").exact:
        assert "warning: python3.14" in run.stderr


# ---- what the TUI shows ----


def test_the_session_status_says_what_the_runtime_runs_on(fresh: None) -> None:
    import asyncio

    from workbench.core.config.function import detect
    from workbench.core.session import FunctionStatus, Session

    interpreters.clear_cache()
    nearest = interpreters.choose("python3.14")
    matched = interpreters.choose(f"python3.{sys.version_info.minor}")

    async def statuses() -> list[FunctionStatus]:
        cfgs = [
            detect(FIXTURES / "py-report", runtime="python3.14"),
            detect(FIXTURES / "sam-runtime" / "src", runtime=matched.runtime),
        ]
        session = Session(cfgs, watch=False, port=None, record=False, pinned=False)
        return [session.status(c.name) for c in cfgs]

    far, near = asyncio.run(statuses())
    assert far.runs_on == nearest.interpreter.shown
    assert (far.runtime_note is None) is nearest.exact
    assert near.runs_on == f"Python 3.{sys.version_info.minor}"
    assert near.runtime_note is None
