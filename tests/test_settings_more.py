"""Settings that choose how a function is built (`builder`) and how much history it keeps
(`history_max_records`, `history_max_mb`): validated like every key, shown by doctor with
where they came from, and honoured by real builds, real invokes and the real history store."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, builds_go, run_workbench
from workbench.core.bus import Bus
from workbench.core.config.function import ConfigError, FunctionConfig
from workbench.core.config.resolve import resolve_functions
from workbench.core.engine.function import Function
from workbench.core.history.recorder import attach, open_stores_for
from workbench.core.history.store import DB_NAME, STORE_DIR, HistoryStore
from workbench.core.record import InvokeRequest
from workbench.core.reload.builders import builder_for

SHELL_ECHO = (FIXTURES / "rt-shell-echo" / "bootstrap").read_text()


def ts_folder(tmp_path: Path) -> Path:
    """A TypeScript-looking Node function: detection alone would build it with npm."""
    folder = tmp_path / "ts-fn"
    folder.mkdir()
    (folder / "tsconfig.json").write_text("{}\n")
    (folder / "package.json").write_text(json.dumps({"scripts": {"build": "tsc"}}))
    (folder / "index.mjs").write_text("export const handler = async () => ({ok: true});\n")
    return folder


def one(folder: Path) -> tuple[FunctionConfig, dict[str, str]]:
    fn = resolve_functions([folder])[0]
    return fn.config, dict(fn.sources)


# ---- builder ----


def test_builder_none_stops_a_typescript_build_and_doctor_says_why(tmp_path: Path) -> None:
    folder = ts_folder(tmp_path)
    cfg, _ = one(folder)
    assert builder_for(cfg).kind == "command"  # what detection alone would do
    (folder / "workbench.toml").write_text('builder = "none"\n')
    cfg, sources = one(folder)
    assert cfg.builder == "none"
    assert sources["builder"].endswith("workbench.toml: builder")
    built = builder_for(cfg)
    assert (built.kind, built.needed) == ("none", False)
    done = run_workbench("doctor", str(folder))
    lines = done.stdout.decode().splitlines()
    line = next(line for line in lines if line.strip().startswith("builder ="))
    assert line.strip().startswith("builder = none (") and "workbench.toml: builder)" in line


def test_builder_in_pyproject_names_its_table(tmp_path: Path) -> None:
    folder = ts_folder(tmp_path)
    (folder / "pyproject.toml").write_text('[tool.workbench]\nbuilder = "none"\n')
    cfg, sources = one(folder)
    assert cfg.builder == "none"
    assert sources["builder"].endswith("pyproject.toml: tool.workbench.builder")


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            'builder = "rustc"',
            '"builder" must be one of none, go, rust, command (did you mean "rust"?); got "rustc"',
        ),
        ('builder = "command"', '"builder" is "command" but no "build" command is set'),
        ('builder = "none"\nbuild = "make"', '"builder" is "none" but "build" is set too'),
        ('buildr = "go"', 'unknown key "buildr"; did you mean "builder"?'),
    ],
)
def test_bad_builder_settings_name_the_file_and_the_key(
    tmp_path: Path, toml: str, message: str
) -> None:
    folder = ts_folder(tmp_path)
    (folder / "workbench.toml").write_text(toml + "\n")
    with pytest.raises(ConfigError) as caught:
        resolve_functions([folder])
    assert "workbench.toml: " + message in str(caught.value)


def test_a_compiled_builder_cannot_run_a_python_runtime(tmp_path: Path) -> None:
    folder = tmp_path / "py"
    folder.mkdir()
    (folder / "app.py").write_text("def handler(e, c):\n    return 1\n")
    (folder / "workbench.toml").write_text('builder = "go"\nruntime = "python3.12"\n')
    with pytest.raises(ConfigError) as caught:
        resolve_functions([folder])
    assert "builder go (" in str(caught.value) and "workbench.toml: builder" in str(caught.value)
    assert "runs python3.12" in str(caught.value)


def test_builder_command_builds_the_bootstrap_it_then_runs(tmp_path: Path) -> None:
    """No bootstrap yet: detection alone refuses the folder; the build command makes one."""
    folder = tmp_path / "shell-fn"
    (folder / "src").mkdir(parents=True)
    (folder / "src" / "bootstrap.sh").write_text(SHELL_ECHO)
    with pytest.raises(ConfigError, match="needs an executable bootstrap"):
        resolve_functions([folder], overrides={"runtime": "provided.al2023"})
    (folder / "workbench.toml").write_text(
        'runtime = "provided.al2023"\nbuilder = "command"\n'
        'build = "cp src/bootstrap.sh bootstrap && chmod +x bootstrap"\n'
    )
    done = run_workbench("invoke", str(folder), "-e", "-", stdin=b'{"n": 7}')
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout)["echo"] == {"n": 7}
    assert "$ cp src/bootstrap.sh bootstrap" in done.stderr.decode()


@pytest.mark.skipif(shutil.which("go") is None, reason="needs Go")
@builds_go
def test_builder_go_wins_over_a_bootstrap_in_the_folder(tmp_path: Path) -> None:
    """Detection runs a bootstrap that is already there; `builder = "go"` builds instead."""
    (tmp_path / "go.mod").write_text("module example.com/fn\n\ngo 1.19\n")
    (tmp_path / "main.go").write_text((FIXTURES / "rt-go" / "main.go").read_text())
    (tmp_path / "bootstrap").write_text("#!/bin/sh\necho stale bootstrap >&2\nexit 3\n")
    (tmp_path / "bootstrap").chmod(0o755)
    cfg, _ = one(tmp_path)
    assert cfg.builder is None
    (tmp_path / "workbench.toml").write_text('builder = "go"\n')
    cfg, sources = one(tmp_path)
    assert (cfg.builder, cfg.runtime) == ("go", "provided.al2023")
    assert sources["builder"].endswith("workbench.toml: builder")
    done = run_workbench("invoke", str(tmp_path), "-e", "-", stdin=b'{"hi": 1}', timeout=180)
    assert done.returncode == 0, done.stderr.decode()
    assert "go build -tags lambda.norpc" in done.stderr.decode()
    assert "stale bootstrap" not in done.stderr.decode()


# ---- history size ----


def hist_echo(tmp_path: Path, toml: str) -> Path:
    folder = tmp_path / "hist-echo"
    shutil.copytree(
        FIXTURES / "hist-echo", folder, ignore=shutil.ignore_patterns("__pycache__", STORE_DIR)
    )
    (folder / "workbench.toml").write_text(toml)
    return folder


def recorded(folder: Path) -> list[tuple[str | None, str]]:
    """(event name, source) of every record kept, oldest first."""
    with HistoryStore(folder) as store:
        return [(e.event_name, e.source) for e in reversed(store.last(100))]


def test_history_max_records_prunes_invoke_and_replay_oldest_first(tmp_path: Path) -> None:
    folder = hist_echo(tmp_path, "history_max_records = 3\n")
    cfg, sources = one(folder)
    assert cfg.history_max_records == 3
    assert sources["history_max_records"].endswith("workbench.toml: history_max_records")
    for name in ("one", "two", "three", "four"):
        event = tmp_path / f"{name}.json"
        event.write_text(json.dumps({"name": name}))
        done = run_workbench("invoke", str(folder), "-e", str(event), "-q")
        assert done.returncode == 0, done.stderr.decode()
    assert recorded(folder) == [("two", "cli"), ("three", "cli"), ("four", "cli")]
    done = run_workbench("replay", str(folder), "alice", "bob")
    assert done.returncode == 0, done.stderr.decode()
    assert recorded(folder) == [("four", "cli"), ("alice", "replay"), ("bob", "replay")]


def test_history_max_mb_prunes_by_size_through_the_engine(tmp_path: Path) -> None:
    folder = hist_echo(tmp_path, "history_max_mb = 1\n")
    cfg, _ = one(folder)
    pad = "x" * 300_000  # each record holds the event and a log line: about 0.3 MB

    async def body() -> list[int]:
        bus = Bus()
        stores = open_stores_for([cfg])
        recorder = attach(bus, stores)
        fn = Function(cfg, bus)
        try:
            for n in range(6):
                record = await fn.invoke(InvokeRequest(json.dumps({"n": n, "pad": pad}).encode()))
                assert record.status == "ok", record.result.payload
            recorder.flush()
        finally:
            await fn.close()
            recorder.detach()
            stores.close()
        with HistoryStore(folder) as store:
            return [json.loads(e.event)["n"] for e in reversed(store.last(100))]

    kept = asyncio.run(body())
    assert kept and kept == list(range(6 - len(kept), 6))  # the newest, in order
    assert len(kept) <= 3  # 1 MB holds three of them at most
    assert (folder / STORE_DIR / DB_NAME).is_file()


def test_history_bounds_follow_a_changed_configuration(tmp_path: Path) -> None:
    """Live reload hands Stores the new configuration: the next record prunes to it."""
    folder = hist_echo(tmp_path, "")
    cfg, _ = one(folder)

    async def body() -> int:
        bus = Bus()
        stores = open_stores_for([cfg])
        recorder = attach(bus, stores)
        fn = Function(cfg, bus)
        try:
            for _ in range(4):
                await fn.invoke(InvokeRequest(b"{}"))
            recorder.flush()
            stores.update(cfg.with_overrides(history_max_records=2))
            await fn.invoke(InvokeRequest(b"{}"))
            recorder.flush()
        finally:
            await fn.close()
            recorder.detach()
            stores.close()
        with HistoryStore(folder) as store:
            return store.count()

    assert asyncio.run(body()) == 2


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            "history_max_records = 0",
            '"history_max_records" must be a whole number of records from 1 to 10000000; got 0',
        ),
        (
            "history_max_mb = 0.5",
            '"history_max_mb" must be a whole number of MB from 1 to 1000000; got 0.5',
        ),
        (
            "history_max_record = 10",
            'unknown key "history_max_record"; did you mean "history_max_records"?',
        ),
    ],
)
def test_bad_history_settings(tmp_path: Path, toml: str, message: str) -> None:
    folder = hist_echo(tmp_path, toml + "\n")
    with pytest.raises(ConfigError) as caught:
        resolve_functions([folder])
    assert "workbench.toml: " + message in str(caught.value)
