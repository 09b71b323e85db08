"""The session's LogBook: every line by sequence number, bounded, invisible to the garbage
collector, and which lines belong to which invocation (a cold start's INIT included)."""

from __future__ import annotations

import asyncio
import gc
import json
import shutil
import time
from pathlib import Path

from tests.conftest import EXAMPLES
from workbench.core.bus import LogLine, ReloadFinished
from workbench.core.config.resolve import resolve_functions
from workbench.core.logbook import LogBook, reload_line
from workbench.core.logfilter import LineFilter
from workbench.core.session import Session
from workbench.core.vocab import Stream


def _line(
    text: str, rid: str | None = None, stream: Stream = "stdout", fn: str = "f", env: int = 1
) -> LogLine:
    return LogLine(fn, text, stream, rid, 0.0, env)


def test_lines_are_numbered_and_the_oldest_dropped_past_the_limit() -> None:
    book = LogBook(limit=8)
    for i in range(30):
        book.add(_line(f"line {i}"))
    assert book.total == 30 and book.first == 22 and len(book) == 8
    assert [e[1] for e in book.entries(0, 24)] == ["line 22", "line 23"]  # 0..21 are gone
    assert [e[1] for e in book.entries(28, 99)] == ["line 28", "line 29"]
    assert [x.text for x in book.last(2)] == ["line 28", "line 29"]
    assert [x.text for x in book.last(3, lambda x: x.text.endswith("5"))] == ["line 25"]


def test_kept_lines_cost_the_garbage_collector_nothing() -> None:
    book = LogBook()
    for i in range(1000):
        book.add(_line(f"line {i}", "r1"))
    gc.collect()
    assert not any(gc.is_tracked(e) for e in book.entries(0, book.total))


def test_a_cold_start_owns_the_init_before_it_and_a_prewarm_is_nobodys() -> None:
    book = LogBook()
    book.init_started("f", 1, "init")
    book.add(_line("INIT_START ...", stream="platform"))
    book.add(_line("init output"))
    book.request_started("f", "cold", True, 1)
    book.add(_line("START RequestId: cold", "cold", "platform"))
    book.request_finished("cold")
    span = book.span("cold")
    assert span is not None and (span.init_start, span.start, span.end) == (0, 2, 3)
    assert span.init_envs == (1,)

    book.init_started("f", 2, "init")  # a reload's prewarm, then a warm invoke
    book.add(_line("INIT_START ...", stream="platform", env=2))
    book.request_started("f", "warm", False, 2)
    warm = book.span("warm")
    assert warm is not None and warm.init_start is None and warm.end is None
    assert book.latest_request() == "warm" == book.latest_request("f")
    assert book.latest_request("other") is None


def test_an_init_retried_inside_the_invoke_belongs_to_the_same_invocation() -> None:
    book = LogBook()
    book.init_started("f", 1, "init")
    book.add(_line("INIT_START (fails)", stream="platform"))
    book.init_failed("f", 1)
    book.init_started("f", 2, "invoke")  # the retry, in a new environment
    book.add(_line("INIT_START (again)", stream="platform", env=2))
    book.request_started("f", "r", True, 2)
    span = book.span("r")
    assert span is not None and span.init_start == 0 and span.init_envs == (1, 2)


def test_a_retry_that_fails_too_still_owns_both_inits() -> None:
    book = LogBook()
    book.init_started("f", 1, "init")
    book.init_failed("f", 1)
    book.init_started("f", 2, "invoke")
    book.add(_line("Traceback ...", env=2))
    book.init_failed("f", 2)
    book.request_started("f", "r", True, 2)  # the invocation reports the failure
    span = book.span("r")
    assert span is not None and span.init_start == 0 and span.init_envs == (1, 2)


def test_environments_side_by_side_keep_their_init_lines_apart() -> None:
    """concurrency > 1: two cold starts at once, their INIT lines interleaved."""
    book = LogBook()
    book.init_started("f", 1, "init")
    book.init_started("f", 2, "init")
    book.add(_line("init of one", env=1))
    book.add(_line("init of two", env=2))
    book.request_started("f", "a", True, 1)
    book.add(_line("handler a", "a", env=1))
    book.request_started("f", "b", True, 2)
    book.add(_line("handler b", "b", env=2))
    filtered = {
        rid: [
            e[1]
            for seg in LineFilter(request_id=rid).segments(book, 0, book.total)
            for e in book.entries(seg[0], seg[1])
            if seg[2] is None or seg[2](e)
        ]
        for rid in ("a", "b")
    }
    assert filtered == {"a": ["init of one", "handler a"], "b": ["init of two", "handler b"]}


def test_the_session_tags_a_real_cold_start_and_writes_its_reloads(tmp_path: Path) -> None:
    folder = tmp_path / "hello"
    shutil.copytree(EXAMPLES / "hello-python", folder, ignore=shutil.ignore_patterns(".workbench"))
    (folder / "app.py").write_text("print('init says hi')\n" + (folder / "app.py").read_text())

    async def main() -> None:
        session = Session(
            [fn.config for fn in resolve_functions([folder])], watch=False, port=None, record=False
        )
        await session.start()
        try:
            rec = await session.invoke("hello", b"{}").record
            session.reload_now("hello")
            deadline = time.monotonic() + 60
            while not any(e[2] == "workbench" for e in session.log.entries(0, session.log.total)):
                assert time.monotonic() < deadline, "no reload line"
                await asyncio.sleep(0.01)
        finally:
            await session.close()
        book = session.log
        span = book.span(rec.request_id)
        assert span is not None and span.init_start is not None and span.end is not None
        init = [e[1] for e in book.entries(span.init_start, span.start)]
        assert init[0].startswith("INIT_START") and "init says hi" in init
        run = book.entries(span.start, span.end)
        assert run[0][1].startswith(f"START RequestId: {rec.request_id}")
        assert run[-1][1].startswith(f"REPORT RequestId: {rec.request_id}")
        reloads = [e[1] for e in book.entries(0, book.total) if e[2] == "workbench"]
        assert reloads and reloads[-1].startswith("reloaded: asked for, no change; ready ")

    asyncio.run(main())


def test_reload_lines_say_what_changed_and_how_fast() -> None:
    ok = ReloadFinished("f", ("app.py", "lib/util.py"), 812.4, 40.2, 901.0, True)
    assert reload_line(ok) == (
        "reloaded: app.py, lib/util.py changed; ready 901 ms after "
        "the save (build 812 ms, init 40 ms)"
    )
    failed = ReloadFinished("f", ("main.go",), 300.0, None, 310.0, False, "build failed")
    assert reload_line(failed) == (
        "reload failed (main.go changed): build failed; the last good version keeps serving"
    )


CONCURRENT = """import os, pathlib, time
print(f"init in {os.getpid()}")
def handler(event, context):
    # the two invokes meet: each stays until both are running, so each needs its own environment
    meet = pathlib.Path(event["meet"])
    (meet / str(os.getpid())).write_text("here")
    deadline = time.monotonic() + 60
    while len(list(meet.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    return os.getpid()
"""


def test_two_real_cold_starts_side_by_side_each_own_their_init(tmp_path: Path) -> None:
    folder = tmp_path / "pair"
    folder.mkdir()
    (folder / "app.py").write_text(CONCURRENT)
    (folder / "workbench.toml").write_text("concurrency = 2\ntimeout = 120\n")
    meet = tmp_path / "meet"
    meet.mkdir()
    event = json.dumps({"meet": str(meet)}).encode()

    async def main() -> None:
        session = Session(
            [fn.config for fn in resolve_functions([folder])], watch=False, port=None, record=False
        )
        await session.start()
        try:
            a, b = session.invoke("pair", event), session.invoke("pair", event)
            records = [await a.record, await b.record]
        finally:
            await session.close()
        assert all(r.cold for r in records)
        pids = [int(r.result.payload) for r in records]
        assert pids[0] != pids[1], "two environments"
        book = session.log
        for rec, pid in zip(records, pids, strict=True):
            segments = LineFilter(request_id=rec.request_id).segments(book, 0, book.total)
            shown = [
                e[1]
                for lo, hi, keep in segments
                for e in book.entries(lo, hi)
                if keep is None or keep(e)
            ]
            inits = [line for line in shown if line.startswith("init in ")]
            assert inits == [f"init in {pid}"], shown

    asyncio.run(main())
