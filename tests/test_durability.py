"""Nothing a caller was answered is lost from history, however workbench dies.

The answer goes out before the history writer commits the record; in between, it is in
history's journal (core/history/journal.py), replayed into the store when it next opens. Here:
the journal's replay on its own (complete, answered-only, accepted-only and torn entries), and
real `workbench serve` and TUI processes killed with SIGKILL in the middle of a burst of
invokes, after which every request id a client got an answer for must be in history."""

from __future__ import annotations

import fcntl
import http.client
import json
import os
import pty
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import termios
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, StartServer, processes_with_env, run_workbench
from workbench.core.bus import Bus, InvocationAnswered, InvocationFinished
from workbench.core.config.resolve import resolve_functions
from workbench.core.history.journal import (
    ANSWERED,
    FILE_BYTES,
    HEAD_SIZE,
    IDLE_FILES_KEPT,
    PATTERN,
    UNFINISHED_ACCEPTED,
    UNFINISHED_ANSWERED,
    Journal,
    encode,
    parse,
)
from workbench.core.history.recorder import attach, open_stores_for
from workbench.core.history.store import STORE_DIR, HistoryStore
from workbench.core.record import InvocationRecord, InvokeRequest, InvokeResult

FUNCTION = "hist-echo"
INVOKE = f"/2015-03-31/functions/{FUNCTION}/invocations"
ROUNDS = 5


def _rid() -> str:
    return str(uuid.uuid4())


def _record(rid: str, event: bytes, response: bytes, n: int = 1) -> InvocationRecord:
    return InvocationRecord(
        function="fn",
        request_id=rid,
        request=InvokeRequest(event, trace_id="Root=1-abc", source="invoke-api"),
        result=InvokeResult(rid, response),
        status="ok",
        cold=False,
        started_at=1_700_000_000.0 + n,
        duration_ms=2.5,
        billed_ms=3,
        init_ms=None,
        memory_mb=256,
        max_memory_mb=30,
        log_lines=[f"START RequestId: {rid}", "hello", f"END RequestId: {rid}"],
    )


def _answered(rec: InvocationRecord) -> InvocationAnswered:
    return InvocationAnswered(
        rec.function, rec.request_id, rec.request, rec.result, rec.started_at, rec.cold, None, 256
    )


def _journal_files(folder: Path) -> list[Path]:
    return sorted((folder / STORE_DIR).glob(PATTERN))


# ---- the journal, replayed ----


def _entry(token: bytes, seq: int, rid: str, size: int) -> bytes:
    header = (rid, "fn", float(seq), None, None, None, ("application/json", False), None, None)
    buffers, _ = encode(ANSWERED, token, seq, header, b"", b"r" * size, b"")
    return b"".join(buffers)


def test_replay_keeps_every_entry_before_a_torn_tail_once(tmp_path: Path) -> None:
    folder = tmp_path / "fn"
    folder.mkdir()
    done = _record(_rid(), b'{"done": 1}', b'{"ok": 1}', n=1)
    answered_only = _record(_rid(), b'{"answered": 2}', b'"only"', n=2)
    finished_only = _record(_rid(), b'{"finished": 3}', b'{"ok": 3}', n=3)  # no answer seen
    accepted = InvokeRequest(b'{"event": 4}', "Event", source="invoke-api")
    accepted_id = _rid()
    committed = _record(_rid(), b'{"committed": 5}', b'{"ok": 5}', n=5)
    big = _record(_rid(), b'{"big": "' + b"x" * 1_000_000 + b'"}', b"y" * 300_000, n=6)
    with HistoryStore(folder) as store:
        store.record(committed)  # committed before the "kill": not to be added twice
        journal = Journal(store.dir)
        journal.answered(_answered(done), "alice", "v1")
        journal.finished(done, "alice", "v1")
        journal.answered(_answered(answered_only), None, None)
        journal.finished(finished_only, None, None)
        journal.accepted("fn", accepted_id, accepted, 1_700_000_004.0, 256)
        journal.answered(_answered(committed), None, None)
        journal.finished(committed, None, None)
        journal.answered(_answered(big), None, None)
        journal.finished(big, None, None)
        [path] = journal.files()
        journal.close()  # let go without committing anything: as a killed process does
    # the kill came in the middle of one more entry
    written = list(parse(path.read_bytes()))
    torn = _entry(written[0].token, written[-1].seq + 1, _rid(), 5000)
    with open(path, "ab") as fh:
        fh.write(torn[: len(torn) // 2])

    with HistoryStore(folder) as store:
        assert store.replayed == 5
        by_id = {r.request_id: r for r in store.last(20)}
    assert len(by_id) == 6
    assert _journal_files(folder) == []

    got = by_id[done.request_id]
    assert (got.status, got.duration_ms, got.billed_ms, got.max_memory_mb) == ("ok", 2.5, 3, 30)
    assert (got.event, got.response, got.log_lines) == (done.event, done.response, done.log_lines)
    assert (got.event_name, got.code_version, got.request.trace_id) == ("alice", "v1", "Root=1-abc")

    got = by_id[answered_only.request_id]
    assert got.status == "unfinished" and not got.measured
    assert (got.event, got.response) == (b'{"answered": 2}', b'"only"')
    assert got.log_lines == [UNFINISHED_ANSWERED]
    assert (got.memory_mb, got.started_at) == (256, answered_only.started_at)

    got = by_id[finished_only.request_id]
    assert (got.status, got.event, got.response) == ("ok", finished_only.event, b'{"ok": 3}')

    got = by_id[accepted_id]
    assert got.status == "unfinished" and got.request.invocation_type == "Event"
    assert (got.event, got.response, got.log_lines) == (b'{"event": 4}', b"", [UNFINISHED_ACCEPTED])

    assert by_id[big.request_id].event == big.event
    assert by_id[big.request_id].response == big.response

    with HistoryStore(folder) as store:  # replayed once: nothing left to add
        assert (store.replayed, store.count()) == (0, 6)


def test_history_shows_an_unfinished_invocation_without_figures(tmp_path: Path) -> None:
    folder = tmp_path / "fn"
    folder.mkdir()
    rec = _record(_rid(), b"{}", b'{"ok": true}')
    with HistoryStore(folder) as store:
        store.journal.answered(_answered(rec), "alice", None)
    done = run_workbench("history", str(folder))  # replays, then lists
    assert done.returncode == 0, done.stderr.decode()
    [row] = [line for line in done.stdout.decode().splitlines() if rec.request_id[:8] in line]
    # time (2 words), then request, source, event, status, start, duration, billed, init, memory
    expected = "invoke-api alice unfinished warm - - - -/256 MB"
    assert row.split()[3:] == expected.split()


def _ids(data: bytes) -> list[str]:
    return [e.header[0] for e in parse(data)]


def test_a_file_ends_at_a_torn_entry_and_before_what_a_rewind_left() -> None:
    token = b"\x01" * 8
    first = _entry(token, 1, "a", 10)
    torn = _entry(token, 2, "b", 300)
    for cut in (1, HEAD_SIZE - 1, HEAD_SIZE + 2, len(torn) - 300, len(torn) - 1):
        assert _ids(first + torn[:cut]) == ["a"], cut
    assert _ids(first + torn) == ["a", "b"]
    assert _ids(first + _entry(b"\x02" * 8, 2, "c", 10)) == ["a"]  # another file's entry

    # a rewound file: newer entries from the start, over older ones that are still there
    old = _entry(token, 1, "old-1", 500) + _entry(token, 2, "old-2", 500)
    new = _entry(token, 3, "new", 100)
    assert _ids(new + old[len(new) :]) == ["new"]
    # an older entry that the newer one happens to end exactly before
    assert _ids(_entry(token, 3, "new", 10) + _entry(token, 2, "old", 10)) == ["new"]
    # a newer entry torn over older ones: its length fits in the file, its trailer is not there
    assert _ids(new[: len(new) - 20] + old[len(new) - 20 :]) == []


def test_a_journal_in_use_is_left_to_its_process(tmp_path: Path) -> None:
    folder = tmp_path / "fn"
    folder.mkdir()
    rec = _record(_rid(), b"{}", b"{}")
    with HistoryStore(folder) as mine:
        mine.journal.answered(_answered(rec), None, None)
        with HistoryStore(folder) as other:  # another workbench opening the same folder
            assert other.replayed == 0 and other.get(rec.request_id) is None
        assert [p.exists() for p in mine.journal.files()] == [True]
    # closed with an answer whose record never came: the next open stores what it knows
    with HistoryStore(folder) as store:
        assert store.replayed == 1
        got = store.get(rec.request_id)
    assert got is not None and got.status == "unfinished"


def test_what_a_rewound_file_still_holds_is_not_replayed(tmp_path: Path) -> None:
    folder = tmp_path / "fn"
    folder.mkdir()
    gone = _record(_rid(), b'"' + b"x" * 50_000 + b'"', b"{}")
    kept = _record(_rid(), b"{}", b"{}")
    with HistoryStore(folder) as store:
        journal = Journal(store.dir)
        journal.answered(_answered(gone), None, None)
        journal.finished(gone, None, None)
        journal.committed([gone.request_id])  # said committed (it is not): the file rewinds
        journal.answered(_answered(kept), None, None)
        [path] = journal.files()
        assert b"x" * 40_000 in path.read_bytes()  # overwritten only in part
        journal.close()
    with HistoryStore(folder) as store:
        assert store.replayed == 1
        assert [r.request_id for r in store.last(5)] == [kept.request_id]


KILLED_MID_JOURNAL = """
import os, signal, sys
from pathlib import Path
from workbench.core.bus import InvocationAnswered
from workbench.core.history.journal import FILE_BYTES, Journal
from workbench.core.record import InvocationRecord, InvokeRequest, InvokeResult

journal = Journal(Path(sys.argv[1]))
def record(rid, size):
    req = InvokeRequest(b'"' + b"x" * size + b'"')
    res = InvokeResult(rid, b"{}")
    return InvocationRecord("fn", rid, req, res, "ok", False, 1.0, 1.0, 1, None, 128, 30, [])
def answered(rec):
    ev = InvocationAnswered("fn", rec.request_id, rec.request, rec.result, 1.0, False, None, 128)
    journal.answered(ev, None, None)
if sys.argv[2] == "emptied":  # every entry committed (and since pruned): nothing to replay
    answered(record("old-0", 100))
    journal.finished(record("old-0", 100), None, None)
    journal.committed(["old-0"])
    os.kill(os.getpid(), signal.SIGKILL)
half = FILE_BYTES // 2 + 1
# two answers fill the first file; the third goes to a second one
for rid in ("old-1", "old-2", "live-3"):
    answered(record(rid, half))
journal.finished(record("old-1", half), None, None)
journal.finished(record("old-2", half), None, None)
# committed, then pruned from the database (here: never stored): the first file empties,
# and must never be replayed
journal.committed(["old-1", "old-2"])
answered(record("live-4", 10))
print(len(journal.files()), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_journal_replays_what_is_not_committed_and_nothing_that_was(tmp_path: Path) -> None:
    folder = tmp_path / "fn"
    folder.mkdir()
    with HistoryStore(folder) as store:
        for case in ("emptied", "overlapping"):
            done = subprocess.run(
                [sys.executable, "-c", KILLED_MID_JOURNAL, str(store.dir), case],
                capture_output=True,
                timeout=120,
            )
            assert done.returncode == -signal.SIGKILL, done.stderr.decode()
    assert done.stdout.decode().strip() == "2"  # the emptied file is kept for reuse
    assert len(_journal_files(folder)) == 3
    with HistoryStore(folder) as store:
        assert store.replayed == 2
        got = sorted((r.request_id, r.status) for r in store.last(10))
    assert got == [("live-3", "unfinished"), ("live-4", "unfinished")]
    assert _journal_files(folder) == []


def test_the_journal_keeps_only_what_is_not_committed_yet(tmp_path: Path) -> None:
    """40 answers of 300 KB each (more than a journal file holds): each file is reused once
    its records are committed, and all go when the store closes."""
    folder = tmp_path / FUNCTION
    shutil.copytree(FIXTURES / FUNCTION, folder, ignore=shutil.ignore_patterns(STORE_DIR))
    cfg = resolve_functions([folder])[0].config
    bus = Bus()
    stores = open_stores_for([cfg])
    recorder = attach(bus, stores)
    try:
        sent = []
        for n in range(40):
            rec = _record(_rid(), b'"' + b"x" * 300_000 + b'"', b"{}", n)
            rec.function = cfg.name
            bus.emit(_answered(rec))
            bus.emit(InvocationFinished(cfg.name, rec))
            sent.append(rec.request_id)
        recorder.flush()
        assert recorder.last_error is None
        store = stores(cfg.name)
        assert store is not None
        assert store.journal.open_invocations == 0
        files = _journal_files(folder)  # rewound for reuse, the few it keeps
        assert 1 <= len(files) <= IDLE_FILES_KEPT + 1
        assert all(f.stat().st_size <= FILE_BYTES + 400_000 for f in files)
        assert {r.request_id for r in store.last(100)} == set(sent)
    finally:
        recorder.detach()
        stores.close()
    assert _journal_files(folder) == []


# ---- real processes, killed mid-burst ----


class Burst:
    """Client threads invoking through the Invoke API, each on its own keep-alive connection,
    until the server is gone. An answer counts once its whole body has arrived. One invoke in
    eight is an Event (its answer is the 202), one in eight asks for the log's tail (answered
    once the record is made, not at the runtime's /response)."""

    def __init__(self, port: int, seed: int, clients: int = 4) -> None:
        self.port = port
        self.answered: dict[str, tuple[int, bytes, bool]] = {}
        self.changed = threading.Condition()
        self.threads = [
            threading.Thread(target=self._client, args=(random.Random(seed * 10 + i),), daemon=True)
            for i in range(clients)
        ]
        for thread in self.threads:
            thread.start()

    def _client(self, rng: random.Random) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        n = 0
        try:
            while True:
                n += 1
                pad = "x" * rng.choice((0, 100, 4000, 60_000, 200_000))
                body = json.dumps({"n": n, "pad": pad}).encode()
                headers = {"Content-Type": "application/json"}
                kind = rng.random()
                if kind < 1 / 8:
                    headers["X-Amz-Invocation-Type"] = "Event"
                elif kind < 2 / 8:  # answered from the record, with the log's tail
                    headers["X-Amz-Log-Type"] = "Tail"
                conn.request("POST", INVOKE, body, headers)
                resp = conn.getresponse()
                data = resp.read()
                rid = resp.getheader("X-Amzn-RequestId")
                if resp.status in (200, 202) and rid:
                    tailed = resp.getheader("X-Amz-Log-Result") is not None
                    with self.changed:
                        self.answered[rid] = (resp.status, data, tailed)
                        self.changed.notify_all()
        except (OSError, http.client.HTTPException):
            return  # the workbench is gone
        finally:
            conn.close()

    def wait_for(self, count: int, alive: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 120
        with self.changed:
            while len(self.answered) < count:
                assert alive(), "the workbench died before the kill"
                assert time.monotonic() < deadline, f"only {len(self.answered)} answers"
                self.changed.wait(0.5)

    def join(self) -> dict[str, tuple[int, bytes, bool]]:
        for thread in self.threads:
            thread.join(60)
            assert not thread.is_alive(), "a client still waits on a killed workbench"
        return self.answered


def _function_copy(tmp_path: Path) -> tuple[Path, str]:
    folder = tmp_path / FUNCTION
    shutil.copytree(FIXTURES / FUNCTION, folder, ignore=shutil.ignore_patterns(STORE_DIR))
    marker = f"DURABILITY_MARK={uuid.uuid4().hex}"
    (folder / ".env").write_text(marker + "\n")
    return folder, marker


def _set_concurrency(folder: Path, n: int) -> None:
    """One environment, or a pool of them: the answer takes another path through each."""
    (folder / "workbench.toml").write_text(f"timeout = 120\nconcurrency = {n}\n")


def _assert_all_in_history(folder: Path, answered: dict[str, tuple[int, bytes, bool]]) -> None:
    """`workbench history` (a new process, which replays what the dead one journaled)."""
    done = run_workbench("history", str(folder), "--json", "-n", "1000000")
    assert done.returncode == 0, done.stderr.decode()
    stored = {}
    for line in done.stdout.decode().splitlines():
        entry = json.loads(line)
        stored[entry["request_id"]] = entry
    missing = [rid for rid in answered if rid not in stored]
    assert not missing, f"{len(missing)} of {len(answered)} answered invocations are not in history"
    for rid, (status, body, tailed) in answered.items():
        entry = stored[rid]
        if status == 202:
            assert entry["invocation_type"] == "Event", entry
            continue
        assert entry["response"] == json.loads(body), entry
        if tailed:  # answered once it had ended: the whole record, REPORT and all
            assert entry["status"] == "ok", entry
            assert any(line.startswith("REPORT RequestId:") for line in entry["log_lines"])
        else:
            assert entry["status"] in ("ok", "unfinished"), entry
    assert _journal_files(folder) == []  # replayed, then deleted


def _running(proc: subprocess.Popen[bytes]) -> Callable[[], bool]:
    return lambda: proc.poll() is None


def _wait_gone(marker: str) -> None:
    """The killed workbench's runtimes go with it (its janitor); wait, so rounds do not pile up."""
    deadline = time.monotonic() + 60
    while processes_with_env(marker) and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.integration  # five serve processes, each killed mid-burst
def test_kill_9_of_serve_mid_burst_loses_no_answered_invocation(
    serve: StartServer, tmp_path: Path
) -> None:
    folder, marker = _function_copy(tmp_path)
    answered: dict[str, tuple[int, bytes, bool]] = {}
    rng = random.Random(12)
    for round_ in range(ROUNDS):
        _set_concurrency(folder, 1 + round_ % 2)
        server = serve(str(folder), "--port", "0", "-q")
        burst = Burst(server.port, seed=round_)
        burst.wait_for(rng.randint(10, 60), _running(server.proc))
        os.killpg(server.proc.pid, signal.SIGKILL)
        server.proc.wait(30)
        answered.update(burst.join())
        _assert_all_in_history(folder, answered)
        _wait_gone(marker)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Tui:
    """The TUI in a pseudo-terminal of its own (120x36), its screen output read and dropped,
    serving the Invoke API on `port`."""

    def __init__(self, folder: Path, port: int, config: Path) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 36, 120, 0, 0))
        env = {**os.environ, "TERM": "xterm-256color", "XDG_CONFIG_HOME": str(config)}
        for name in ("COLUMNS", "LINES"):
            env.pop(name, None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "workbench", str(folder), "--port", str(port), "--no-watch"],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
        )
        os.close(slave)
        self.master = master
        self.screen = bytearray()
        threading.Thread(target=self._drain, daemon=True).start()
        self._wait_for_api(port)

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: the terminal's other side is closed
                break
            if not data:
                break
            self.screen += data[-4096:]
            del self.screen[:-8192]
        os.close(self.master)

    def _wait_for_api(self, port: int) -> None:
        deadline = time.monotonic() + 90
        while True:
            assert self.proc.poll() is None, "the TUI exited:\n" + self.screen.decode(
                errors="replace"
            )
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("GET", "/2015-03-31/functions/")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
            except OSError:
                pass
            assert time.monotonic() < deadline, "the TUI's Invoke API never answered"
            time.sleep(0.1)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)


@pytest.mark.integration  # five TUI processes in pseudo-terminals, each killed mid-burst
def test_kill_9_of_the_tui_mid_burst_loses_no_answered_invocation(tmp_path: Path) -> None:
    folder, marker = _function_copy(tmp_path)
    answered: dict[str, tuple[int, bytes, bool]] = {}
    rng = random.Random(34)
    for round_ in range(ROUNDS):
        _set_concurrency(folder, 1 + round_ % 2)
        port = _free_port()
        tui = Tui(folder, port, tmp_path / "config")
        try:
            burst = Burst(port, seed=100 + round_)
            burst.wait_for(rng.randint(10, 60), _running(tui.proc))
        finally:
            tui.kill()
        assert tui.proc.returncode == -signal.SIGKILL
        answered.update(burst.join())
        _assert_all_in_history(folder, answered)
        _wait_gone(marker)
