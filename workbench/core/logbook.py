"""The whole log of a session, kept in the core: every line, numbered, with where each
invocation's lines are (its cold start's INIT lines included), so that a front end holding a
bounded window of lines can refill it for any filter without asking the functions again."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from workbench.core.bus import LogLine, ReloadFinished
from workbench.core.vocab import Stream

LOG_LIMIT = 1_000_000  # lines the session keeps; the UI shows a bounded window of them
# ... and characters of text: a line may be up to 1 MB (engine/procs.py, MAX_LINE), so a
# count of lines alone bounds nothing. About a line of 130 characters each, when full.
CHARS_LIMIT = 128 * 1024 * 1024


# One line as the LogBook keeps it: (function, text, stream, request_id, ts, env), LogLine's
# fields.
# A tuple of strings and a float is untracked by the garbage collector once it has been seen,
# so a million kept lines cost the full collections nothing; a million LogLine objects made
# each one walk them all (60-130 ms stalls in the middle of a flood).
Entry = tuple[str, str, Stream, str | None, float, int]
NOT_INIT_STREAMS: tuple[Stream, ...] = (
    "build",
    "workbench",
)  # lines that never belong to an environment's INIT
SPANS_KEPT = 10_000  # requests whose place in the log is remembered


@dataclass(slots=True)
class Span:
    """Where one invocation's lines are in the log, by sequence number (the n-th line ever
    added): from its START to its record (`end` None while it runs), and for a cold start the
    INIT before it, whose lines carry no request id but belong to it."""

    function: str
    start: int
    end: int | None = None
    init_start: int | None = None
    init_envs: tuple[int, ...] = ()  # the environments whose INIT lines are its own


class LogBook:
    """Every log line of the session, oldest dropped past `limit` lines or `chars_limit`
    characters of text (the newest line is always kept). The UI's log widget holds a few
    thousand lines; it reads new ones from here each frame and refills from here when the
    user changes a filter. Lines are addressed by sequence number: `first` is the oldest kept,
    `total` the next to come, so a reader can scan a range while lines keep arriving.

    The book holds each line's text as the bus carried it: the same str the invocation's
    record keeps, never a copy."""

    def __init__(self, limit: int = LOG_LIMIT, chars_limit: int = CHARS_LIMIT) -> None:
        self.limit = limit
        self.chars_limit = chars_limit
        self._lines: list[Entry] = []
        self._base = 0  # sequence number of _lines[0]; dropped lines linger until a compaction
        self.first = 0  # the oldest line kept
        self.total = 0  # every line ever added, dropped ones included
        self._full = limit  # past this total, the oldest line goes
        self.chars = 0  # characters of the lines kept
        self._lingering = 0  # ... and of the dropped ones not compacted away yet
        self._spans: dict[str, Span] = {}
        # environment -> (function, where its INIT began, the environments that INIT spans:
        # more than one after a failed INIT and its retry)
        self._init_open: dict[int, tuple[str, int, tuple[int, ...]]] = {}
        self._failed: dict[str, tuple[int, tuple[int, ...]]] = {}  # function -> failed INIT
        self._latest: dict[str | None, str] = {}  # function (None: any) -> newest request

    def add(self, line: LogLine) -> None:
        # the hot path of a flood: one tuple, one append
        text = line.text
        self._lines.append((line.function, text, line.stream, line.request_id, line.ts, line.env))
        self.total += 1
        self.chars += len(text)
        if self.total > self._full or self.chars > self.chars_limit:
            self._drop()

    def _drop(self) -> None:
        lines, base = self._lines, self._base
        first = self.first
        gone = 0
        while first < self.total - 1 and (
            self.total - first > self.limit or self.chars - gone > self.chars_limit
        ):
            gone += len(lines[first - base][1])
            first += 1
        self.first = first
        self.chars -= gone
        self._lingering += gone
        self._full = first + self.limit
        # amortised: once per limit/4 lines, or a quarter of the text's room
        if first - base >= max(self.limit // 4, 1) or self._lingering >= self.chars_limit // 4:
            del lines[: first - base]
            self._base = first
            self._lingering = 0

    def __len__(self) -> int:
        return self.total - self.first

    def entries(self, lo: int, hi: int) -> list[Entry]:
        """The lines numbered lo .. hi-1 that are still kept, oldest first."""
        lo = max(lo, self.first)
        if hi <= lo:
            return []
        return self._lines[lo - self._base : hi - self._base]

    def last(self, n: int, keep: Callable[[LogLine], bool] | None = None) -> list[LogLine]:
        """The newest `n` lines that `keep` accepts, oldest first."""
        out: list[LogLine] = []
        for entry in reversed(self.entries(self.first, self.total)):
            line = LogLine(*entry)
            if keep is None or keep(line):
                out.append(line)
                if len(out) >= n:
                    break
        out.reverse()
        return out

    # ---- where each invocation's lines are ----

    def init_started(self, function: str, env: int, phase: str) -> None:
        """Environment `env` begins INIT: its lines, up to the START they lead to, are that
        invocation's. Environments side by side (concurrency) are told apart by their ids. An
        INIT inside the invoke retries one that failed: both are the same invocation's."""
        start: int = self.total
        envs: tuple[int, ...] = (env,)
        if phase == "invoke" and function in self._failed:
            start, envs = self._failed.pop(function)
            envs = (*envs, env)
        self._init_open[env] = (function, start, envs)

    def init_failed(self, function: str, env: int) -> None:
        opened = self._init_open.pop(env, None)
        if opened is not None:
            self._failed[function] = (opened[1], opened[2])

    def request_started(self, function: str, request_id: str, cold: bool, env: int) -> None:
        opened = self._init_open.pop(env, None)  # warm: a prewarm's INIT is nobody's
        init: tuple[int, tuple[int, ...]] | None = opened[1:] if opened is not None else None
        if init is None and cold:  # its INIT failed (retry included): still its lines
            init = self._failed.pop(function, None)
        start, envs = init if cold and init is not None else (None, ())
        self._spans[request_id] = Span(function, self.total, None, start, envs)
        if len(self._spans) > SPANS_KEPT:
            del self._spans[next(iter(self._spans))]
        self._latest[function] = self._latest[None] = request_id

    def request_finished(self, request_id: str) -> None:
        span = self._spans.get(request_id)
        if span is not None:
            span.end = self.total

    def span(self, request_id: str) -> Span | None:
        return self._spans.get(request_id)

    def latest_request(self, function: str | None = None) -> str | None:
        """The invocation that started last (of `function`, or of any)."""
        return self._latest.get(function)


def reload_line(event: ReloadFinished) -> str:
    """The log's line for a reload: what changed, and from the save to ready."""
    what = (
        (
            ", ".join(event.changed_paths[:3])
            + (" ..." if len(event.changed_paths) > 3 else "")
            + " changed"
        )
        if event.changed_paths
        else "asked for, no change"
    )
    if not event.ok:
        return f"reload failed ({what}): {event.error}; the last good version keeps serving"
    parts = [f"build {event.build_ms:.0f} ms"] if event.build_ms is not None else []
    parts += [f"init {event.init_ms:.0f} ms"] if event.init_ms is not None else []
    detail = f" ({', '.join(parts)})" if parts else ""
    return f"reloaded: {what}; ready {event.save_to_ready_ms:.0f} ms after the save{detail}"
