"""Memory bounds on a function's output: a line past CloudWatch Logs' event size (1 MB) is split
into several, one invocation's stored log is capped (log_max_mb, --log-max-mb) and says so, and
the session's whole log is bounded by its text as well as by its lines."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import StartServer, lambda_client, run_workbench
from workbench.core.bus import LogLine
from workbench.core.engine.environment import LogCollector
from workbench.core.logbook import LogBook

MIB = 1024 * 1024
CUT = "[workbench] log cut here: "


def _function(tmp_path: Path, source: str, settings: str = "timeout = 120\n") -> Path:
    folder = tmp_path / "fn"
    folder.mkdir()
    (folder / "app.py").write_text(source)
    (folder / "workbench.toml").write_text(settings)
    return folder


def _last_record(folder: Path, missing_ok: bool = False) -> dict[str, Any]:
    done = run_workbench("history", str(folder), "--json", "-n", "1")
    assert done.returncode == 0, done.stderr.decode()
    if missing_ok and not done.stdout:
        return {}
    doc: dict[str, Any] = json.loads(done.stdout.decode().splitlines()[0])
    return doc


def _size(lines: list[str]) -> int:
    """The log's bytes as history stores it (a line and its newline)."""
    return sum(len(line.encode()) + 1 for line in lines)


def _hwm_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmHWM for {pid}")


FLOOD = """\
import sys


def handler(event, context):
    chunk = "x" * (1024 * 1024)
    for _ in range(200):  # 200 MB, and never a newline
        sys.stdout.write(chunk)
    sys.stdout.flush()
    return "done"
"""


@pytest.mark.integration  # 200 MB through a pipe
def test_200_mb_without_a_newline_keeps_serve_small_and_the_record_capped(
    tmp_path: Path, serve: StartServer
) -> None:
    folder = _function(tmp_path, FLOOD)
    server = serve(str(folder), "--port", "0", "-q")
    client = lambda_client(server.url)
    resp = client.invoke(FunctionName="fn", Payload=b"{}")
    assert resp["Payload"].read() == b'"done"'
    rid = resp["ResponseMetadata"]["RequestId"]
    # the peak once the record is on disk too: making and storing it is part of the cost
    deadline = time.monotonic() + 100
    while (record := _last_record(folder, missing_ok=True)).get("request_id") != rid:
        assert time.monotonic() < deadline, "the record never reached history"
        time.sleep(0.05)
    peak_mb = _hwm_kb(server.proc.pid) / 1024
    assert peak_mb < 150, f"serve peaked at {peak_mb:.0f} MB"
    assert server.stop() == 0

    lines: list[str] = record["log_lines"]
    assert record["log_truncated"] is True
    cut = [line for line in lines if line.startswith(CUT)]
    assert len(cut) == 1
    # the beginning and the end, 2 MB each, and the line that says what fell between
    assert _size([line for line in lines if not line.startswith(CUT)]) == 4 * MIB
    assert any(line.startswith("START RequestId:") for line in lines[: lines.index(cut[0])])
    assert lines[-1].startswith("REPORT RequestId:")
    assert "x" * MIB in lines  # the output came in lines of 1 MB, as Lambda splits it

    table = run_workbench("history", str(folder)).stdout.decode().splitlines()
    assert table[0].split()[-1] == "log" and table[1].split()[-1] == "cut"
    assert table[-1].startswith("log cut: 1 of these invocations logged more than history keeps")


SPLIT = """\
import sys


def handler(event, context):
    sys.stdout.write("a" * (2 * 1024 * 1024 + 123) + "\\n")
    sys.stdout.write("b" + "\\u00e9" * 600_000 + "\\n")  # 2-byte characters across the cut
    print("the end")
    return "ok"
"""


def test_a_line_longer_than_1_mb_is_split_at_1_mb_on_a_character_boundary(
    tmp_path: Path,
) -> None:
    folder = _function(tmp_path, SPLIT)
    done = run_workbench("invoke", str(folder))
    assert done.returncode == 0, done.stderr.decode()
    record = _last_record(folder)
    lines: list[str] = record["log_lines"]
    assert record["log_truncated"] is False
    a = [len(line.encode()) for line in lines if line.startswith("a")]
    assert a == [1_048_576, 1_048_576, 123]
    b_at = next(i for i, line in enumerate(lines) if line.startswith("b"))
    first, rest = lines[b_at], lines[b_at + 1]
    # "b" and 524,287 two-byte characters: the next one would straddle the 1,048,576th byte
    assert len(first.encode()) == 1_048_575 and first == "b" + "é" * 524_287
    assert rest == "é" * 75_713 and len(rest.encode()) == 151_426
    assert lines[b_at + 2] == "the end"


THREE_MB = """\
def handler(event, context):
    for i in range(3 * 1024):
        print(f"{i:07d} " + "y" * 1015)  # 1 KB lines, 3 MB of them
    return "ok"
"""


def test_log_max_mb_caps_the_record_from_workbench_toml_and_the_flag_wins(
    tmp_path: Path,
) -> None:
    folder = _function(tmp_path, THREE_MB, "timeout = 120\nlog_max_mb = 1\n")
    doctor = run_workbench("doctor", str(folder)).stdout.decode()
    assert re.search(r"log_max_mb = 1 \(\S*workbench.toml: log_max_mb\)", doctor), doctor
    assert run_workbench("invoke", str(folder)).returncode == 0
    record = _last_record(folder)
    lines: list[str] = record["log_lines"]
    assert record["log_truncated"] is True
    cut = next(line for line in lines if line.startswith(CUT))
    assert _size([line for line in lines if line != cut]) == MIB
    # its first lines and its last ones, in order, around the cut
    output = [line for line in lines if line[:7].isdigit()]
    assert output[0].startswith("0000000 ") and output[-1].startswith(f"{3 * 1024 - 1:07d} ")
    assert "history keeps 1 MB of each invocation's log" in cut

    assert run_workbench("invoke", str(folder), "--log-max-mb", "2").returncode == 0
    record = _last_record(folder)
    lines = record["log_lines"]
    assert _size([line for line in lines if not line.startswith(CUT)]) == 2 * MIB

    bad = run_workbench("invoke", str(folder), "--log-max-mb", "0")
    assert bad.returncode != 0
    assert "--log-max-mb must be a whole number of MB from 1 to 1024; got 0" in bad.stderr.decode()


def test_the_collector_keeps_the_beginning_and_the_end_and_cuts_between() -> None:
    log = LogCollector(limit=100, max_lines=1000)
    said = [log.add(f"line {i:03d}") for i in range(30)]  # 9 bytes each with the newline
    assert said.count(True) == 1 and said.index(True) == 11  # the line past 100 bytes
    lines, truncated = log.finish()
    assert truncated
    cut = lines.index(next(line for line in lines if line.startswith(CUT)))
    head, tail = lines[:cut], lines[cut + 1 :]
    assert _size(head) == 50 and _size(tail) == 50  # half the room each, exactly
    # the lines across the two edges: the first keeps its beginning, the other its end
    assert head == [*(f"line {i:03d}" for i in range(5)), "line"]
    assert tail == [" 024", *(f"line {i:03d}" for i in range(25, 30))]
    assert lines[cut].startswith(f"{CUT}170 bytes of this invocation's log are not kept")

    small = LogCollector(limit=100)
    for i in range(5):
        assert not small.add(f"line {i}")
    assert small.finish() == ([f"line {i}" for i in range(5)], False)

    many = LogCollector(limit=10 * MIB, max_lines=10)  # the count of lines is a bound too
    for i in range(25):
        many.add(str(i))
    lines, truncated = many.finish()
    assert (
        truncated
        and lines[:5] == ["0", "1", "2", "3", "4"]
        and lines[-5:] == [str(i) for i in range(20, 25)]
    )


def test_the_session_log_is_bounded_by_its_text_and_shares_each_line() -> None:
    book = LogBook(limit=1000, chars_limit=10 * MIB)
    big = "z" * MIB
    for i in range(30):
        book.add(LogLine("f", big if i % 2 else f"small {i}", "stdout", None, 0.0, 1))
    assert book.chars <= 10 * MIB
    kept = book.entries(book.first, book.total)
    assert sum(len(e[1]) for e in kept) == book.chars
    assert kept[-1][1] is big  # the very str the bus carried, not a copy
    assert book.total - book.first == len(kept) < 30
    # what was dropped is not held on to: the list holds at most a quarter of the room more
    held = sum(len(e[1]) for e in book._lines)
    assert held <= 10 * MIB + 10 * MIB // 4 + MIB
