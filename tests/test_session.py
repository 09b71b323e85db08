"""The headless Session the TUI drives: real functions, real Invoke API, real history."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, processes_with_env
from workbench.core.bus import LogLine
from workbench.core.config.function import FunctionConfig
from workbench.core.config.resolve import resolve_functions
from workbench.core.engine.payloads import ServiceError
from workbench.core.logbook import LogBook
from workbench.core.session import Session, percentile


def _configs(*targets: Path, **env: str) -> list[FunctionConfig]:
    out = []
    for fn in resolve_functions(list(targets)):
        out.append(fn.config.with_overrides(env={**fn.config.env, **env}))
    return out


@pytest.fixture
def two(tmp_path: Path) -> list[Path]:
    a, b = tmp_path / "alpha", tmp_path / "beta"
    shutil.copytree(EXAMPLES / "hello-python", a, ignore=shutil.ignore_patterns(".workbench"))
    shutil.copytree(EXAMPLES / "hello-node", b, ignore=shutil.ignore_patterns(".workbench"))
    return [a, b]


def test_invokes_each_function_and_keeps_rows_figures_and_the_whole_log(
    two: list[Path], tmp_path: Path
) -> None:
    marker = f"WB_SESSION_TEST={tmp_path.name}"
    key, value = marker.split("=")

    async def main() -> None:
        session = Session(_configs(*two, **{key: value}), watch=False, port=0)
        await session.start()
        try:
            first = await session.invoke("alpha", b'{"name": "a"}', "greet").record
            second = await session.invoke("alpha", b'{"name": "b"}').record
            node = await session.invoke("beta", b'{"name": "n"}').record
            assert processes_with_env(marker), "the functions run as child processes"
        finally:
            await session.close()
        assert not processes_with_env(marker), "close() stops every function process"
        row, warm, other = (session.invocation(r.request_id) for r in (first, second, node))
        assert row is not None and warm is not None and other is not None
        assert row.event_name == "greet" and row.cold and row.outcome == "ok"
        assert warm.event_name is None and not warm.cold
        assert other.function == "beta"
        figures = session.figures("alpha")
        assert figures.count == 2 and figures.cold_starts == 1
        assert figures.max_ms == max(first.duration_ms, second.duration_ms)
        ids = {line.request_id for line in session.log.last(1000)}
        assert {first.request_id, second.request_id, node.request_id} <= ids
        # and history, read back the way the TUI reads it at start-up
        again = Session(_configs(*two), watch=False, port=None)
        past = again.past("alpha")
        assert [e.request_id for e in past][:2] == [second.request_id, first.request_id]
        assert past[1].event_name == "greet"
        assert again.stores is not None
        again.stores.close()

    asyncio.run(main())


def test_refuses_what_lambda_refuses_before_running(two: list[Path]) -> None:
    async def main() -> None:
        session = Session(_configs(two[0]), watch=False, port=None)
        await session.start()
        try:
            with pytest.raises(ServiceError) as bad:
                session.invoke("alpha", b"{not json")
            assert bad.value.code == "InvalidRequestContentException"
            with pytest.raises(ServiceError) as unknown:
                session.invoke("nope", b"{}")
            assert unknown.value.code == "ResourceNotFoundException"
            assert not session.invocations()
        finally:
            await session.close()

    asyncio.run(main())


def test_serves_the_invoke_api_and_falls_back_to_a_free_port(two: list[Path]) -> None:
    async def main() -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            busy = taken.getsockname()[1]
            strict = Session(_configs(two[0]), watch=False, port=busy)
            with pytest.raises(OSError):
                await strict.start()
            await strict.close()
            session = Session(_configs(two[0]), watch=False, port=busy, port_fallback=True)
            await session.start()
            try:
                assert session.api_url and not session.api_url.endswith(f":{busy}")
                url = f"{session.api_url}/2015-03-31/functions/alpha/invocations"

                def call() -> bytes:
                    with urllib.request.urlopen(url, data=b'{"name": "api"}') as r:
                        return bytes(r.read())

                body = await asyncio.to_thread(call)
                assert "Hello, api" in json.loads(body)["body"]
                deadline = time.monotonic() + 60  # the record follows the answer
                while not session.invocations() and time.monotonic() < deadline:
                    await asyncio.sleep(0.01)
                assert [r.source for r in session.invocations()] == ["invoke-api"]
            finally:
                await session.close()

    asyncio.run(main())


def test_logbook_keeps_the_newest_and_filters_from_the_end() -> None:
    book = LogBook(limit=5)
    for i in range(8):
        book.add(LogLine("f", f"line {i}", "stdout", "r1" if i % 2 else "r2", float(i)))
    assert len(book) == 5 and book.total == 8
    assert [x.text for x in book.last(2)] == ["line 6", "line 7"]
    assert [x.text for x in book.last(10, lambda x: x.request_id == "r1")] == [
        "line 3",
        "line 5",
        "line 7",
    ]


def test_percentile_is_a_measured_value() -> None:
    assert percentile([], 50) is None
    assert percentile([5.0], 95) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0
    assert percentile([float(i) for i in range(1, 101)], 95) == 95.0


def test_reloads_are_recorded_in_history_and_listed(two: list[Path]) -> None:
    from tests.conftest import run_workbench
    from workbench.core.history.store import HistoryStore

    folder = two[0]
    source = folder / "app.py"

    async def main() -> None:
        session = Session(_configs(folder), watch=True, port=None)
        await session.start()
        try:
            source.write_text(source.read_text().replace("Hello", "Howdy"))
            while session.status("alpha").last_reload is None:
                await asyncio.sleep(0.02)
            first = session.status("alpha").last_reload
            source.write_text("def handler(event, context):\n    return (\n")
            while session.status("alpha").last_reload is first:
                await asyncio.sleep(0.02)
        finally:
            await session.close()  # flushes history

    asyncio.run(main())
    with HistoryStore(folder) as store:
        broken, good = store.reloads(5)
    assert good.ok and good.changed_paths == ("app.py",) and good.init_ms is not None
    assert good.save_to_ready_ms > 0 and good.code_version
    assert not broken.ok and broken.error and "SyntaxError" in broken.error
    out = run_workbench("history", str(folder), "--reloads")
    assert out.returncode == 0, out.stderr
    text = out.stdout.decode()
    assert "failed" in text and "ok" in text and "app.py" in text
    as_json = run_workbench("history", str(folder), "--reloads", "--json").stdout.decode()
    docs = [json.loads(line) for line in as_json.splitlines()]
    assert [d["ok"] for d in docs] == [False, True]
