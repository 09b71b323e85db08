"""A kill for memory is shown as such in the response pane, with what to do about it."""

from __future__ import annotations

from workbench.core.record import InvocationRecord, InvokeRequest, InvokeResult
from workbench.ui.widgets.response_view import response_content

BODY = (
    b'{"errorType":"Runtime.OutOfMemory","errorMessage":"RequestId: 5f0cd372-e247-48ae-97b0-'
    b'6beb8f61e831 Error: Runtime exited with error: signal: killed"}'
)


def test_an_out_of_memory_kill_says_so_and_how_to_give_more() -> None:
    rid = "5f0cd372-e247-48ae-97b0-6beb8f61e831"
    record = InvocationRecord(
        function="hog",
        request_id=rid,
        request=InvokeRequest(b'{"mb": 400}'),
        result=InvokeResult(rid, BODY, function_error=True),
        status="crash",
        cold=True,
        started_at=0.0,
        duration_ms=150.0,
        billed_ms=270,
        init_ms=118.0,
        memory_mb=128,
        max_memory_mb=128,
    )
    text = response_content(record).plain
    assert text.startswith("Out of memory  Runtime.OutOfMemory\n")
    assert "Runtime exited with error: signal: killed" in text  # the request id is in the header
    assert "--no-memory-limit" in text and "Crashed" not in text
