"""Live reload (issue 4): real watchers on real temporary folders, real builds, real runtimes.

Synchronisation is on the bus's events (or a bounded poll of a condition), never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import re
import shutil
import signal
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLES, FIXTURES, builds_go, lambda_client, processes_with_env
from workbench.core.bus import (
    BuildFinished,
    BuildStarted,
    Bus,
    ChangeDetected,
    InvocationStarted,
    LogLine,
    ReloadFinished,
)
from workbench.core.config.function import FunctionConfig, detect, local_node_runtime
from workbench.core.engine.payloads import ServiceError
from workbench.core.record import InvocationRecord, InvokeRequest
from workbench.core.reload.reloader import Reloader
from workbench.core.reload.watcher import Watcher, WatchFilter

PY_APP = """import time
VERSION = {version!r}
def handler(event, context):
    time.sleep(event.get("sleep", 0))
    return {{"version": VERSION}}
"""
NODE_APP = """export const handler = async (event) => {{
  if (event.sleep) await new Promise((r) => setTimeout(r, event.sleep * 1000));
  return {{ version: {version!r} }};
}};
"""
RELOADED = re.compile(r"reloaded hello-python in \d+ ms \(app.py changed; init \d+ ms\)")
GO_BROKEN = "\nfunc broken() { undefinedName() }\n"


def go_source(version: str) -> str:
    src = (FIXTURES / "rt-go" / "main.go").read_text()
    return src.replace('"pid": os.Getpid(),', '"version": version, "pid": os.Getpid(),') + (
        f'\nconst version = "{version}"\n'
    )


def in_loop(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test body in a fresh event loop (as the rest of the suite does)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


class Events:
    """The bus as a list, with a wait on a condition."""

    def __init__(self, bus: Bus) -> None:
        self.items: list[Any] = []
        self._new = asyncio.Event()
        bus.subscribe(self._on)

    def _on(self, event: Any) -> None:
        self.items.append(event)
        self._new.set()

    def of(self, kind: type, since: int = 0) -> list[Any]:
        return [e for e in self.items[since:] if isinstance(e, kind)]

    async def wait(
        self, kind: type, since: int = 0, where: Callable[[Any], bool] = bool, timeout: float = 90
    ) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            found = [e for e in self.of(kind, since) if where(e)]
            if found:
                return found[0]
            self._new.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                names = [type(e).__name__ for e in self.items[since:]]
                raise AssertionError(f"no {kind.__name__} event; saw {names}")
            try:
                await asyncio.wait_for(self._new.wait(), left)
            except TimeoutError:
                pass


@asynccontextmanager
async def reloading(cfg: FunctionConfig) -> AsyncIterator[tuple[Reloader, Events]]:
    bus = Bus()
    events = Events(bus)
    reloader = Reloader(cfg, bus)
    try:
        built = await reloader.start()
        assert built.ok, built.output_tail
        yield reloader, events
    finally:
        await reloader.close()


async def answer(reloader: Reloader, event: dict[str, Any] | None = None) -> dict[str, Any]:
    record = await reloader.invoke(InvokeRequest(json.dumps(event or {}).encode()))
    assert record.status == "ok", record.result.payload
    return dict(json.loads(record.result.payload))


def version_of(record: InvocationRecord) -> str:
    return str(json.loads(record.result.payload)["version"])


def python_fn(tmp_path: Path, version: str = "v1", **env: str) -> FunctionConfig:
    folder = tmp_path / "py-fn"
    folder.mkdir()
    (folder / "app.py").write_text(PY_APP.format(version=version))
    return detect(folder).with_overrides(env=env or None)


def node_fn(tmp_path: Path, version: str = "v1") -> FunctionConfig:
    folder = tmp_path / "node-fn"
    folder.mkdir()
    (folder / "index.mjs").write_text(NODE_APP.format(version=version))
    return detect(folder)


def go_fn(tmp_path: Path, version: str = "v1") -> FunctionConfig:
    assert shutil.which("go"), "the Go toolchain is required (apt-get install golang-go)"
    folder = tmp_path / "go-fn"
    folder.mkdir()
    (folder / "go.mod").write_text("module example.com/gofn\n\ngo 1.19\n")
    (folder / "main.go").write_text(go_source(version))
    cfg = detect(folder)
    assert cfg.builder == "go"
    return cfg


# ---- the watcher ----


def test_the_filter_ignores_what_never_changes_the_function(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("*.log\nsecrets/\n")
    flt = WatchFilter(tmp_path, exclude=("docs/**",), outputs=("target",), events_dir="events")
    ignored = [
        ".git/index",
        ".workbench/build/bootstrap",
        "__pycache__/app.cpython-311.pyc",
        "pkg/__pycache__/m.pyc",
        "node_modules/.cache/x.json",
        "target/release/fn",
        "targetD52Y5A/CACHEDIR.TAG",  # cargo makes target/ by renaming such a folder
        ".app.py.swp",
        "app.py~",
        ".#app.py",
        "#app.py#",
        "4913",
        "debug.log",
        "secrets/key.txt",
        "docs/readme.md",
        ".gitignore",
        ".DS_Store",
        "events/order-created.json",
    ]
    kept = [
        "app.py",
        "pkg/m.py",
        "node_modules/dep/index.js",
        "Cargo.toml",
        "src/main.rs",
        "events/handlers.py",
        "src/events/x.json",
        "targets/list.py",  # a folder that only starts like one
    ]
    assert [p for p in ignored if flt.wanted(p)] == []
    assert [p for p in kept if not flt.wanted(p)] == []
    only_src = WatchFilter(tmp_path, include=("src/**",))
    assert only_src.wanted("src/main.rs") and not only_src.wanted("app.py")


@in_loop
async def test_a_real_watcher_reports_only_real_changes(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("*.log\n")
    (tmp_path / "app.py").write_text("A = 1\n")
    watcher = Watcher(WatchFilter(tmp_path))
    await watcher.start()
    try:
        changes = watcher.changes()
        (tmp_path / "__pycache__").mkdir()
        (tmp_path / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"x")
        (tmp_path / ".app.py.swp").write_bytes(b"x")
        (tmp_path / "run.log").write_text("x")
        (tmp_path / "app.py").write_text("A = 2\n")
        assert await asyncio.wait_for(anext(changes), 10) == {"app.py"}
        (tmp_path / "app.py").write_text("A = 2\n")  # saved again, same bytes: no change
        (tmp_path / "util.py").write_text("B = 1\n")
        assert await asyncio.wait_for(anext(changes), 10) == {"util.py"}
    finally:
        await watcher.stop()


# ---- Python and Node: no build, the next environment starts on the new files ----


@pytest.mark.parametrize("make", [python_fn, node_fn], ids=["python", "node"])
@in_loop
async def test_a_save_is_served_by_the_next_invoke_warm(
    tmp_path: Path, make: Callable[..., Any]
) -> None:
    cfg = make(tmp_path)
    source = next(p for p in cfg.code_dir.iterdir() if p.is_file())
    async with reloading(cfg) as (reloader, events):
        assert (await answer(reloader))["version"] == "v1"
        before = time.monotonic()
        source.write_text(source.read_text().replace("v1", "v2"))
        done = await events.wait(ReloadFinished)
        waited_ms = (time.monotonic() - before) * 1000
        assert done.ok and done.changed_paths == (source.name,)
        assert done.build_ms is None and done.init_ms > 0
        # from the save, not from some earlier moment (a file time may lag by a clock tick)
        assert 0 < done.save_to_ready_ms <= waited_ms + 50
        record = await reloader.invoke(InvokeRequest(b"{}"))
        assert version_of(record) == "v2"
        assert record.cold is False and record.init_ms is None  # initialised by the reload
        assert len(events.of(BuildStarted)) == 0


@in_loop
async def test_a_syntax_error_keeps_the_last_good_code_answering(tmp_path: Path) -> None:
    cfg = python_fn(tmp_path)
    app = cfg.code_dir / "app.py"
    async with reloading(cfg) as (reloader, events):
        assert (await answer(reloader))["version"] == "v1"
        app.write_text("def handler(event, context)\n    return 1\n")
        failed = await events.wait(ReloadFinished)
        assert not failed.ok and "Runtime.UserCodeSyntaxError" in failed.error
        assert (await answer(reloader))["version"] == "v1"  # the old environment still serves
        n = len(events.items)
        app.write_text(PY_APP.format(version="v3"))
        fixed = await events.wait(ReloadFinished, since=n)
        assert fixed.ok
        assert (await answer(reloader))["version"] == "v3"


@in_loop
async def test_an_invoke_in_flight_finishes_on_the_old_code(tmp_path: Path) -> None:
    cfg = python_fn(tmp_path)
    async with reloading(cfg) as (reloader, events):
        await answer(reloader)  # warm
        n = len(events.items)
        slow = reloader.start_invoke(InvokeRequest(b'{"sleep": 1.0}'))
        await events.wait(InvocationStarted, since=n)
        (cfg.code_dir / "app.py").write_text(PY_APP.format(version="v2"))
        done = await events.wait(ReloadFinished, since=n)
        assert done.ok and not slow.record.done()  # swapped while the old one still runs
        assert (await answer(reloader))["version"] == "v2"
        old = await slow.record
        assert old.status == "ok" and version_of(old) == "v1"


@in_loop
async def test_force_cold_starts_cold_on_the_same_code(tmp_path: Path) -> None:
    cfg = python_fn(tmp_path)
    async with reloading(cfg) as (reloader, _):
        first = await reloader.invoke(InvokeRequest(b"{}"))
        warm = await reloader.invoke(InvokeRequest(b"{}"))
        await reloader.force_cold()
        cold = await reloader.invoke(InvokeRequest(b"{}"))
        assert (first.cold, warm.cold, cold.cold) == (True, False, True)
        assert version_of(cold) == "v1" and cold.init_ms is not None


@pytest.mark.integration  # fifty runtimes started and stopped
@in_loop
async def test_fifty_reloads_leave_no_process_behind(tmp_path: Path) -> None:
    marker = f"WB_RELOAD_MARK={uuid.uuid4().hex}"
    key, value = marker.split("=")
    cfg = python_fn(tmp_path, **{key: value})
    app = cfg.code_dir / "app.py"
    async with reloading(cfg) as (reloader, events):
        for i in range(50):
            n = len(events.items)
            app.write_text(PY_APP.format(version=f"v{i}"))
            done = await events.wait(ReloadFinished, since=n)
            assert done.ok, done.error
            assert (await answer(reloader))["version"] == f"v{i}"
        await asyncio.sleep(0)
        deadline = time.monotonic() + 60  # the last retired environment is being reaped
        while len(processes_with_env(marker)) > 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert len(processes_with_env(marker)) == 1  # the current environment only
    assert processes_with_env(marker) == []


# ---- Go: built into .workbench/build/bootstrap, the last good build keeps serving ----


@builds_go
@in_loop
async def test_go_compile_error_keeps_the_last_good_build_then_recovers(tmp_path: Path) -> None:
    cfg = go_fn(tmp_path)
    main = cfg.code_dir / "main.go"
    async with reloading(cfg) as (reloader, events):
        assert (await answer(reloader))["version"] == "v1"
        n = len(events.items)
        main.write_text(go_source("v2") + GO_BROKEN)
        await events.wait(BuildStarted, since=n)
        waiting = reloader.start_invoke(InvokeRequest(b"{}"))  # arrives during the build
        built = await events.wait(BuildFinished, since=n)
        assert not built.ok and "undefined: undefinedName" in built.output_tail
        failed = await events.wait(ReloadFinished, since=n)
        assert not failed.ok and "build failed" in failed.error
        assert version_of(await waiting.record) == "v1"  # it waited, then the old one answered
        assert (await answer(reloader))["version"] == "v1"

        n = len(events.items)
        main.write_text(go_source("v3"))
        await events.wait(BuildStarted, since=n)
        waiting = reloader.start_invoke(InvokeRequest(b"{}"))
        fixed = await events.wait(ReloadFinished, since=n)
        assert fixed.ok and fixed.build_ms > 0 and fixed.init_ms > 0
        assert fixed.save_to_ready_ms >= fixed.build_ms
        record = await waiting.record
        assert version_of(record) == "v3" and record.cold is False


@builds_go
@in_loop
async def test_a_burst_of_twenty_saves_gives_one_rebuild(tmp_path: Path) -> None:
    cfg = go_fn(tmp_path)
    main = cfg.code_dir / "main.go"
    async with reloading(cfg) as (reloader, events):
        n = len(events.items)
        # a formatter, a save-all: twenty saves back to back. The watcher may cut them into
        # several change sets; none reaches the reloader before the last save (this loop does
        # not yield), and the 50 ms settle before a build lets the later sets cancel the first.
        for i in range(20):
            main.write_text(go_source(f"burst{i}"))
        done = await events.wait(ReloadFinished, since=n)
        assert done.ok and done.changed_paths == ("main.go",)
        assert (await answer(reloader))["version"] == "burst19"
        assert len(events.of(BuildStarted, n)) == 1
        assert len(events.of(ReloadFinished, n)) == 1
        assert len(events.of(ChangeDetected, n)) >= 1


@builds_go
@in_loop
async def test_a_first_build_that_fails_serves_nothing_until_a_save_fixes_it(
    tmp_path: Path,
) -> None:
    cfg = go_fn(tmp_path)
    main = cfg.code_dir / "main.go"
    main.write_text(go_source("v1") + GO_BROKEN)
    bus = Bus()
    events = Events(bus)
    reloader = Reloader(cfg, bus)
    try:
        built = await reloader.start()
        assert not built.ok and "undefinedName" in built.output_tail
        with pytest.raises(ServiceError) as refused:
            reloader.start_invoke(InvokeRequest(b"{}"))
        assert refused.value.code == "ResourceConflictException"
        main.write_text(go_source("v2"))
        assert (await events.wait(ReloadFinished)).ok
        assert (await answer(reloader))["version"] == "v2"
    finally:
        await reloader.close()


@in_loop
async def test_a_build_command_from_config_streams_its_output_and_reloads(tmp_path: Path) -> None:
    folder = tmp_path / "ts-like"
    folder.mkdir()
    (folder / "src.mjs").write_text(NODE_APP.format(version="v1"))
    script = "mkdir -p dist && cp src.mjs dist/index.mjs && echo built it"
    cfg = detect(folder, runtime=local_node_runtime(), handler="dist/index.handler")
    async with reloading(cfg.with_overrides(build=script)) as (reloader, events):
        build_lines = [e.text for e in events.of(LogLine) if e.stream == "build"]
        assert build_lines == [f"$ {script}", "built it"]
        assert (await answer(reloader))["version"] == "v1"
        n = len(events.items)
        (folder / "src.mjs").write_text(NODE_APP.format(version="v2"))
        done = await events.wait(ReloadFinished, since=n)
        assert done.ok and done.changed_paths == ("src.mjs",)  # dist/ is build output
        assert (await answer(reloader))["version"] == "v2"
        assert len(events.of(BuildStarted, n)) == 1 and len(events.of(ReloadFinished, n)) == 1


@pytest.mark.integration  # cargo
@pytest.mark.timeout(600)  # a cold cargo build on a loaded machine
@in_loop
async def test_rust_builds_with_cargo_and_reloads(tmp_path: Path) -> None:
    if shutil.which("cargo") is None:
        pytest.skip("cargo is not installed")
    folder = tmp_path / "rs-fn"
    shutil.copytree(FIXTURES / "rt-rust", folder)
    cfg = detect(folder)
    assert cfg.builder == "rust"
    async with reloading(cfg) as (reloader, events):
        assert (await answer(reloader))["version"] == "v1"
        main = folder / "src" / "main.rs"
        n = len(events.items)
        main.write_text(main.read_text().replace('"v1"', '"v2"'))
        done = await events.wait(ReloadFinished, since=n, timeout=300)
        assert done.ok and done.changed_paths == ("src/main.rs",), done
        assert (await answer(reloader))["version"] == "v2"
    assert (folder / ".workbench" / "build" / "bootstrap").is_file()


# ---- end to end: `workbench serve --watch` with boto3 ----


def test_serve_watch_reloads_and_loses_no_invoke(tmp_path: Path, serve: Any) -> None:
    folder = tmp_path / "hello-python"
    shutil.copytree(EXAMPLES / "hello-python", folder, ignore=shutil.ignore_patterns("__pycache__"))
    app = folder / "app.py"
    original = app.read_text()
    server = serve(str(folder), "--watch", "--port", "0", "-q")
    client = lambda_client(server.url)
    failures: list[str] = []
    bodies: list[str] = []
    stop = threading.Event()

    def keep_invoking() -> None:
        c = lambda_client(server.url)
        while not stop.is_set():
            r = c.invoke(FunctionName="hello-python", Payload=b'{"name": "loop"}')
            if r["StatusCode"] != 200 or "FunctionError" in r:
                failures.append(r["Payload"].read().decode())
            else:
                bodies.append(json.loads(r["Payload"].read())["body"])

    loop = threading.Thread(target=keep_invoking)
    loop.start()
    try:
        for i in range(5):
            seen = len(server.lines)
            app.write_text(original.replace("Hello,", f"Hello v{i},"))
            deadline = time.monotonic() + 60
            while not any(RELOADED.search(line) for line in server.lines[seen:]):
                assert time.monotonic() < deadline, "\n".join(server.lines)
                time.sleep(0.01)
            r = client.invoke(FunctionName="hello-python", Payload=b'{"name": "x"}')
            assert json.loads(r["Payload"].read())["body"] == json.dumps(
                {"message": f"Hello v{i}, x!"}
            )
        # the loop goes on until the last version has answered it too
        deadline = time.monotonic() + 60
        while not (len(bodies) > 10 and any("Hello v4, loop!" in b for b in bodies)):
            assert time.monotonic() < deadline, bodies[-3:]
            time.sleep(0.01)
    finally:
        stop.set()
        loop.join(30)
    assert failures == []
    assert len(bodies) > 10 and any("Hello v4, loop!" in b for b in bodies)

    def tail() -> str:
        r = client.invoke(FunctionName="hello-python", Payload=b"{}", LogType="Tail")
        return base64.b64decode(r["LogResult"]).decode()

    assert "Init Duration" not in tail()  # warm since the last reload
    server.proc.send_signal(signal.SIGUSR1)  # force a cold start, without any change
    deadline = time.monotonic() + 60
    while "Init Duration" not in tail():
        assert time.monotonic() < deadline, "SIGUSR1 did not force a cold start"
