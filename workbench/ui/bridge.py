"""The one place core events enter the UI.

The core emits on the event loop, synchronously and sometimes by the thousand (a function that
floods its output). The bridge only appends to a list; once per frame it hands the whole batch
to the app as one message, so a flood costs the UI one message per frame, not one per line.
"""

from __future__ import annotations

import asyncio

from textual.app import App

from workbench.core.bus import Bus, Event
from workbench.ui.messages import CoreEvents

FRAME_S = 1 / 30


class Bridge:
    def __init__(self, app: App[object], bus: Bus, frame_s: float = FRAME_S) -> None:
        self.app = app
        self.frame_s = frame_s
        self._pending: list[Event] = []
        self._timer: asyncio.TimerHandle | None = None
        self._unsubscribe = bus.subscribe(self._on_event)

    def _on_event(self, event: Event) -> None:
        self._pending.append(event)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.frame_s, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._pending:
            batch, self._pending = self._pending, []
            self.app.post_message(CoreEvents(batch))

    def close(self) -> None:
        self._unsubscribe()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
