"""A titled pane of the workbench: the unit that ctrl+g (binding id `maximize`) fills the
screen with."""

from __future__ import annotations

from textual.containers import Container


class Pane(Container):
    # A container is not focusable, so Textual would not maximise it by default; the pane
    # (border, title and all) is what should fill the screen, whichever widget in it has focus.
    ALLOW_MAXIMIZE = True
