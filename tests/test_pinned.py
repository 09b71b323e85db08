"""Regression on save (issue 6): pinned saved events run again after every successful reload,
judged like `replay --check`, their verdicts on the bus; and `events pin` / `unpin` / `saved`,
and `serve --watch` printing them, as a user runs them."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from tests.conftest import FIXTURES, StartServer, lambda_client, run_workbench
from tests.test_history import set_greeting
from tests.test_reload import Events, in_loop
from workbench.core.bus import Bus, PinnedCheckFinished, ReloadFinished
from workbench.core.checks.pinned import PinnedChecks
from workbench.core.config.resolve import resolve_functions
from workbench.core.history.recorder import attach, open_stores_for
from workbench.core.history.store import STORE_DIR, HistoryStore
from workbench.core.reload.reloader import Reloader
from workbench.core.saved_events import store as saved_events


def pinned_fn(tmp_path: Path) -> Path:
    """hist-echo with alice (pinned, checked against history), bob (pinned, its expected
    response in its sidecar) and carol (saved, not pinned)."""
    folder = tmp_path / "hist-echo"
    shutil.copytree(
        FIXTURES / "hist-echo", folder, ignore=shutil.ignore_patterns("__pycache__", STORE_DIR)
    )
    events = folder / "events"
    saved_events.save_event(events, "carol", {"name": "carol"})
    assert saved_events.load_meta(events, "alice") == {}
    assert saved_events.load_meta(events, "bob")["expected"]["greeting"] == "hello"
    saved_events.pin_event(events, "alice")
    saved_events.pin_event(events, "bob")
    return folder


@asynccontextmanager
async def checking(folder: Path) -> AsyncIterator[tuple[Reloader, Events, PinnedChecks]]:
    cfg = resolve_functions([folder])[0].config
    bus = Bus()
    events = Events(bus)
    stores = open_stores_for([cfg])
    recorder = attach(bus, stores)
    reloader = Reloader(cfg, bus)
    checks = PinnedChecks(bus, {cfg.name: reloader}, recorder=recorder)
    try:
        assert (await reloader.start()).ok
        yield reloader, events, checks
    finally:
        await checks.close()
        await reloader.close()
        recorder.detach()
        stores.close()


async def save_and_check(
    events: Events, checks: PinnedChecks, folder: Path, greeting: str
) -> dict[str, PinnedCheckFinished]:
    n = len(events.items)
    set_greeting(folder, greeting)
    done = await events.wait(ReloadFinished, since=n)
    assert done.ok, done.error
    await events.wait(PinnedCheckFinished, since=n, where=lambda e: e.event_name == "bob")
    await checks.idle()
    found = events.of(PinnedCheckFinished, since=n)
    assert [e.event_name for e in found] == ["alice", "bob"]  # in order; carol is not pinned
    return {e.event_name: e for e in found}


@in_loop
async def test_pinned_events_are_checked_after_each_reload(tmp_path: Path) -> None:
    folder = pinned_fn(tmp_path)
    async with checking(folder) as (_, events, checks):
        first = await save_and_check(events, checks, folder, "hello")  # same answers
        assert (first["alice"].ok, first["alice"].status) == (True, "new")  # no history yet
        assert (first["bob"].ok, first["bob"].status) == (True, "pass")
        assert ".meta/bob.json" in first["bob"].detail and first["bob"].diff is None

        changed = await save_and_check(events, checks, folder, "howdy")
        for name in ("alice", "bob"):
            assert (changed[name].ok, changed[name].status) == (False, "diff")
            diff = changed[name].diff or ""
            assert '-  "greeting": "hello"' in diff and '+  "greeting": "howdy"' in diff
        assert "history #" in changed["alice"].detail  # the run after the first save

        back = await save_and_check(events, checks, folder, "hello")
        # alice passes again: the run found different was marked and is no baseline
        assert [(back[n].ok, back[n].status) for n in ("alice", "bob")] == [
            (True, "pass"),
            (True, "pass"),
        ]

    with HistoryStore(folder) as store:
        runs = [(e.event_name, e.source, e.check_result) for e in reversed(store.last(10))]
    assert runs == [
        ("alice", "pinned", "new"),
        ("bob", "pinned", "pass"),
        ("alice", "pinned", "diff"),
        ("bob", "pinned", "diff"),
        ("alice", "pinned", "pass"),
        ("bob", "pinned", "pass"),
    ]


@in_loop
async def test_a_broken_pinned_event_is_an_error_verdict_not_a_crash(tmp_path: Path) -> None:
    folder = pinned_fn(tmp_path)
    (folder / "events" / "alice.json").write_text("{not json")
    async with checking(folder) as (_, events, checks):
        found = await save_and_check(events, checks, folder, "hello")
        alice = found["alice"]
        assert (alice.ok, alice.status, alice.request_id) == (False, "error", "")
        assert "InvalidRequestContentException" in alice.detail
        assert found["bob"].status == "pass"


@in_loop
async def test_a_failed_reload_runs_no_checks(tmp_path: Path) -> None:
    folder = pinned_fn(tmp_path)
    async with checking(folder) as (_, events, checks):
        n = len(events.items)
        (folder / "app.py").write_text("def handler(event, context)\n    return 1\n")
        failed = await events.wait(ReloadFinished, since=n)
        assert not failed.ok
        await checks.idle()
        assert events.of(PinnedCheckFinished, since=n) == []


def test_events_pin_unpin_and_saved(tmp_path: Path) -> None:
    folder = tmp_path / "hist-echo"
    shutil.copytree(
        FIXTURES / "hist-echo", folder, ignore=shutil.ignore_patterns("__pycache__", STORE_DIR)
    )
    pinned = run_workbench("events", "pin", str(folder), "alice")
    assert pinned.returncode == 0, pinned.stderr
    assert "alice pinned" in pinned.stderr.decode()
    assert saved_events.load_meta(folder / "events", "alice") == {"pinned": True}
    assert json.loads((folder / "events" / "alice.json").read_text())["name"] == "alice"
    listed = run_workbench("events", "saved", str(folder)).stdout.decode().splitlines()
    assert listed == ["alice  [pinned]", "bob"]
    missing = run_workbench("events", "pin", str(folder), "zed")
    assert missing.returncode == 2 and "no saved event 'zed'" in missing.stderr.decode()
    assert run_workbench("events", "unpin", str(folder), "alice").returncode == 0
    assert saved_events.load_meta(folder / "events", "alice") == {}  # the sidecar went
    assert saved_events.list_pinned(folder / "events") == []


def test_serve_watch_prints_each_pinned_check_and_its_diff(
    serve: StartServer, tmp_path: Path
) -> None:
    folder = pinned_fn(tmp_path)
    (folder / "workbench.toml").write_text("concurrency = 2\n")
    server = serve(str(folder), "--port", "0", "--watch", "-q")
    assert not any("not honoured" in line for line in server.lines)
    set_greeting(folder, "howdy")
    server.wait_for_line(r"reloaded hist-echo")
    server.wait_for_line(r"pinned hist-echo/alice: new \(nothing to compare with yet")
    line = server.wait_for_line(r"pinned hist-echo/bob: ")
    assert 'DIFF (differs from "expected" in' in line and "bob.json" in line
    server.wait_for_line(r'^\+  "greeting": "howdy"')
    client = lambda_client(server.url)
    answer = client.invoke(FunctionName="hist-echo", Payload=b'{"name": "x"}')
    assert json.loads(answer["Payload"].read())["greeting"] == "howdy"
