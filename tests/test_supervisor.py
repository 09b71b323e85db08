"""The supervisor's failure handling with real processes: timeouts, crashes, init failures, stray
child processes, concurrent invokes and floods of output (spec 1.8, 5, 9)."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from pathlib import Path

import pytest

from tests.rt_helpers import (
    REPORT_RE,
    UUID_RE,
    Harness,
    alive,
    billed_from_printed,
    body,
    cli,
    fixture,
    index_of,
    processes_with_env,
    report_of,
    run,
)
from workbench.core.record import InvokeRequest

ISO_TS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


def start_rid(lines: list[str]) -> str:
    starts = [
        m[1]
        for m in (
            re.fullmatch(rf"START RequestId: ({UUID_RE}) Version: \$LATEST", line) for line in lines
        )
        if m
    ]
    assert len(starts) == 1, "\n".join(lines)
    return starts[0]


def init_pid(lines: list[str], prefix: str) -> int:
    pids = [int(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(prefix)]
    assert len(pids) == 1, lines
    return pids[0]


# ---- 3. timeout ----------------------------------------------------------------------------


def test_timeout_through_the_cli() -> None:
    r = cli(fixture("rt-sleepy"), "--timeout", "1", event=b'{"sleep": true}')
    assert r.returncode == 1, r.stderr
    lines = r.stderr.splitlines()
    rid = start_rid(lines)
    assert r.stdout == (
        '{"errorType":"Sandbox.Timedout","errorMessage":"RequestId: '
        + rid
        + ' Error: Task timed out after 1.00 seconds"}\n'
    )
    start = index_of(lines, rf"START RequestId: {rid} Version: \$LATEST")
    said = index_of(lines, rf"{ISO_TS} {rid} Task timed out after 1\.00 seconds", start)
    end = index_of(lines, f"END RequestId: {rid}", said)
    report = REPORT_RE.fullmatch(lines[end + 1])
    assert report and report["rid"] == rid, lines[end + 1]
    assert report["duration"] == "1000.00"  # exactly the timeout
    assert report["init"] is not None
    assert int(report["billed"]) in billed_from_printed(report["duration"], report["init"])
    assert report["status"] in ("Status: timeout", "Status: timeout\t"), lines[end + 1]


def test_a_warm_invoke_times_out_after_quick_ones() -> None:
    """Back-to-back invokes share one deadline timer, moved on when it fires for an invocation
    that has already ended: the slow one after them still times out, at its own deadline."""

    async def body_() -> None:
        async with Harness(fixture("rt-sleepy"), {"timeout_s": 1.0}) as h:
            quick = [await h.invoke({}) for _ in range(3)]
            assert [r.status for r in quick] == ["ok"] * 3
            late = await h.invoke({"sleep": True})
            assert late.status == "timeout" and not late.cold
            assert late.duration_ms == 1000.0
            assert body(late)["errorType"] == "Sandbox.Timedout"
            again = await h.invoke({})
            assert again.status == "ok" and again.cold

    run(body_)


def test_timeout_resets_the_environment() -> None:
    async def body_() -> None:
        async with Harness(fixture("rt-sleepy"), {"timeout_s": 1.0}) as h:
            late = await h.invoke({"sleep": True})
            assert late.status == "timeout"
            assert late.result.function_error
            assert body(late) == {
                "errorType": "Sandbox.Timedout",
                "errorMessage": f"RequestId: {late.request_id} Error: Task timed out after "
                "1.00 seconds",
            }
            assert late.duration_ms == 1000.0
            first_pid = init_pid(late.log_lines, "sleepy: init pid")
            assert not alive(first_pid)  # the timed-out runtime was killed

            again = await h.invoke({})
            assert again.status == "ok" and again.result.payload == b'"awake"'
            assert again.cold and again.init_ms is not None  # a fresh INIT
            assert again.log_lines[0].startswith("INIT_START ")
            assert init_pid(again.log_lines, "sleepy: init pid") != first_pid
            assert report_of(h.lines(), again.request_id)["init"] is not None

    run(body_)


def test_timeout_covers_work_after_the_response() -> None:
    """The caller has its answer as soon as it is posted, but the invocation lasts until the
    runtime asks for the next event; if that does not happen in time, it is a timeout."""

    async def body_() -> None:
        async with Harness(fixture("rt-sleepy"), {"timeout_s": 1.0}) as h:
            assert h.fn is not None
            handle = h.fn.start_invoke(InvokeRequest(b'{"linger": true}'))
            answer = await handle.answer
            assert not handle.record.done()  # answered before the invocation ended
            assert answer.payload == b'"awake"' and not answer.function_error
            rec = await handle.record
            assert rec.status == "timeout"
            assert rec.duration_ms == 1000.0
            report = report_of(h.lines(), rec.request_id)
            assert report["duration"] == "1000.00"
            assert report["status"] in ("Status: timeout", "Status: timeout\t")
            first_pid = init_pid(rec.log_lines, "sleepy: init pid")
            assert not alive(first_pid)

            again = await h.invoke({})
            assert again.status == "ok" and again.cold

    run(body_)


# ---- 4. crash mid-invoke -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "detail"),
    [
        ("exit3", "Runtime exited with error: exit status 3"),
        ("kill9", "Runtime exited with error: signal: killed"),
    ],
)
def test_crash_mid_invoke_then_reinit(action: str, detail: str) -> None:
    async def body_() -> None:
        async with Harness(fixture("rt-crash")) as h:
            crashed = await h.invoke({"action": action})
            rid = crashed.request_id
            assert crashed.status == "crash"
            assert crashed.result.function_error
            assert (
                crashed.result.payload
                == (
                    '{"errorType":"Runtime.ExitError","errorMessage":"RequestId: '
                    + rid
                    + " Error: "
                    + detail
                    + '"}'
                ).encode()
            )
            lines = crashed.log_lines
            fault = index_of(lines, re.escape(f"RequestId: {rid} Error: {detail}"))
            assert lines[fault + 1] == "Runtime.ExitError"
            report = report_of(lines, rid)
            assert int(report["used"]) > 0  # the environment did use memory
            first_pid = init_pid(lines, "crash: init pid")

            after = await h.invoke({})
            assert after.status == "ok" and after.result.payload == b'"ok"'
            assert after.cold and after.init_ms is not None
            assert after.log_lines[0].startswith("INIT_START ")
            assert init_pid(after.log_lines, "crash: init pid") != first_pid

    run(body_)


def test_crash_exit_code_through_the_cli() -> None:
    r = cli(fixture("rt-crash"), event=b'{"action": "exit3"}')
    assert r.returncode == 1
    rid = start_rid(r.stderr.splitlines())
    assert json.loads(r.stdout) == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {rid} Error: Runtime exited with error: exit status 3",
    }


# ---- 5. init failures ----------------------------------------------------------------------

INIT_REPORT = (
    r"INIT_REPORT Init Duration: \d+\.\d\d ms\tPhase: {phase}\tStatus: error"
    r"\tError Type: {type}"
)


def test_runtime_exits_during_init() -> None:
    r = cli(fixture("rt-init-exit"))
    assert r.returncode == 1, r.stderr
    lines = r.stderr.splitlines()
    rid = start_rid(lines)
    assert r.stdout == (
        '{"errorType":"Runtime.ExitError","errorMessage":"RequestId: '
        + rid
        + ' Error: Runtime exited with error: exit status 1"}\n'
    )
    said = "init: DB_URL is not set, giving up"
    i = index_of(lines, "INIT_START .*")
    i = index_of(lines, said, i)
    i = index_of(lines, INIT_REPORT.format(phase="init", type=r"Runtime\.ExitError"), i)
    i = index_of(lines, "INIT_START .*", i)  # init is tried again inside the invoke
    i = index_of(lines, said, i)
    index_of(lines, INIT_REPORT.format(phase="invoke", type=r"Runtime\.ExitError"), i)
    assert sum(line.startswith("INIT_START ") for line in lines) == 2


def test_init_error_posted_by_the_runtime() -> None:
    posted = (
        b'{"errorMessage":"DB_URL is not set","errorType":"Runtime.ConfigError","stackTrace":[]}'
    )
    r = cli(fixture("rt-init-error"))
    assert r.returncode == 1, r.stderr
    assert r.stdout.encode() == posted + b"\n"  # the caller gets the posted document
    lines = r.stderr.splitlines()
    assert lines.count("init/error answered 202") == 2
    i = index_of(lines, INIT_REPORT.format(phase="init", type=r"Runtime\.ConfigError"))
    index_of(lines, INIT_REPORT.format(phase="invoke", type=r"Runtime\.ConfigError"), i)

    async def body_() -> None:
        async with Harness(fixture("rt-init-error")) as h:
            first = await h.invoke({})
            second = await h.invoke({})
            for rec in (first, second):  # every invoke tries INIT again
                assert rec.result.payload == posted
                assert rec.result.function_error and rec.status == "error"
                assert rec.cold
                assert sum(line.startswith("INIT_START ") for line in rec.log_lines) == 2
                assert rec.log_lines.count("init/error answered 202") == 2

    run(body_)


# ---- 6. handler not found ------------------------------------------------------------------


def test_python_handler_not_found() -> None:
    folder = fixture("rt-py-app")
    r = cli(folder, "--runtime", "python3.11", "--handler", "app.nope")
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    assert doc["errorType"] == "Runtime.HandlerNotFound"
    assert doc["errorMessage"] == "Handler 'nope' missing on module 'app'"
    lines = r.stderr.splitlines()
    i = index_of(lines, INIT_REPORT.format(phase="init", type=r"Runtime\.HandlerNotFound"))
    index_of(lines, INIT_REPORT.format(phase="invoke", type=r"Runtime\.HandlerNotFound"), i)

    ok = cli(folder, "--runtime", "python3.11", "--handler", "app.handler")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout) == {"ok": True}


# ---- 10. nothing of a function outlives it -------------------------------------------------


def forked_pids(lines: list[str]) -> list[int]:
    pids = [int(line.split()[1]) for line in lines if re.fullmatch(r"(child|daemon) \d+", line)]
    assert len(pids) % 2 == 0 and pids, lines
    return pids


def test_children_die_with_a_crashed_runtime() -> None:
    marker = f"WB_MARK={uuid.uuid4().hex}"

    async def body_() -> None:
        env = {marker.split("=")[0]: marker.split("=")[1]}
        async with Harness(fixture("rt-forker"), {"env": env}) as h:
            rec = await h.invoke({"action": "crash"})
            assert rec.status == "crash"
            pids = forked_pids(rec.log_lines)
            assert processes_with_env(marker) == []
            assert not any(alive(p) for p in pids)

    run(body_)


def test_children_of_a_warm_runtime_die_on_close() -> None:
    marker = f"WB_MARK={uuid.uuid4().hex}"

    async def body_() -> None:
        env = {marker.split("=")[0]: marker.split("=")[1]}
        async with Harness(fixture("rt-forker"), {"env": env}) as h:
            first = await h.invoke({})
            second = await h.invoke({})
            assert first.status == second.status == "ok"
            assert not second.cold
            pids = forked_pids(first.log_lines) + forked_pids(second.log_lines)
            # while warm, the runtime and everything it started are alive (and findable)
            assert set(pids) <= set(processes_with_env(marker))
            assert h.fn is not None
            await h.fn.close()
            assert processes_with_env(marker) == []
            assert not any(alive(p) for p in pids)

    run(body_)


def test_children_die_when_the_cli_exits() -> None:
    token = uuid.uuid4().hex
    r = cli(fixture("rt-forker"), "--env", f"WB_MARK={token}")
    assert r.returncode == 0, r.stderr
    assert r.stdout == '"forked"\n'
    pids = forked_pids(r.stderr.splitlines())
    assert processes_with_env(f"WB_MARK={token}") == []
    assert not any(alive(p) for p in pids)


# ---- 12. one invocation at a time per environment ------------------------------------------


def test_concurrent_invokes_run_one_after_the_other() -> None:
    async def body_() -> None:
        async with Harness(fixture("rt-serial")) as h:
            assert h.fn is not None
            h1 = h.fn.start_invoke(InvokeRequest(b'{"n": 1}'))
            h2 = h.fn.start_invoke(InvokeRequest(b'{"n": 2}'))
            r1, r2 = await asyncio.gather(h1.record, h2.record)
            assert r1.status == r2.status == "ok"
            assert r1.request_id != r2.request_id
            b1, b2 = sorted((body(r1), body(r2)), key=lambda b: b["start"])
            assert {b1["event"]["n"], b2["event"]["n"]} == {1, 2}
            assert b1["pid"] == b2["pid"]  # one environment
            assert b1["end"] <= b2["start"]  # never overlapping inside the runtime
            # the platform saw them one after the other: START a, END a, REPORT a, START b, ...
            platform = [
                line for line in h.lines("platform") if line.startswith(("START", "END", "REPORT"))
            ]
            first, later = (r1, r2) if b1["event"]["n"] == 1 else (r2, r1)
            kinds = [(line.split()[0], line.split()[2]) for line in platform]
            assert kinds == [
                ("START", first.request_id),
                ("END", first.request_id),
                ("REPORT", first.request_id),
                ("START", later.request_id),
                ("END", later.request_id),
                ("REPORT", later.request_id),
            ]
            assert first.cold and not later.cold
            # the time it waited for the first one (300 ms) is not part of its duration: its
            # clock starts after the first one's work ended and before its own began, and
            # runs to the end of its own work (wall-clock times from both processes)
            b_first, b_later = body(first), body(later)
            assert b_first["end"] <= later.started_at <= b_later["start"]
            assert later.started_at + later.duration_ms / 1000 >= b_later["end"] - 0.001

    run(body_)


# ---- 13. a flood of output -----------------------------------------------------------------


def test_flood_of_output_is_bounded() -> None:
    async def body_() -> None:
        # the flood takes about a second here; the timeout is not what is tested
        async with Harness(fixture("rt-flood"), {"timeout_s": 120.0}) as h:
            rec = await h.invoke({})
            assert rec.status == "ok" and rec.result.payload == b'"flooded"'
            assert rec.log_truncated
            assert len(rec.log_lines) < 200_000
            rid = rec.request_id
            # the newest lines are kept: the flood's tail, then END and REPORT
            assert rec.log_lines[-3:-1] == ["200000", f"END RequestId: {rid}"]
            assert REPORT_RE.fullmatch(rec.log_lines[-1])
            assert rec.log_lines[-4] == "199999"
            # every line still went out on the bus
            assert sum(1 for line in h.lines("stdout")) == 200_000

    run(body_)


def test_init_failure_still_reports_the_memory_it_used(tmp_path: Path) -> None:
    import re

    from tests.conftest import run_workbench

    (tmp_path / "app.py").write_text(
        "ballast = bytearray(48 * 1024 * 1024)\n"
        "ballast[::4096] = b'x' * len(ballast[::4096])  # touch every page\n"
        "import a_module_that_is_not_there\n"
    )
    done = run_workbench("invoke", str(tmp_path), "--handler", "app.handler")
    assert done.returncode == 1
    report = next(
        line for line in done.stderr.decode().splitlines() if line.startswith("REPORT RequestId:")
    )
    found = re.search(r"Max Memory Used: (\d+) MB", report)
    assert found, report
    used = int(found.group(1))
    assert used >= 48, report
