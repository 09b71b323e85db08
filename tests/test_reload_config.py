"""Live reload of configuration (workbench.toml, .env, a SAM template) and of functions with
concurrency > 1: real watchers on temporary folders, real runtimes, the real resolver.

Waits are on the bus's events; where two invokes must overlap, the function itself makes them
meet (each waits for the other's file), so a run one after another could not pass."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from tests.conftest import StartServer, lambda_client, processes_with_env
from tests.test_reload import Events, in_loop
from workbench.core.bus import Bus, ReloadFinished
from workbench.core.config.function import FunctionConfig
from workbench.core.config.resolve import resolve_again, resolve_functions
from workbench.core.engine.pool import FunctionPool
from workbench.core.record import InvokeRequest
from workbench.core.reload.reloader import Reloader

APP = """import os, pathlib, time
VERSION = {version!r}
def handler(event, context):
    meet = event.get("meet")
    if meet:  # two invokes that must overlap: each waits for the other to arrive
        folder = pathlib.Path(meet["dir"])
        (folder / meet["me"]).write_text("here")
        while not (folder / meet["other"]).exists():
            time.sleep(0.005)
    hold = event.get("hold")
    if hold:  # stay in flight until the test lets go
        pathlib.Path(hold + ".started").write_text("")
        while not pathlib.Path(hold).exists():
            time.sleep(0.005)
    return {{"version": VERSION, "greeting": os.environ.get("GREETING"),
             "memory": context.memory_limit_in_mb, "pid": os.getpid(),
             "handler": os.environ["_HANDLER"]}}

def other(event, context):
    return {{"version": "other handler", "greeting": os.environ.get("GREETING")}}
"""


def make_fn(tmp_path: Path, toml: str = "", version: str = "v1") -> Path:
    folder = tmp_path / "cfg-fn"
    folder.mkdir()
    (folder / "app.py").write_text(APP.format(version=version))
    (folder / "workbench.toml").write_text(toml)
    return folder


def reader(target: Path, **kwargs: object) -> tuple[FunctionConfig, Callable[[], FunctionConfig]]:
    """The resolved function and a callable reading it again, as `serve --watch` makes them."""
    fn = resolve_functions([target], **kwargs)[0]  # type: ignore[arg-type]
    return fn.config, lambda: resolve_again(fn).config


@asynccontextmanager
async def watched(target: Path, **kwargs: object) -> AsyncIterator[tuple[Reloader, Events]]:
    cfg, again = reader(target, **kwargs)
    bus = Bus()
    events = Events(bus)
    reloader = Reloader(cfg, bus, resolve=again)
    try:
        assert (await reloader.start()).ok
        yield reloader, events
    finally:
        await reloader.close()


async def call(reloader: Reloader, event: dict[str, object] | None = None) -> dict[str, object]:
    record = await reloader.invoke(InvokeRequest(json.dumps(event or {}).encode()))
    assert record.status == "ok", record.result.payload
    return dict(json.loads(record.result.payload))


async def save(events: Events, path: Path, text: str) -> ReloadFinished:
    n = len(events.items)
    path.write_text(text)
    done: ReloadFinished = await events.wait(ReloadFinished, since=n)
    return done


# ---- configuration files ----


@in_loop
async def test_a_workbench_toml_edit_restarts_with_the_new_settings(tmp_path: Path) -> None:
    folder = make_fn(tmp_path, 'memory = 128\n[environment]\nGREETING = "one"\n')
    async with watched(folder) as (reloader, events):
        first = await call(reloader)
        assert (first["greeting"], first["memory"]) == ("one", "128")
        assert first["handler"] == "app.handler"
        done = await save(
            events,
            folder / "workbench.toml",
            'memory = 256\nhandler = "app.other"\n[environment]\nGREETING = "two"\n',
        )
        assert done.ok and done.changed_paths == ("workbench.toml",)
        assert await call(reloader) == {"version": "other handler", "greeting": "two"}
        assert (reloader.cfg.memory_mb, reloader.cfg.handler) == (256, "app.other")


LAYER_APP = """import shared
def handler(event, context):
    return {"who": shared.WHO}
"""


@in_loop
async def test_layers_changed_in_workbench_toml_are_used_and_watched(tmp_path: Path) -> None:
    for name in ("one", "two"):
        (tmp_path / name / "python").mkdir(parents=True)
        (tmp_path / name / "python" / "shared.py").write_text(f"WHO = {name!r}\n")
    folder = tmp_path / "layered"
    folder.mkdir()
    (folder / "app.py").write_text(LAYER_APP)
    (folder / "workbench.toml").write_text('layers = ["../one"]\n')
    async with watched(folder) as (reloader, events):
        assert await call(reloader) == {"who": "one"}
        done = await save(events, folder / "workbench.toml", 'layers = ["../two"]\n')
        assert done.ok
        assert await call(reloader) == {"who": "two"}
        # the new layer is watched now: a save in it reloads, and the old one no longer does
        edit = await save(events, tmp_path / "two" / "python" / "shared.py", "WHO = 'two, v2'\n")
        assert edit.ok and edit.changed_paths == ("../two/python/shared.py",)
        assert await call(reloader) == {"who": "two, v2"}
        # a save in the old layer, then one in the new: both layers would be in one watch, so
        # had the old one still been watched its change would come first or with the other
        n = len(events.items)
        (tmp_path / "one" / "python" / "shared.py").write_text("WHO = 'one, v2'\n")
        after = await save(events, tmp_path / "two" / "python" / "shared.py", "WHO = 'two, v3'\n")
        assert after.ok and after.changed_paths == ("../two/python/shared.py",)
        assert [e.changed_paths for e in events.of(ReloadFinished, since=n)] == [
            ("../two/python/shared.py",)
        ]
        assert await call(reloader) == {"who": "two, v3"}


@in_loop
async def test_a_gitignored_dotenv_is_watched_and_read_again(tmp_path: Path) -> None:
    folder = make_fn(tmp_path)
    (folder / ".gitignore").write_text(".env\n")
    async with watched(folder) as (reloader, events):
        assert (await call(reloader))["greeting"] is None
        done = await save(events, folder / ".env", "GREETING=from-dotenv\n")
        assert done.ok and done.changed_paths == (".env",)
        assert (await call(reloader))["greeting"] == "from-dotenv"


@in_loop
async def test_a_bad_config_edit_is_reported_and_the_old_version_keeps_serving(
    tmp_path: Path,
) -> None:
    folder = make_fn(tmp_path, '[environment]\nGREETING = "good"\n')
    toml = folder / "workbench.toml"
    async with watched(folder) as (reloader, events):
        await call(reloader)
        bad = await save(events, toml, 'timeout = "ten"\n[environment]\nGREETING = "bad"\n')
        assert not bad.ok and bad.error is not None
        assert 'workbench.toml: "timeout" must be a number of seconds' in bad.error
        assert (await call(reloader))["greeting"] == "good"
        # a code save meanwhile still sees the broken settings: it is refused the same way
        again = await save(events, folder / "app.py", APP.format(version="v2"))
        assert not again.ok and '"timeout"' in (again.error or "")
        assert (await call(reloader))["version"] == "v1"
        fixed = await save(events, toml, 'timeout = 10\n[environment]\nGREETING = "fixed"\n')
        assert fixed.ok
        answer = await call(reloader)  # the code saved while the settings were broken, too
        assert (answer["version"], answer["greeting"]) == ("v2", "fixed")
        assert reloader.cfg.timeout_s == 10


TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Resources:
  Greeter:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: cfg-fn/
      Handler: app.handler
      Runtime: python3.11
      MemorySize: {memory}
      Environment:
        Variables:
          GREETING: {greeting}
"""


@in_loop
async def test_a_template_edit_outside_the_code_folder_is_read_again(tmp_path: Path) -> None:
    make_fn(tmp_path)
    template = tmp_path / "template.yaml"
    template.write_text(TEMPLATE.format(memory=128, greeting="sam-one"))
    async with watched(template) as (reloader, events):
        assert reloader.name == "Greeter"
        assert (await call(reloader))["greeting"] == "sam-one"
        done = await save(events, template, TEMPLATE.format(memory=512, greeting="sam-two"))
        assert done.ok and done.changed_paths == ("../template.yaml",)
        answer = await call(reloader)
        assert (answer["greeting"], answer["memory"]) == ("sam-two", "512")
        renamed = await save(
            events, template, TEMPLATE.replace("Greeter", "Hello").format(memory=512, greeting="x")
        )
        assert not renamed.ok and "Greeter" in (renamed.error or "")
        assert (await call(reloader))["greeting"] == "sam-two"


# ---- concurrency > 1: a pool per version ----


def meeting(folder: Path, me: str, other: str) -> bytes:
    return json.dumps({"meet": {"dir": str(folder), "me": me, "other": other}}).encode()


@in_loop
async def test_concurrent_invokes_run_at_once_and_a_reload_swaps_the_pool(tmp_path: Path) -> None:
    marker = f"WB_POOL_MARK={uuid.uuid4().hex}"
    key, value = marker.split("=")
    folder = make_fn(tmp_path, f'concurrency = 2\ntimeout = 30\n[environment]\n{key} = "{value}"\n')
    meet = tmp_path / "meet"
    meet.mkdir()
    async with watched(folder) as (reloader, events):
        assert isinstance(reloader.current, FunctionPool)
        a = reloader.start_invoke(InvokeRequest(meeting(meet, "a", "b")))
        b = reloader.start_invoke(InvokeRequest(meeting(meet, "b", "a")))
        ra, rb = await a.record, await b.record
        assert ra.status == rb.status == "ok"  # they met: both ran at the same time
        assert json.loads(ra.result.payload)["pid"] != json.loads(rb.result.payload)["pid"]

        hold = tmp_path / "release"
        held = reloader.start_invoke(InvokeRequest(json.dumps({"hold": str(hold)}).encode()))
        while not Path(str(hold) + ".started").exists():
            await asyncio.sleep(0.005)
        old_pool = reloader.current
        done = await save(events, folder / "app.py", APP.format(version="v2"))
        assert done.ok and reloader.current is not old_pool
        meet2 = tmp_path / "meet2"
        meet2.mkdir()
        c = reloader.start_invoke(InvokeRequest(meeting(meet2, "c", "d")))
        d = reloader.start_invoke(InvokeRequest(meeting(meet2, "d", "c")))
        rc, rd = await c.record, await d.record
        assert [json.loads(r.result.payload)["version"] for r in (rc, rd)] == ["v2", "v2"]
        assert not held.record.done()  # still running on the old pool
        hold.write_text("go")
        old = await held.record
        assert old.status == "ok" and json.loads(old.result.payload)["version"] == "v1"
        deadline = time.monotonic() + 60  # the old pool is shut down once idle
        while len(processes_with_env(marker)) > 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert len(processes_with_env(marker)) == 2  # the new pool's two environments
    assert processes_with_env(marker) == []


@in_loop
async def test_raising_concurrency_in_workbench_toml_makes_a_pool(tmp_path: Path) -> None:
    folder = make_fn(tmp_path, "timeout = 30\n")
    meet = tmp_path / "meet"
    meet.mkdir()
    async with watched(folder) as (reloader, events):
        assert not isinstance(reloader.current, FunctionPool)
        done = await save(events, folder / "workbench.toml", "timeout = 30\nconcurrency = 3\n")
        assert done.ok and isinstance(reloader.current, FunctionPool)
        a = reloader.start_invoke(InvokeRequest(meeting(meet, "a", "b")))
        b = reloader.start_invoke(InvokeRequest(meeting(meet, "b", "a")))
        assert (await a.record).status == (await b.record).status == "ok"


# ---- serve --watch, as a user runs it ----


def test_serve_watch_reads_settings_again_and_survives_a_bad_edit(
    serve: StartServer, tmp_path: Path
) -> None:
    folder = make_fn(tmp_path, '[environment]\nGREETING = "one"\n')
    server = serve(str(folder), "--port", "0", "--watch", "-q", "--env", "EXTRA=flag")
    client = lambda_client(server.url)

    def greeting() -> object:
        answer = client.invoke(FunctionName="cfg-fn", Payload=b"{}")
        return json.loads(answer["Payload"].read())["greeting"]

    assert greeting() == "one"
    (folder / "workbench.toml").write_text('[environment]\nGREETING = "two"\n')
    server.wait_for_line(r"reloaded cfg-fn in \d+ ms \(workbench.toml changed")
    assert greeting() == "two"
    (folder / "workbench.toml").write_text('memry = 256\n[environment]\nGREETING = "three"\n')
    line = server.wait_for_line(r"reload of cfg-fn failed")
    assert 'workbench.toml: unknown key "memry"; did you mean "memory"?' in line
    assert "the last good version keeps serving" in line
    assert greeting() == "two"
