"""The Event (asynchronous) queue through `workbench serve`: bounded by count and by payload bytes,
throttled past that as the service throttles (429 TooManyRequestsException with a Reason), and a
synchronous invoke never waits behind the queue, only behind the event that is running."""

from __future__ import annotations

import http.client
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Server, StartServer, lambda_client

MIB = 1024 * 1024
REASON = "ReservedFunctionConcurrentInvocationLimitExceeded"

HELD = """\
import os
import time


def handler(event, context):
    hold = event.get("hold")
    if hold:  # wait for the test to let it go (a function busy for as long as it likes)
        deadline = time.monotonic() + 110
        while not os.path.exists(hold) and time.monotonic() < deadline:
            time.sleep(0.01)
    with open(event["order"], "a") as fh:
        fh.write(event.get("kind", "event") + "\\n")
    return {"kind": event.get("kind", "event")}
"""


def _function(tmp_path: Path) -> Path:
    folder = tmp_path / "held"
    folder.mkdir()
    (folder / "app.py").write_text(HELD)
    (folder / "workbench.toml").write_text("timeout = 120\n")
    return folder


def _event(tmp_path: Path, size: int = 0, **fields: str) -> bytes:
    """An event for HELD, padded to exactly `size` bytes when given."""
    doc: dict[str, Any] = {"order": str(tmp_path / "order"), **fields, "pad": ""}
    if size:
        doc["pad"] = "p" * (size - len(json.dumps(doc).encode()))
    body = json.dumps(doc).encode()
    assert not size or len(body) == size
    return body


def _post(
    conn: http.client.HTTPConnection, body: bytes, kind: str = "Event"
) -> tuple[int, dict[str, str], bytes]:
    conn.request(
        "POST",
        "/2015-03-31/functions/held/invocations",
        body=body,
        headers={"X-Amz-Invocation-Type": kind},
    )
    resp = conn.getresponse()
    return resp.status, dict(resp.getheaders()), resp.read()


def _order(tmp_path: Path) -> list[str]:
    path = tmp_path / "order"
    return path.read_text().split() if path.exists() else []


def _wait(what: str, done: Any, timeout: float = 100) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"waited in vain for {what}"
        time.sleep(0.01)


def _hwm_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))


def _queues(port: int, local: int) -> tuple[int, int] | None:
    """(bytes the client has sent that are not acknowledged, bytes the server has received
    that it has not read) for the connection from `local` to `port`, from /proc/net/tcp."""
    sent = unread = None
    with open("/proc/net/tcp") as fh:
        for row in fh.readlines()[1:]:
            fields = row.split()
            here, there = (int(a.split(":")[1], 16) for a in fields[1:3])
            tx, rx = (int(q, 16) for q in fields[4].split(":"))
            if (here, there) == (local, port):
                sent = tx
            elif (here, there) == (port, local):
                unread = rx
    return None if sent is None or unread is None else (sent, unread)


def _throttled(status: int, headers: dict[str, str], body: bytes) -> None:
    """A 429 exactly as the service answers a throttle."""
    assert status == 429
    assert headers["X-Amzn-ErrorType"] == "TooManyRequestsException"
    assert headers["Content-Type"] == "application/json" and headers["X-Amzn-RequestId"]
    doc = json.loads(body)
    assert set(doc) == {"Type", "Message", "Reason"}
    assert doc["Type"] == "User" and doc["Reason"] == REASON
    assert doc["Message"].startswith("Rate Exceeded.")


def _release(tmp_path: Path) -> None:
    (tmp_path / "release").touch()


@pytest.mark.integration  # 200 MB of events
def test_200_queued_1_mb_events_are_throttled_past_16_mb_and_a_sync_invoke_goes_first(
    tmp_path: Path, serve: StartServer
) -> None:
    server = serve(str(_function(tmp_path)), "--port", "0", "-q")
    hold = str(tmp_path / "release")
    full = _event(tmp_path, 1_048_576, hold=hold)  # the largest Event payload there is
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    answers = [_post(conn, full) for _ in range(200)]
    statuses = [status for status, _, _ in answers]
    # one event runs (held); 16 MB of them wait; the rest are throttled, at once
    assert statuses == [202] * 17 + [429] * 183
    for answer in answers[17:]:
        _throttled(*answer)
    assert "16 Event invokes waiting (16.0 MB of payloads)" in json.loads(answers[-1][2])["Message"]

    client = lambda_client(server.url)  # botocore knows the throttle by its name
    with pytest.raises(client.exceptions.TooManyRequestsException) as caught:
        client.invoke(FunctionName="held", InvocationType="Event", Payload=full)
    assert caught.value.response["Reason"] == REASON  # type: ignore[typeddict-item]
    assert caught.value.response["Error"]["Code"] == "TooManyRequestsException"
    peak_mb = _hwm_kb(server.proc.pid) / 1024
    assert peak_mb < 150, f"serve peaked at {peak_mb:.0f} MB"

    # A synchronous invoke while the queue is full: once serve has read it, it waits behind
    # the one event that runs, not behind the 16 that wait.
    sync = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    sync.request(
        "POST", "/2015-03-31/functions/held/invocations", body=_event(tmp_path, kind="sync")
    )
    local = sync.sock.getsockname()[1]
    _wait("serve to read the sync invoke", lambda: _queues(server.port, local) == (0, 0))
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(sync.getresponse().read()))
    reader.start()
    _release(tmp_path)
    reader.join(120)
    assert got == [b'{"kind": "sync"}']
    _wait("the queued events to run", lambda: len(_order(tmp_path)) == 18)
    assert _order(tmp_path) == ["event", "sync", *["event"] * 16]


def test_the_queue_holds_at_most_100_events_and_runs_them_all(
    tmp_path: Path, serve: StartServer
) -> None:
    server: Server = serve(str(_function(tmp_path)), "--port", "0")
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    small = _event(tmp_path, hold=str(tmp_path / "release"))
    answers = [_post(conn, small) for _ in range(150)]
    assert [status for status, _, _ in answers] == [202] * 101 + [429] * 49
    _throttled(*answers[-1])
    assert "has 100 Event invokes waiting" in json.loads(answers[-1][2])["Message"]
    ids = [headers["X-Amzn-RequestId"] for _, headers, _ in answers[:101]]
    assert len(set(ids)) == 101
    _release(tmp_path)
    _wait("every accepted event to run", lambda: len(_order(tmp_path)) == 101)
    for rid in (ids[0], ids[-1]):  # the first ran at once, the last from the queue
        server.wait_for_line(rf"^END RequestId: {rid}")
    # the queue has room again
    assert _post(conn, _event(tmp_path))[0] == 202
    _wait("the event after them", lambda: len(_order(tmp_path)) == 102)
