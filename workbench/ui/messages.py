"""Messages of the UI: facts in the past tense, or explicit requests."""

from __future__ import annotations

from textual.message import Message

from workbench.core.bus import Event


class CoreEvents(Message):
    """What the core said since the last frame, in order (one message per frame at most)."""

    def __init__(self, events: list[Event]) -> None:
        super().__init__()
        self.events = events


class InvokeRequested(Message):
    """The user asked to invoke the active function with this event."""

    def __init__(self, payload: bytes, event_name: str | None) -> None:
        super().__init__()
        self.payload = payload
        self.event_name = event_name


class InvocationSelected(Message):
    """A history row was selected (None: the selection was cleared)."""

    def __init__(self, request_id: str | None) -> None:
        super().__init__()
        self.request_id = request_id


class ReplayRequested(Message):
    def __init__(self, request_id: str) -> None:
        super().__init__()
        self.request_id = request_id


class SaveEventRequested(Message):
    """Save a past invocation's event as a saved event."""

    def __init__(self, request_id: str) -> None:
        super().__init__()
        self.request_id = request_id


class EditEventRequested(Message):
    """Open a past invocation's event in the editor."""

    def __init__(self, request_id: str) -> None:
        super().__init__()
        self.request_id = request_id


class PayloadSwitchRequested(Message):
    """Show the selected invocation's request in place of its response, or back."""
