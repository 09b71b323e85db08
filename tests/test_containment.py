"""No process a function starts outlives its execution environment: plain children, children
that `setsid`, and children that `setsid` with an emptied environment (`env -i`), each
orphaned by a double fork, 51 in all; however the environment ends (workbench invoke exiting,
a timeout reset, a reload, serve stopped by SIGTERM, serve killed by `kill -9`).

Each leaked process writes its pid into a folder the test owns, which survives `env -i`; the
test then waits (bounded) until every one of them is gone (a zombie waiting for PID 1 to reap
it counts as gone: it runs nothing)."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, Server
from tests.rt_helpers import cli
from tests.test_reload import Events, in_loop
from workbench.core.bus import Bus, ReloadFinished
from workbench.core.config.function import detect
from workbench.core.engine import containment, procs
from workbench.core.engine.function import Function
from workbench.core.record import InvokeRequest
from workbench.core.reload.reloader import Reloader

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not containment.shared().available,
        reason="no cgroup can be made here: setsid with env -i cannot be followed",
    ),
]
LEAKER = FIXTURES / "py-leaker"
KINDS = ("plain", "setsid", "setsid-env-i")
COUNT = 51


def leak_event(pids: Path, **extra: object) -> bytes:
    return json.dumps({"pids": str(pids), "n": COUNT, **extra}).encode()


def leaked(pids: Path) -> dict[str, int]:
    """name -> pid of every leaked process, once all have written their pid."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        files = list(pids.iterdir())
        if len(files) == COUNT and all(f.read_text().strip() for f in files):
            return {f.name: int(f.read_text()) for f in files}
        time.sleep(0.05)
    raise AssertionError(f"only {len(list(pids.iterdir()))} of {COUNT} leaked processes started")


def survivors(found: dict[str, int], timeout: float = 30) -> list[str]:
    deadline = time.monotonic() + timeout
    alive = list(found)
    while alive and time.monotonic() < deadline:
        alive = [name for name in alive if not procs.is_gone(found[name])]
        time.sleep(0.05)
    return alive


def test_every_kind_is_really_started_and_left_running(tmp_path: Path) -> None:
    """The premise: without its environment ending, all 51 run, a third each kind."""

    async def body() -> dict[str, int]:
        fn = Function(detect(LEAKER).with_overrides(timeout_s=120.0), Bus())
        try:
            rec = await fn.invoke(InvokeRequest(leak_event(tmp_path)))
            assert rec.status == "ok", rec.result.payload
            found = leaked(tmp_path)
            assert not [n for n, pid in found.items() if procs.is_gone(pid)]
            return found
        finally:
            await fn.close()

    import asyncio

    found = asyncio.run(body())
    assert {name.rsplit("-", 1)[0] for name in found} == set(KINDS)
    assert survivors(found) == []


def test_workbench_invoke_leaves_none_when_it_exits(tmp_path: Path) -> None:
    done = cli(LEAKER, event=leak_event(tmp_path), timeout=120)
    assert done.returncode == 0, done.stderr
    assert survivors(leaked(tmp_path)) == []


@in_loop
async def test_a_timeout_reset_leaves_none(tmp_path: Path) -> None:
    fn = Function(detect(LEAKER).with_overrides(timeout_s=60.0), Bus())
    try:
        rec = await fn.invoke(InvokeRequest(leak_event(tmp_path, hang=True)))
        assert rec.status == "timeout"
        # workbench goes on; the environment that timed out took its whole tree with it
        assert survivors(leaked(tmp_path)) == []
    finally:
        await fn.close()


@in_loop
async def test_a_reload_leaves_none_of_the_old_version(tmp_path: Path) -> None:
    folder = tmp_path / "fn"
    folder.mkdir()
    (folder / "app.py").write_text((LEAKER / "app.py").read_text())
    pids = tmp_path / "pids"
    pids.mkdir()
    bus = Bus()
    events = Events(bus)
    reloader = Reloader(detect(folder).with_overrides(timeout_s=120.0), bus)
    try:
        assert (await reloader.start()).ok
        rec = await reloader.invoke(InvokeRequest(leak_event(pids)))
        assert rec.status == "ok", rec.result.payload
        found = leaked(pids)
        (folder / "app.py").write_text((folder / "app.py").read_text() + "\n# saved again\n")
        assert (await events.wait(ReloadFinished)).ok
        assert survivors(found) == []
    finally:
        await reloader.close()


def invoke_through(server: Server, event: bytes) -> None:
    req = urllib.request.Request(
        f"{server.url}/2015-03-31/functions/py-leaker/invocations", data=event, method="POST"
    )
    with urllib.request.urlopen(req, timeout=120) as resp:
        assert json.loads(resp.read()) == {"started": COUNT}


@pytest.mark.parametrize("ending", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "kill-9"])
def test_serve_leaves_none_however_it_ends(tmp_path: Path, ending: signal.Signals) -> None:
    server = Server(str(LEAKER), "--port", "0")
    try:
        invoke_through(server, leak_event(tmp_path))
        found = leaked(tmp_path)
        os.kill(server.proc.pid, ending)
        server.proc.wait(60)
        assert survivors(found) == []
    finally:
        server.stop()
