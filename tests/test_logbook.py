"""The session's LogBook: every line by sequence number, bounded, invisible to the garbage
collector, and which lines belong to which invocation (a cold start's INIT included)."""

from __future__ import annotations

import asyncio
import gc
import shutil
from pathlib import Path

from tests.conftest import EXAMPLES
from workbench.core.bus import LogLine, ReloadFinished
from workbench.core.logbook import LogBook, reload_line
from workbench.core.resolve import resolve_functions
from workbench.core.session import Session


def _line(text: str, rid: str | None = None, stream: str = "stdout", fn: str = "f") -> LogLine:
    return LogLine(fn, text, stream, rid, 0.0)


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
    book.init_started("f", "init")
    book.add(_line("INIT_START ...", stream="platform"))
    book.add(_line("init output"))
    book.request_started("f", "cold", cold=True)
    book.add(_line("START RequestId: cold", "cold", "platform"))
    book.request_finished("cold")
    span = book.span("cold")
    assert span is not None and (span.init_start, span.start, span.end) == (0, 2, 3)

    book.init_started("f", "init")  # a reload's prewarm, then a warm invoke
    book.add(_line("INIT_START ...", stream="platform"))
    book.request_started("f", "warm", cold=False)
    warm = book.span("warm")
    assert warm is not None and warm.init_start is None and warm.end is None
    assert book.latest_request() == "warm" == book.latest_request("f")
    assert book.latest_request("other") is None


def test_an_init_retried_inside_the_invoke_belongs_to_the_same_invocation() -> None:
    book = LogBook()
    book.init_started("f", "init")
    book.add(_line("INIT_START (fails)", stream="platform"))
    book.init_started("f", "invoke")  # the retry does not start a new span
    book.add(_line("INIT_START (again)", stream="platform"))
    book.request_started("f", "r", cold=True)
    span = book.span("r")
    assert span is not None and span.init_start == 0


def test_the_session_tags_a_real_cold_start_and_writes_its_reloads(tmp_path: Path) -> None:
    folder = tmp_path / "hello"
    shutil.copytree(EXAMPLES / "hello-python", folder, ignore=shutil.ignore_patterns(".workbench"))
    (folder / "app.py").write_text("print('init says hi')\n" + (folder / "app.py").read_text())

    async def main() -> None:
        session = Session([fn.config for fn in resolve_functions([folder])], watch=False,
                          port=None, record=False)
        await session.start()
        try:
            rec = await session.invoke("hello", b"{}").record
            session.reload_now("hello")
            for _ in range(500):
                if any(e[2] == "workbench" for e in session.log.entries(0, session.log.total)):
                    break
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
    assert reload_line(ok) == ("reloaded: app.py, lib/util.py changed; ready 901 ms after "
                               "the save (build 812 ms, init 40 ms)")
    failed = ReloadFinished("f", ("main.go",), 300.0, None, 310.0, False, "build failed")
    assert reload_line(failed) == ("reload failed (main.go changed): build failed; the last "
                                   "good version keeps serving")
