"""The core speaks in small frozen events; the CLI, the UI and tests subscribe to them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workbench.core.record import InvocationRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line of an environment's output: function stdout/stderr or a platform line."""

    function: str
    text: str
    stream: str  # "stdout", "stderr" or "platform"
    request_id: str | None
    ts: float


@dataclass(frozen=True, slots=True)
class EnvironmentStarting:
    function: str
    phase: str  # "init" or "invoke" (a suppressed init inside an invoke)


@dataclass(frozen=True, slots=True)
class EnvironmentReady:
    function: str
    init_ms: float


@dataclass(frozen=True, slots=True)
class EnvironmentInitFailed:
    function: str
    error_type: str
    init_ms: float
    phase: str


@dataclass(frozen=True, slots=True)
class EnvironmentStopped:
    function: str
    reason: str  # "spindown", "timeout", "failure"


@dataclass(frozen=True, slots=True)
class InvocationStarted:
    function: str
    request_id: str
    cold: bool


@dataclass(frozen=True, slots=True)
class InvocationFinished:
    function: str
    record: InvocationRecord = field(repr=False)


Event = (
    LogLine
    | EnvironmentStarting
    | EnvironmentReady
    | EnvironmentInitFailed
    | EnvironmentStopped
    | InvocationStarted
    | InvocationFinished
)
Subscriber = Callable[[Event], None]


class Bus:
    """Synchronous fan-out. A subscriber that raises is logged and kept: one bad listener must
    not stop an invocation from finishing."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        self._subscribers.append(fn)
        return lambda: self._subscribers.remove(fn)

    def emit(self, event: Event) -> None:
        for fn in list(self._subscribers):
            try:
                fn(event)
            except Exception:  # isolate listeners from the engine
                log.exception("bus subscriber %r failed on %r", fn, event)
