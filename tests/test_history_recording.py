"""invoke and serve record every invocation in the function's history, as users run them."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from tests.conftest import EXAMPLES, StartServer, lambda_client, run_workbench


def _history(folder: Path) -> list[dict[str, object]]:
    done = run_workbench("history", str(folder), "--json")
    assert done.returncode == 0, done.stderr.decode()
    return [json.loads(line) for line in done.stdout.decode().splitlines() if line.strip()]


def test_invoke_records_the_invocation_with_its_event_name(tmp_path: Path) -> None:
    fn = tmp_path / "hello"
    shutil.copytree(EXAMPLES / "hello-python", fn, ignore=shutil.ignore_patterns(".workbench"))
    done = run_workbench("invoke", str(fn), "-e", str(fn / "events" / "hello.json"))
    assert done.returncode == 0
    [entry] = _history(fn)
    assert entry["source"] == "cli"
    assert entry["event_name"] == "hello"
    assert entry["status"] == "ok" and entry["cold"] is True
    assert entry["event"] == {"name": "workbench"}
    assert json.loads(done.stdout) == entry["response"]


def test_serve_records_each_invoke_api_call(serve: StartServer, tmp_path: Path) -> None:
    fn = tmp_path / "hello"
    shutil.copytree(EXAMPLES / "hello-python", fn, ignore=shutil.ignore_patterns(".workbench"))
    server = serve(str(fn), "--port", "0")
    client = lambda_client(server.url)
    ids = [
        client.invoke(FunctionName="hello", Payload=json.dumps({"name": n}).encode())[
            "ResponseMetadata"
        ]["RequestId"]
        for n in ("a", "b")
    ]
    # serve commits on a writer thread, moments after each invoke: wait for both, bounded
    deadline = time.monotonic() + 60
    while len(entries := _history(fn)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [e["request_id"] for e in entries] == list(reversed(ids))  # newest first
    assert {e["source"] for e in entries} == {"invoke-api"}
    assert [e["cold"] for e in entries] == [False, True]
