"""concurrency > 1: parallel invokes get their own execution environments, as Lambda scales
out; never more than the setting allows, and warm ones are reused."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from tests.conftest import StartServer, lambda_client

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

HANDLER = """\
import os, pathlib, time
def handler(event, context):
    start = time.time()
    meet = event.get("meet")
    if meet:  # stay until `together` invokes have arrived, so that they surely overlap
        folder = pathlib.Path(meet)
        (folder / context.aws_request_id).write_text("")
        deadline = time.monotonic() + 60
        while len(list(folder.iterdir())) < event["together"] and time.monotonic() < deadline:
            time.sleep(0.005)
    return {"pid": os.getpid(), "start": start, "end": time.time()}
"""


def _function(tmp_path: Path, concurrency: int) -> Path:
    fn = tmp_path / "pooled"
    fn.mkdir()
    (fn / "app.py").write_text(HANDLER)
    (fn / "workbench.toml").write_text(f"concurrency = {concurrency}\ntimeout = 120\n")
    return fn


def _invoke_together(
    client: LambdaClient,
    count: int,
    meet: Path | None = None,
    together: int = 0,
) -> list[dict[str, float]]:
    """`count` invokes at once; given `meet` (an empty folder), the first `together` of them
    wait in the handler for each other."""
    event = {"meet": str(meet), "together": together} if meet else {}

    def one(_: int) -> dict[str, float]:
        resp = client.invoke(FunctionName="pooled", Payload=json.dumps(event).encode())
        assert "FunctionError" not in resp
        answer: dict[str, float] = json.loads(resp["Payload"].read())
        return answer

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def meeting(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / f"meet-{name}"
    folder.mkdir()
    return folder


def test_parallel_invokes_run_side_by_side_in_separate_environments(
    serve: StartServer, tmp_path: Path
) -> None:
    server = serve(str(_function(tmp_path, 3)), "--port", "0")
    client = lambda_client(server.url)
    results = _invoke_together(client, 3, meeting(tmp_path, "first"), 3)
    assert len({r["pid"] for r in results}) == 3
    # every pair overlapped in time: they ran at once, not one after another
    for a in results:
        for b in results:
            assert a["start"] < b["end"] and b["start"] < a["end"]
    # later invokes reuse the warm environments: no fourth INIT
    again = _invoke_together(client, 3)
    assert {r["pid"] for r in again} <= {r["pid"] for r in results}
    assert sum(line.startswith("INIT_START") for line in server.lines) == 3


def test_never_more_environments_than_the_setting(serve: StartServer, tmp_path: Path) -> None:
    server = serve(str(_function(tmp_path, 2)), "--port", "0")
    results = _invoke_together(lambda_client(server.url), 5, meeting(tmp_path, "five"), 2)
    assert len(results) == 5
    assert len({r["pid"] for r in results}) == 2
    assert sum(line.startswith("INIT_START") for line in server.lines) == 2


def test_quitting_stops_every_environment_of_the_pool(serve: StartServer, tmp_path: Path) -> None:
    import time

    from tests.conftest import processes_with_env

    server = serve(str(_function(tmp_path, 3)), "--port", "0", "--env", "WB_MARK=pool-quit")
    _invoke_together(lambda_client(server.url), 3, meeting(tmp_path, "three"), 3)
    assert len(processes_with_env("WB_MARK=pool-quit")) == 3
    assert server.stop() == 0
    deadline = time.monotonic() + 60
    while processes_with_env("WB_MARK=pool-quit") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_with_env("WB_MARK=pool-quit") == []
