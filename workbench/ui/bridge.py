"""The one place core events enter the UI.

The core emits on the event loop, synchronously and sometimes by the thousand (a function that
floods its output). The bridge only appends to a list; once per frame it hands the whole batch
to the app as one message, so a flood costs the UI one message per frame, not one per line.

Log lines are not even appended: the Session has already put each one in its LogBook, and the
log pane reads what is new from there once per frame. A line only makes sure a frame's message
goes out, so that a flood costs the bridge a type check per line.

Once the app is up, the bridge also moves everything alive then (modules, the widget tree, the
session) out of the garbage collector's sight with gc.freeze(). A flood makes the collector run
full collections, and each walked those ~90,000 long-lived objects: 40-130 ms stalls in the
middle of a flood, now a few ms. close() gives them back.
"""

from __future__ import annotations

import asyncio
import gc
from typing import Any

from textual.app import App

from workbench.core.bus import Bus, Event, InvocationAccepted, InvocationAnswered, LogLine
from workbench.ui.messages import CoreEvents

FRAME_S = 1 / 30
# not kept for the app: log lines are read from the LogBook, and an invocation is shown from
# its record, which follows its acceptance and its answer
_UNSHOWN = frozenset({LogLine, InvocationAccepted, InvocationAnswered})
FREEZE_AFTER_S = 1.0  # by then the first frame is painted and the session started


class Bridge:
    def __init__(self, app: App[Any], bus: Bus, frame_s: float = FRAME_S) -> None:
        self.app = app
        self.frame_s = frame_s
        self._pending: list[Event] = []
        self._timer: asyncio.TimerHandle | None = None
        self._unsubscribe = bus.subscribe(self._on_event)
        self._frozen = False
        self._freeze = asyncio.get_running_loop().call_later(FREEZE_AFTER_S, self._freeze_now)

    def _freeze_now(self) -> None:
        gc.freeze()
        self._frozen = True

    def _on_event(self, event: Event) -> None:
        kind = type(event)
        if kind not in _UNSHOWN:
            self._pending.append(event)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.frame_s, self.flush)

    def flush(self) -> None:
        """Post what came since the last frame (an empty batch when only log lines came)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending = self._pending, []
        self.app.post_message(CoreEvents(batch))

    def close(self) -> None:
        self._unsubscribe()
        self._freeze.cancel()
        if self._frozen:
            self._frozen = False
            gc.unfreeze()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
