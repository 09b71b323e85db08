"""An exit that happens even when the terminal is gone.

Textual's teardown restores the terminal by writing to it. After SIGHUP (the terminal closed)
that write can block forever, and the process then lingers with its terminal gone. The guard
is armed only once workbench's own shutdown is done (functions stopped, history on disk), so
ending the process then loses nothing."""

from __future__ import annotations

import os
import threading

EXIT_GRACE_S = 5.0


class ExitGuard:
    def __init__(self, grace_s: float = EXIT_GRACE_S) -> None:
        self.grace_s = grace_s
        self._timer: threading.Timer | None = None

    def arm(self, code: int = 0) -> None:
        if self._timer is None:
            self._timer = threading.Timer(self.grace_s, os._exit, args=(code,))
            self._timer.daemon = True
            self._timer.start()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    @property
    def armed(self) -> bool:
        return self._timer is not None
