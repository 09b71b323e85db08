"""The core speaks in small frozen events; the CLI, the UI and tests subscribe to them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from workbench.core.vocab import CheckStatus, Phase, ShutdownReason, Stream

if TYPE_CHECKING:
    from workbench.core.record import InvocationRecord, InvokeRequest, InvokeResult

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line of an environment's output: function stdout/stderr or a platform line."""

    function: str
    text: str
    stream: Stream
    request_id: str | None
    ts: float
    env: int = 0  # which execution environment printed it (0: none, e.g. a build)


@dataclass(frozen=True, slots=True)
class EnvironmentStarting:
    function: str
    phase: Phase
    env: int = 0  # the environment's id, as its LogLines carry it


@dataclass(frozen=True, slots=True)
class EnvironmentReady:
    function: str
    init_ms: float


@dataclass(frozen=True, slots=True)
class EnvironmentInitFailed:
    function: str
    error_type: str
    init_ms: float
    phase: Phase
    env: int = 0


@dataclass(frozen=True, slots=True)
class EnvironmentStopped:
    function: str
    reason: ShutdownReason


@dataclass(frozen=True, slots=True)
class InvocationStarted:
    function: str
    request_id: str
    cold: bool
    env: int = 0  # the environment it runs in


@dataclass(frozen=True, slots=True)
class InvocationAccepted:
    """An Event (asynchronous) invoke was accepted: its 202 goes out right after this, so
    that history can journal the event first. Its answer and record follow as for any other."""

    function: str
    request_id: str
    request: InvokeRequest = field(repr=False)
    accepted_at: float  # epoch seconds
    memory_mb: int


@dataclass(frozen=True, slots=True)
class InvocationAnswered:
    """The caller's answer is settled: emitted just before it goes out (the runtime's
    /response, a timeout, a crash, a failed init), so that a listener that must have it on
    disk first (history's journal) can write it while the caller still waits. The record
    follows with InvocationFinished, once the runtime asks for the next event."""

    function: str
    request_id: str
    request: InvokeRequest = field(repr=False)
    result: InvokeResult = field(repr=False)
    started_at: float  # epoch seconds, as the record will say
    cold: bool
    init_ms: float | None
    memory_mb: int


@dataclass(frozen=True, slots=True)
class InvocationFinished:
    function: str
    record: InvocationRecord = field(repr=False)


@dataclass(frozen=True, slots=True)
class ChangeDetected:
    """Files of the function changed on disk (paths relative to its code folder)."""

    function: str
    paths: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BuildStarted:
    function: str


@dataclass(frozen=True, slots=True)
class BuildFinished:
    function: str
    ok: bool
    duration_ms: float
    output_tail: str  # the last lines of the compiler's output, for a failure's message
    cancelled: bool = False  # a newer save stopped it; another build follows


@dataclass(frozen=True, slots=True)
class ReloadFinished:
    """One reload: the new code serving (ok), or the last good version still serving."""

    function: str
    changed_paths: tuple[str, ...]  # empty for a reload asked for without a change
    build_ms: float | None  # None when the function does not build
    init_ms: float | None  # the new environment's eager init; None when it never started
    save_to_ready_ms: float  # from the last save (the newest file time) to ready
    ok: bool
    error: str | None = None


@dataclass(frozen=True, slots=True)
class PinnedCheckFinished:
    """A pinned saved event, run again after a successful reload, and its verdict."""

    function: str
    event_name: str
    request_id: str  # "" when the event could not even be sent (unreadable, not JSON)
    ok: bool  # the response is what was expected (or there was nothing to compare with yet)
    status: CheckStatus  # "new": nothing to compare with yet
    diff: str | None  # a unified diff of expected against actual, when they differ
    detail: str  # in words: what it was compared with, or the error


@dataclass(frozen=True, slots=True)
class WorkerFailed:
    """Something of workbench's own failed unexpectedly: a background loop (watcher, reload),
    a bus subscriber, a server's route. Shown (the TUI's notice and log, serve's stderr),
    never swallowed."""

    function: str  # "" when it belongs to no one function (the Invoke API, a subscriber)
    worker: str
    error: str
    stopped: bool = True  # the loop is gone; False: one call failed and it goes on

    def summary(self) -> str:
        who = f"{self.function}: " if self.function else ""
        return f"{who}{self.worker} {'stopped' if self.stopped else 'failed'}: {self.error}"


def failure_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


Event = (
    LogLine
    | EnvironmentStarting
    | EnvironmentReady
    | EnvironmentInitFailed
    | EnvironmentStopped
    | InvocationStarted
    | InvocationAccepted
    | InvocationAnswered
    | InvocationFinished
    | ChangeDetected
    | BuildStarted
    | BuildFinished
    | ReloadFinished
    | PinnedCheckFinished
    | WorkerFailed
)
Subscriber = Callable[[Event], None]


class Bus:
    """Synchronous fan-out. A subscriber that raises is kept, and its failure is said on the
    bus as a WorkerFailed (so the TUI and serve show it): one bad listener must not stop an
    invocation from finishing, nor fail unseen."""

    def __init__(self) -> None:
        # a tuple, replaced on (rare) changes: emit runs for every log line and must not copy
        self._subscribers: tuple[Subscriber, ...] = ()
        self._reporting = False  # a failure while saying a failure is only logged

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        self._subscribers = (*self._subscribers, fn)

        def unsubscribe() -> None:
            subs = list(self._subscribers)
            subs.remove(fn)
            self._subscribers = tuple(subs)

        return unsubscribe

    def emit(self, event: Event) -> None:
        for fn in self._subscribers:
            try:
                fn(event)
            except Exception as exc:  # isolate listeners from the engine
                self._subscriber_failed(fn, event, exc)

    def _subscriber_failed(self, fn: Subscriber, event: Event, exc: Exception) -> None:
        log.exception("bus subscriber %r failed on %r", fn, event)
        if self._reporting:
            return
        self._reporting = True
        try:
            name = getattr(fn, "__qualname__", repr(fn))
            where = f"{type(event).__name__} to {name}"
            self.emit(WorkerFailed("", f"a listener ({where})", failure_text(exc), False))
        finally:
            self._reporting = False
