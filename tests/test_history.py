"""History and replay: the SQLite store, recording from the engine, kill -9 durability, and the
`history` and `replay` commands run as a user runs them."""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, ROOT, processes_with_env, run_workbench
from workbench.core.bus import Bus, InvocationFinished
from workbench.core.checks.compare import json_equal, response_diff
from workbench.core.config.resolve import resolve_functions
from workbench.core.engine.function import Function
from workbench.core.history.recorder import attach, open_stores_for
from workbench.core.history.store import (
    DB_NAME,
    SCHEMA_VERSION,
    STORE_DIR,
    HistoryError,
    HistoryStore,
    code_version,
    record_json,
)
from workbench.core.record import InvocationRecord, InvokeRequest, InvokeResult
from workbench.core.vocab import Status

BURST = Path(__file__).resolve().parent / "fixtures" / "history_burst.py"


def copy_fixture(tmp_path: Path, name: str = "hist-echo") -> Path:
    dest = tmp_path / name
    shutil.copytree(FIXTURES / name, dest, ignore=shutil.ignore_patterns("__pycache__", STORE_DIR))
    return dest


def set_greeting(folder: Path, greeting: str) -> None:
    app = folder / "app.py"
    text = app.read_text()
    start = text.index('GREETING = "') + len('GREETING = "')
    end = text.index('"', start)
    app.write_text(text[:start] + greeting + text[end:])


def make_record(
    n: int,
    *,
    function: str = "fn",
    payload: bytes = b'{"n": 1}',
    response: bytes = b'{"ok": true}',
    status: Status = "ok",
) -> InvocationRecord:
    rid = f"{n:08d}-{uuid.uuid4()}"[:36]
    return InvocationRecord(
        function=function,
        request_id=rid,
        request=InvokeRequest(
            payload, client_context='{"custom": {"a": "b"}}', trace_id="Root=1-abc", source="cli"
        ),
        result=InvokeResult(rid, response, function_error=status == "error"),
        status=status,
        cold=n == 0,
        started_at=1_700_000_000.0 + n,
        duration_ms=1.5 + n,
        billed_ms=2 + n,
        init_ms=80.25 if n == 0 else None,
        memory_mb=128,
        max_memory_mb=40,
        log_lines=[f"START RequestId: {rid}", "hello \x1b[31mred\x1b[0m", f"END RequestId: {rid}"],
        log_truncated=n % 2 == 1,
    )


def db_rows(folder: Path, sql: str) -> list[tuple[object, ...]]:
    """Read the database from another connection, as another process would."""
    conn = sqlite3.connect(folder / STORE_DIR / DB_NAME)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def replay(folder: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return run_workbench("replay", str(folder), *args)


def history(folder: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return run_workbench("history", str(folder), *args)


# ---- the store ----


def test_store_round_trip_with_every_field(tmp_path: Path) -> None:
    rec = make_record(0, response=b"\xff\x00 not json")
    with HistoryStore(tmp_path) as store:
        new_id = store.record(rec, event_name="alice", code_version="abc123")
        store.record(make_record(1, function="other"))
    with HistoryStore(tmp_path) as store:  # a new connection, as after a restart
        got = store.get(new_id)
        assert got is not None
        assert store.get(rec.request_id) == got
        assert store.get(rec.request_id[:13]) == got  # a unique prefix
        assert store.get("no-such-request") is None
        assert (got.request_id, got.function, got.source) == (rec.request_id, "fn", "cli")
        assert (got.event_name, got.code_version) == ("alice", "abc123")
        assert got.event == rec.request.payload and got.response == rec.result.payload
        # one shape in and out: the request and result come back whole
        assert got.request == rec.request and got.result == rec.result
        assert got.request.trace_id == "Root=1-abc"
        assert (got.status, got.cold, got.started_at) == ("ok", True, rec.started_at)
        assert (got.duration_ms, got.billed_ms, got.init_ms) == (1.5, 2, 80.25)
        assert (got.memory_mb, got.max_memory_mb) == (128, 40)
        assert got.log_lines == rec.log_lines and got.log_truncated is False
        assert got.function_error is False and got.error_type is None
        newest = store.last(10)
        assert [e.function for e in newest] == ["other", "fn"]
        assert [e.id for e in store.last(10, "fn")] == [new_id]
        doc = record_json(got)
        assert doc["event"] == {"n": 1} and "response" not in doc
        assert doc["response_base64"] == "/wAgbm90IGpzb24="
    ignore = tmp_path / STORE_DIR / ".gitignore"
    assert "*" in ignore.read_text().split()
    assert db_rows(tmp_path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert db_rows(tmp_path, "PRAGMA journal_mode") == [("wal",)]


def test_errors_are_recorded_with_their_type(tmp_path: Path) -> None:
    body = b'{"errorType": "ValueError", "errorMessage": "boom"}'
    with HistoryStore(tmp_path) as store:
        store.record(make_record(3, response=body, status="error"))
        (entry,) = store.last(1)
    assert entry.status == "error" and entry.function_error and entry.error_type == "ValueError"


def test_a_committed_record_is_in_the_wal_at_once_and_folded_in_on_close(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path)
    rec = make_record(0)
    store.record(rec)
    wal = tmp_path / STORE_DIR / f"{DB_NAME}-wal"
    assert wal.is_file() and wal.stat().st_size > 0
    # another connection sees it before this one closes (the WAL, not a cache, holds it)
    assert db_rows(tmp_path, "SELECT request_id FROM invocations") == [(rec.request_id,)]
    store.close()
    assert not wal.exists() or wal.stat().st_size == 0
    assert db_rows(tmp_path, "SELECT request_id FROM invocations") == [(rec.request_id,)]


def test_prune_keeps_the_newest(tmp_path: Path) -> None:
    with HistoryStore(tmp_path, max_records=5) as store:
        recs = [make_record(n) for n in range(12)]
        for rec in recs:
            store.record(rec)
        assert store.count() == 5  # bounded on every write, oldest first
        assert [e.request_id for e in store.last(100)] == [r.request_id for r in recs[:-6:-1]]
    with HistoryStore(tmp_path, max_records=3) as store:  # the setting was lowered
        assert store.prune() == 2
        assert [e.request_id for e in store.last(100)] == [r.request_id for r in recs[:-4:-1]]
        assert store.prune() == 0
    with HistoryStore(tmp_path, max_bytes=3000) as store:  # and on bytes (~1140 each)
        big = [make_record(20 + n, payload=b'"' + b"x" * 1000 + b'"') for n in range(4)]
        for rec in big:
            store.record(rec)
        kept = [e.request_id for e in store.last(100)]
        assert kept == [big[3].request_id, big[2].request_id]


def test_a_history_from_a_newer_workbench_is_refused_in_words(tmp_path: Path) -> None:
    HistoryStore(tmp_path).close()
    conn = sqlite3.connect(tmp_path / STORE_DIR / DB_NAME)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(HistoryError, match="newer workbench"):
        HistoryStore(tmp_path)


def test_code_version_follows_code_files_only(tmp_path: Path) -> None:
    folder = copy_fixture(tmp_path)
    before = code_version(folder, skip=("events",))
    assert before == code_version(folder, skip=("events",))
    for noise in (
        "__pycache__/app.pyc",
        ".workbench/x",
        "node_modules/m/i.js",
        ".git/HEAD",
        "events/new.json",
        ".aws-sam/build/x",
    ):
        (folder / noise).parent.mkdir(parents=True, exist_ok=True)
        (folder / noise).write_text("noise")
    assert code_version(folder, skip=("events",)) == before
    assert code_version(folder) != before  # unless the events are not skipped
    set_greeting(folder, "good day")
    after = code_version(folder, skip=("events",))
    assert after != before
    layer = tmp_path / "layer"
    layer.mkdir()
    (layer / "lib.py").write_text("X = 1\n")
    assert code_version(folder, [layer], skip=("events",)) != after


def test_structural_json_comparison() -> None:
    assert json_equal({"a": 1, "b": [1, 2.0]}, {"b": [1.0, 2], "a": 1})
    assert not json_equal({"a": True}, {"a": 1})
    assert not json_equal({"a": "1"}, {"a": 1})
    assert not json_equal([1, 2], [2, 1])
    assert response_diff(b'{"a": 1, "b": 2}', b'{"b":2,"a":1}') is None
    diff = response_diff(b'{"a": 1, "b": 2}', b'{"a": 1, "b": 3}')
    assert diff is not None and '-  "b": 2' in diff and '+  "b": 3' in diff
    assert response_diff(b"\xffraw", b"\xffraw") is None
    assert response_diff(b"plain text", b"other text") is not None


# ---- recording from the engine ----


def test_attach_records_every_invocation_once_flushed(tmp_path: Path) -> None:
    folder = copy_fixture(tmp_path)
    cfg = resolve_functions([folder])[0].config

    async def body() -> None:
        bus = Bus()
        stores = open_stores_for([cfg])
        recorder = attach(bus, stores)
        fn = Function(cfg, bus)
        try:
            first = await fn.invoke(InvokeRequest(b'{"name": "x"}', source="tui"))
            recorder.flush()  # the writer thread commits moments after an invoke finishes
            # committed: another connection sees it
            rows = db_rows(folder, "SELECT request_id, source, cold FROM invocations")
            assert rows == [(first.request_id, "tui", 1)]
            second = await fn.invoke(InvokeRequest(b'{"fail": "nope"}', source="tui"))
        finally:
            await fn.close()
            recorder.detach()
            stores.close()
        with HistoryStore(folder) as store:
            newest, oldest = store.last(5)
        assert (oldest.request_id, newest.request_id) == (first.request_id, second.request_id)
        assert oldest.cold and not newest.cold
        assert oldest.init_ms is not None and newest.init_ms is None
        assert newest.status == "error" and newest.error_type == "ValueError"
        assert json.loads(oldest.response)["greeting"] == "hello"
        assert any(line.startswith("START RequestId:") for line in newest.log_lines)
        assert any(line.startswith("REPORT RequestId:") for line in newest.log_lines)
        assert oldest.code_version == newest.code_version == code_version(folder, skip=("events",))

    asyncio.run(body())


@pytest.mark.integration  # a burst of invokes, a kill -9, and a look at every record
def test_kill_9_during_a_burst_loses_no_finished_record(tmp_path: Path) -> None:
    folder = copy_fixture(tmp_path)
    marker = f"HIST_BURST_MARK={uuid.uuid4().hex}"
    (folder / ".env").write_text(marker + "\n")
    printed_total: list[str] = []
    rng = random.Random(7)
    for _round in range(4):
        proc = subprocess.Popen(
            [sys.executable, str(BURST), str(folder), "100000"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            start_new_session=True,
        )
        lines: list[str] = []
        first = threading.Event()

        def read(
            p: subprocess.Popen[bytes] = proc, out: list[str] = lines, seen: threading.Event = first
        ) -> None:
            assert p.stdout is not None
            for raw in p.stdout:
                out.append(raw.decode().strip())
                seen.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        assert first.wait(30), proc.stderr.read().decode() if proc.stderr else ""
        time.sleep(rng.uniform(0.05, 0.6))  # somewhere in the burst: between, or mid-write
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        reader.join(10)
        assert proc.returncode == -signal.SIGKILL
        assert len(lines) >= 5
        printed_total += lines
        with HistoryStore(folder):  # opening it replays what the killed process had journaled
            pass
        stored = {str(r[0]) for r in db_rows(folder, "SELECT request_id FROM invocations")}
        missing = [rid for rid in printed_total if rid not in stored]
        assert not missing, f"round {_round}: {len(missing)} finished invocations were lost"
        # at most the one in flight when the kill came may be stored without being printed
        assert len(stored) - len(printed_total) in (0, 1)
        printed_total = sorted(stored)
        assert db_rows(folder, "PRAGMA integrity_check") == [("ok",)]
    deadline = time.monotonic() + 60
    while processes_with_env(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_with_env(marker) == []  # the runtimes died with the workbench


def test_two_workbenches_can_record_into_one_folder_at_once(tmp_path: Path) -> None:
    folder = copy_fixture(tmp_path)
    procs = [
        subprocess.Popen(
            [sys.executable, str(BURST), str(folder), "60"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
        )
        for _ in range(2)
    ]
    printed: list[str] = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
        printed += out.decode().split()
    assert len(printed) == 120
    stored = {r[0] for r in db_rows(folder, "SELECT request_id FROM invocations")}
    assert stored == set(printed)


# ---- the history command ----


def test_history_of_a_folder_with_none_is_a_friendly_line(tmp_path: Path) -> None:
    folder = copy_fixture(tmp_path)
    done = history(folder)
    assert done.returncode == 0, done.stderr.decode()
    assert "No invocations recorded yet" in done.stdout.decode()
    assert not (folder / STORE_DIR).exists()  # looking does not create anything
    done = history(folder, "--json")
    assert done.returncode == 0 and done.stdout == b""


def test_history_lists_newest_first_as_a_table_and_as_json(tmp_path: Path) -> None:
    folder = copy_fixture(tmp_path)
    assert replay(folder, "alice", "bob").returncode == 0
    assert replay(folder, "bob").returncode == 0  # a new process: the history outlived the last
    done = history(folder)
    assert done.returncode == 0, done.stderr.decode()
    lines = done.stdout.decode().splitlines()
    assert lines[0].split() == [
        "time",
        "request",
        "source",
        "event",
        "status",
        "start",
        "duration",
        "billed",
        "init",
        "max",
        "mem",
    ]
    rows = [line.split() for line in lines[1:]]
    assert [r[4] for r in rows] == ["bob", "bob", "alice"]
    assert [r[6] for r in rows] == ["cold", "warm", "cold"]
    assert all(r[3] == "replay" and r[5] == "ok" for r in rows)

    done = history(folder, "--json", "--last", "2")
    docs = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert [d["event_name"] for d in docs] == ["bob", "bob"]
    assert docs[0]["event"] == {"name": "bob"}
    assert docs[0]["response"] == {"greeting": "hello", "name": "bob", "items": []}
    assert docs[0]["source"] == "replay" and docs[0]["cold"] is True
    assert docs[0]["code_version"] and docs[0]["function"] == "hist-echo"
    assert any(line.startswith("START RequestId:") for line in docs[0]["log_lines"])
    assert rows[0][2] == docs[0]["request_id"][:8]  # the time takes two columns

    done = history(folder, "--function", "someone-else")
    assert done.returncode == 0 and "No invocations of someone-else" in done.stdout.decode()


# ---- replay ----


def test_replay_runs_saved_events_warm_and_records_them_as_replays(tmp_path: Path) -> None:
    folder = copy_fixture(tmp_path)
    (folder / "events" / ".hidden").mkdir()
    (folder / "events" / ".hidden" / "skip.json").write_text("{}")
    done = replay(folder)
    assert done.returncode == 0, done.stderr.decode()
    out = done.stdout.decode().splitlines()
    assert out[0].split() == ["event", "status", "duration", "billed", "start"]
    rows = [line.split() for line in out[1:3]]
    assert [(r[0], r[1], r[-1]) for r in rows] == [("alice", "ok", "cold"), ("bob", "ok", "warm")]
    assert "2 events replayed" in done.stdout.decode()
    assert "(1 cold start)" in done.stdout.decode()
    with HistoryStore(folder) as store:
        entries = store.last(10)
    assert [(e.event_name, e.source) for e in entries] == [("bob", "replay"), ("alice", "replay")]
    init_lines = [line for e in entries for line in e.log_lines if line.startswith("INIT_START")]
    assert len(init_lines) == 1  # one environment served both


def test_check_passes_when_unchanged_and_shows_a_diff_when_changed(tmp_path: Path) -> None:
    folder = copy_fixture(tmp_path)
    first = replay(folder, "--check")
    assert first.returncode == 0, first.stdout.decode() + first.stderr.decode()
    assert "new" in first.stdout.decode()  # alice: nothing to compare with yet

    same = replay(folder, "--check")
    assert same.returncode == 0, same.stdout.decode()
    assert [line.split()[-1] for line in same.stdout.decode().splitlines()[1:3]] == ["pass", "pass"]

    set_greeting(folder, "good day")
    changed = replay(folder, "--check")
    assert changed.returncode == 1
    text = changed.stdout.decode()
    assert [line.split()[-1] for line in text.splitlines()[1:3]] == ["DIFF", "DIFF"]
    assert '-  "greeting": "hello",' in text and '+  "greeting": "good day",' in text
    assert "alice: the response differs from history #" in text
    # a regression does not become the baseline by being checked once
    again = replay(folder, "--check", "alice")
    assert again.returncode == 1 and "DIFF" in again.stdout.decode()

    set_greeting(folder, "hello")
    assert replay(folder, "--check").returncode == 0


def test_check_uses_the_expected_response_from_the_sidecar(tmp_path: Path) -> None:
    folder = copy_fixture(tmp_path)
    done = replay(folder, "--check", "bob")  # no history at all: the sidecar decides
    assert done.returncode == 0, done.stdout.decode()
    assert done.stdout.decode().splitlines()[1].split()[-1] == "pass"

    meta = folder / "events" / ".meta" / "bob.json"
    meta.write_text(json.dumps({"expected": {"greeting": "hello", "name": "robert", "items": []}}))
    done = replay(folder, "--check", "bob")
    assert done.returncode == 1
    text = done.stdout.decode()
    assert '"expected" in' in text and "bob.json" in text
    assert '-  "name": "robert"' in text and '+  "name": "bob"' in text


def test_replay_from_history(tmp_path: Path) -> None:
    folder = copy_fixture(tmp_path)
    assert replay(folder, "alice", "bob").returncode == 0
    done = replay(folder, "--from-history", "2", "--check")
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    rows = [line.split() for line in done.stdout.decode().splitlines()[1:3]]
    assert [r[:2] for r in rows] == [["#1", "alice"], ["#2", "bob"]]
    assert [r[-1] for r in rows] == ["pass", "pass"]

    set_greeting(folder, "good day")
    done = replay(folder, "--from-history", "1", "--check")  # the last record: #4, bob
    assert done.returncode == 1
    assert "#4 bob" in done.stdout.decode() and "DIFF" in done.stdout.decode()
    with HistoryStore(folder) as store:
        newest = store.last(1)[0]
    assert (newest.source, newest.event_name, newest.check_result) == ("replay", "bob", "diff")


def test_replay_usage_errors_exit_2(tmp_path: Path) -> None:
    folder = copy_fixture(tmp_path)
    done = replay(folder, "nosuch")
    assert done.returncode == 2 and "no saved event 'nosuch'" in done.stderr.decode()
    assert "alice, bob" in done.stderr.decode()
    done = replay(folder, "--from-history", "3")
    assert done.returncode == 2 and "no invocations" in done.stderr.decode()
    done = replay(folder, "alice", "--from-history", "1")
    assert done.returncode == 2
    (folder / "events" / "broken.json").write_text("{not json")
    done = replay(folder)
    assert done.returncode == 2 and "broken.json" in done.stderr.decode()
    assert "Traceback" not in done.stderr.decode()


def test_junit_and_json_results(tmp_path: Path) -> None:
    folder = copy_fixture(tmp_path)
    (folder / "events" / "boom.json").write_text('{"fail": "boom"}')
    assert replay(folder, "alice").returncode == 0  # a baseline for alice
    set_greeting(folder, "good day")
    junit = tmp_path / "reports" / "replay.xml"
    done = replay(folder, "--check", "--junit", str(junit))
    assert done.returncode == 1
    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "hist-echo"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "2", "1")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert set(cases) == {"alice", "bob", "boom"}
    for name in ("alice", "bob"):
        failure = cases[name].find("failure")
        assert failure is not None and '+  "greeting": "good day",' in (failure.text or "")
    error = cases["boom"].find("error")
    assert error is not None and error.get("type") == "ValueError"
    assert "boom" in (error.get("message") or "")

    # (bob: its expected response is in its sidecar, so this run does not become a baseline)
    done = replay(folder, "--json", "bob", "boom")
    assert done.returncode == 1
    doc = json.loads(done.stdout)
    assert doc["function"] == "hist-echo" and doc["passed"] is False
    assert [(r["event"], r["verdict"], r["cold"]) for r in doc["results"]] == [
        ("bob", "ok", True),
        ("boom", "error", False),
    ]
    assert doc["results"][0]["response"]["greeting"] == "good day"
    assert doc["results"][1]["error_type"] == "ValueError"

    set_greeting(folder, "hello")
    (folder / "events" / "boom.json").unlink()
    done = replay(folder, "--check", "--junit", str(junit))
    assert done.returncode == 0
    again = ET.parse(junit).getroot().find("testsuite")
    assert again is not None
    assert (again.get("tests"), again.get("failures"), again.get("errors")) == ("2", "0", "0")


def test_a_burst_of_invocations_is_recorded_whole_and_in_order(tmp_path: Path) -> None:
    """Records handed over faster than the writer commits are gathered into batches (bounded in
    count): none is lost or reordered, and flush() returns once all are on disk."""
    folder = copy_fixture(tmp_path)
    cfg = resolve_functions([folder])[0].config
    bus = Bus()
    stores = open_stores_for([cfg])
    recorder = attach(bus, stores)
    sent = [make_record(n, function=cfg.name) for n in range(150)]
    try:
        for rec in sent:
            bus.emit(InvocationFinished(cfg.name, rec))
        recorder.flush()
        rows = db_rows(folder, "SELECT request_id FROM invocations ORDER BY id")
    finally:
        recorder.detach()
        stores.close()
    assert [r[0] for r in rows] == [rec.request_id for rec in sent]
