"""concurrency > 1: parallel invokes get their own execution environments, as Lambda scales
out; never more than the setting allows, and warm ones are reused."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.conftest import lambda_client

HANDLER = """\
import os, time
def handler(event, context):
    start = time.time()
    time.sleep(event.get("sleep", 0))
    return {"pid": os.getpid(), "start": start, "end": time.time()}
"""


def _function(tmp_path: Path, concurrency: int) -> Path:
    fn = tmp_path / "pooled"
    fn.mkdir()
    (fn / "app.py").write_text(HANDLER)
    (fn / "workbench.toml").write_text(f"concurrency = {concurrency}\ntimeout = 10\n")
    return fn


def _invoke_together(
    client,
    count: int,  # type: ignore[no-untyped-def]
    sleep: float,
) -> list[dict[str, float]]:
    def one(_: int) -> dict[str, float]:
        resp = client.invoke(FunctionName="pooled", Payload=json.dumps({"sleep": sleep}).encode())
        assert "FunctionError" not in resp
        return json.loads(resp["Payload"].read())

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def test_parallel_invokes_run_side_by_side_in_separate_environments(serve, tmp_path) -> None:
    server = serve(str(_function(tmp_path, 3)), "--port", "0")
    client = lambda_client(server.url)
    results = _invoke_together(client, 3, 0.5)
    assert len({r["pid"] for r in results}) == 3
    # every pair overlapped in time: they ran at once, not one after another
    for a in results:
        for b in results:
            assert a["start"] < b["end"] and b["start"] < a["end"]
    # later invokes reuse the warm environments: no fourth INIT
    again = _invoke_together(client, 3, 0.0)
    assert {r["pid"] for r in again} <= {r["pid"] for r in results}
    assert sum(line.startswith("INIT_START") for line in server.lines) == 3


def test_never_more_environments_than_the_setting(serve, tmp_path) -> None:
    server = serve(str(_function(tmp_path, 2)), "--port", "0")
    results = _invoke_together(lambda_client(server.url), 5, 0.2)
    assert len(results) == 5
    assert len({r["pid"] for r in results}) == 2
    assert sum(line.startswith("INIT_START") for line in server.lines) == 2


def test_quitting_stops_every_environment_of_the_pool(serve, tmp_path) -> None:
    import time

    from tests.conftest import processes_with_env

    server = serve(str(_function(tmp_path, 3)), "--port", "0", "--env", "WB_MARK=pool-quit")
    _invoke_together(lambda_client(server.url), 3, 0.2)
    assert len(processes_with_env("WB_MARK=pool-quit")) == 3
    assert server.stop() == 0
    deadline = time.monotonic() + 5
    while processes_with_env("WB_MARK=pool-quit") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_with_env("WB_MARK=pool-quit") == []
