"""Asynchronous (`Event`) invokes: a bounded queue per function, fed to it a few at a time.

The service answers an Event invoke with 202 as soon as it has queued it; its own pollers then
invoke the function the way any caller does, competing for the same environments. The queue
here does the same. It hands the function at most `concurrency` events at once (one per
environment the function may run), and the next only when one of those is over. A synchronous
invoke that arrives meanwhile therefore waits behind those few running events, never behind
the whole queue; and since an event joins the function's own line of callers only when the
one before it is over, a synchronous caller already waiting goes first. Events still run in
the order they came.

The queue is bounded by count and by the bytes of the payloads it holds (what costs memory: an
Event payload may be 1 MB). Past either bound an Event invoke is throttled as the service
throttles one: 429 TooManyRequestsException, with a `Reason`. The defaults: 100 events, as
cargo-lambda bounds its per-function queue, and 16 MB, sixteen full-size (1 MB) Event
payloads, so a flood costs `workbench serve` at most that per function.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable

from workbench.core.engine.function import Invocable
from workbench.core.engine.invocation import new_request_id
from workbench.core.engine.payloads import ServiceError
from workbench.core.record import InvocationRecord, InvokeRequest

MAX_EVENTS = 100  # Event invokes waiting for one function
MAX_BYTES = 16 * 1024 * 1024  # ... and their payloads, in bytes
# the service's reason for a function's own limit (its reserved concurrency); the account-wide
# one is ConcurrentInvocationLimitExceeded
THROTTLE_REASON = "ReservedFunctionConcurrentInvocationLimitExceeded"

Lost = Callable[[str, BaseException], None]  # (request id, why): a queued event that never ran


class EventQueue:
    def __init__(
        self,
        function: Invocable,
        on_lost: Lost | None = None,
        max_events: int = MAX_EVENTS,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self.function = function
        self.on_lost = on_lost
        self.max_events = max_events
        self.max_bytes = max_bytes
        self._waiting: collections.deque[tuple[InvokeRequest, str]] = collections.deque()
        self.waiting_bytes = 0
        self.running = 0  # events handed to the function and not over yet

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def _width(self) -> int:
        return max(1, self.function.cfg.concurrency)

    def submit(self, req: InvokeRequest) -> str:
        """Queue an Event invoke (or start it, when the function has room); returns its
        request id. Raises ServiceError: 429 when the queue is full, or whatever the function
        refuses with when it is handed the event at once (a function with no build yet)."""
        if not self._waiting and self.running < self._width():
            rid = new_request_id()
            self._start(req, rid)
            return rid
        size = len(req.payload)
        if len(self._waiting) >= self.max_events or self.waiting_bytes + size > self.max_bytes:
            raise self._throttle()
        rid = new_request_id()
        self._waiting.append((req, rid))
        self.waiting_bytes += size
        return rid

    def _throttle(self) -> ServiceError:
        mb = self.waiting_bytes / (1024 * 1024)
        return ServiceError(
            429,
            "TooManyRequestsException",
            f"Rate Exceeded. {self.function.name} has {len(self._waiting)} Event invokes "
            f"waiting ({mb:.1f} MB of payloads), the most workbench queues for one function "
            f"({self.max_events} invokes, {self.max_bytes // (1024 * 1024)} MB); retry once "
            "some have run",
            reason=THROTTLE_REASON,
        )

    def _start(self, req: InvokeRequest, rid: str) -> None:
        handle = self.function.start_invoke(req, rid)
        self.running += 1
        handle.record.add_done_callback(self._over)

    def _over(self, record: asyncio.Future[InvocationRecord]) -> None:
        self.running -= 1
        if not record.cancelled():
            record.exception()  # seen here: nobody else waits for an Event's record
        self._pump()

    def _pump(self) -> None:
        while self._waiting and self.running < self._width():
            req, rid = self._waiting.popleft()
            self.waiting_bytes -= len(req.payload)
            try:
                self._start(req, rid)
            except Exception as exc:  # refused now (a reload left no build): it is lost
                if self.on_lost is not None:
                    self.on_lost(rid, exc)
