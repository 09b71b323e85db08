"""Workbench's own failures are said, never swallowed: a bus listener that raises, a route of
the Invoke API that raises. Neither stops the invocation or the server; each is a WorkerFailed
on the bus, which the TUI shows as a notice and a log line and serve prints on stderr."""

from __future__ import annotations

import asyncio
import http.client
import json
from typing import Any

from tests.rt_helpers import Harness, fixture, run
from workbench.commands.serve import _reload_line
from workbench.core.bus import Bus, Event, InvocationFinished, InvocationStarted, WorkerFailed
from workbench.core.config.function import detect
from workbench.core.engine.function import InvocationHandle
from workbench.core.invoke_api import InvokeAPI
from workbench.core.record import InvocationRecord, InvokeRequest


def test_a_failing_listener_does_not_stop_the_invocation_and_is_said() -> None:
    async def body() -> None:
        async with Harness(fixture("api-echo")) as h:
            assert h.fn is not None

            def broken(event: Event) -> None:
                if isinstance(event, InvocationStarted | InvocationFinished):
                    raise ValueError("listener bug")

            h.fn.bus.subscribe(broken)
            record = await h.invoke({"n": 1})
            assert record.status == "ok"
            assert json.loads(record.result.payload)["event"] == {"n": 1}
            failures = [e for e in h.events if isinstance(e, WorkerFailed)]
            assert [f.worker for f in failures] == [
                f"a listener (InvocationStarted to {broken.__qualname__})",
                f"a listener (InvocationFinished to {broken.__qualname__})",
            ]
            assert all(f.error == "ValueError: listener bug" and not f.stopped for f in failures)
            # the listeners after the broken one still heard the invocation end
            assert any(isinstance(e, InvocationFinished) for e in h.events)

    run(body)


def test_a_listener_that_fails_on_failures_too_is_only_logged() -> None:
    bus, heard = Bus(), list[Event]()

    def always(event: Event) -> None:
        raise RuntimeError("always")

    bus.subscribe(always)
    bus.subscribe(heard.append)
    bus.emit(InvocationStarted("f", "rid", cold=True))
    # the event and one report of the failure: the report's own failure is not reported
    assert sorted(type(e).__name__ for e in heard) == ["InvocationStarted", "WorkerFailed"]


class Broken:
    """A function whose invoke path has a bug: the route raises something unexpected."""

    def __init__(self) -> None:
        self.cfg = detect(fixture("api-echo"))

    @property
    def name(self) -> str:
        return "broken"

    def start_invoke(self, req: InvokeRequest, rid: str | None = None) -> InvocationHandle:
        raise KeyError("a bug in the invoke path")

    async def invoke(self, req: InvokeRequest) -> InvocationRecord:
        raise KeyError("a bug in the invoke path")

    async def close(self) -> None:
        return None


def test_a_route_that_raises_is_a_500_and_is_said_on_the_bus() -> None:
    async def body() -> tuple[int, Any, list[Event]]:
        bus, heard = Bus(), list[Event]()
        bus.subscribe(heard.append)
        api = InvokeAPI({"broken": Broken()}, port=0, bus=bus)
        await api.start()
        try:

            def call() -> tuple[int, Any]:
                conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
                conn.request("POST", "/2015-03-31/functions/broken/invocations", b"{}")
                resp = conn.getresponse()
                return resp.status, json.loads(resp.read())

            status, doc = await asyncio.to_thread(call)
            # the server goes on answering
            again, _ = await asyncio.to_thread(call)
            assert again == 500
        finally:
            await api.stop()
        return status, doc, heard

    status, doc, heard = run(body)
    assert status == 500 and doc["errorType"] == "InternalServerError"
    failure = heard[0]
    assert isinstance(failure, WorkerFailed) and not failure.stopped
    assert failure.worker == "Invoke API (POST /2015-03-31/functions/broken/invocations)"
    assert failure.error == "KeyError: 'a bug in the invoke path'"
    line = _reload_line(failure, quiet=True)
    assert line == (
        "workbench: Invoke API (POST /2015-03-31/functions/broken/invocations) failed: "
        "KeyError: 'a bug in the invoke path'"
    )
