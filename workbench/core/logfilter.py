"""Which lines of the session's LogBook a log view shows: text, a least level, one request
(its cold start's INIT included), one function; and a scan of the book that reads backwards
from the newest line and lets its caller pause between slices. Pure: the TUI's log pane uses
it, and so could any front end."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence

from workbench.core.logbook import NOT_INIT_STREAMS, Entry, LogBook

SLICE = 20_000  # lines a scan checks before it yields (a few ms)
LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
_RANK = {**{lv: i for i, lv in enumerate(LEVELS)}, "WARNING": 3, "CRITICAL": 5}
_LEVEL_WORDS = "TRACE|DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|FATAL"
# `[INFO]\t...` (Lambda's Python runtime), `INFO ...` / `ERROR:root:...`, or logfmt
_TEXT_LEVEL = re.compile(rf"^\s*\[?({_LEVEL_WORDS})\]?\b|\blevel=\"?({_LEVEL_WORDS})\b", re.I)
# `{"level": "INFO", ...}`; a regex, not json.loads: a level filter checks every line
_JSON_LEVEL = re.compile(r'"(?:level|levelname|severity|log\.level)"\s*:\s*"(\w+)"', re.I)

Predicate = Callable[[Entry], bool]
Segment = tuple[int, int, Predicate | None]  # lines lo .. hi-1 of the book, and what to keep


def line_level(text: str) -> str | None:
    """The level of a line: a JSON line's `level` / `levelname` / `severity`; a line that
    starts with one (`[INFO]`, as Lambda's Python runtime writes); Node's tab-separated
    `time, request id, LEVEL, message`; or logfmt's `level=`. None when it has none."""
    if text[:1] == "{" or text.lstrip()[:1] == "{":
        m = _JSON_LEVEL.search(text)
        word = m.group(1) if m else None
    elif text.count("\t") >= 3 and text.split("\t", 3)[2].upper() in _RANK:
        word = text.split("\t", 3)[2]
    else:
        m = _TEXT_LEVEL.search(text)
        word = (m.group(1) or m.group(2)) if m else None
    if word is None:
        return None
    rank = _RANK.get(word.upper())
    return LEVELS[rank] if rank is not None else None


class LineFilter:
    """What the pane shows: text (any case), a least level, one request, one function."""

    def __init__(
        self,
        text: str = "",
        level: str | None = None,
        request_id: str | None = None,
        function: str | None = None,
    ) -> None:
        self.text = text
        self.level = level if level in LEVELS else None
        self.request_id = request_id
        self.function = function

    def as_dict(self) -> dict[str, str | None]:
        return {
            "text": self.text,
            "level": self.level,
            "request_id": self.request_id,
            "function": self.function,
        }

    def predicate(self) -> Predicate | None:
        """The test of text, level and function on one line; None: every line passes."""
        needle, fn = self.text.lower(), self.function
        least = _RANK[self.level] if self.level is not None else None
        if not needle and least is None and fn is None:
            return None

        def keep(e: Entry) -> bool:
            if fn is not None and e[0] and e[0] != fn:  # "": workbench's own, for all
                return False
            if needle and needle not in e[1].lower():
                return False
            if least is not None:
                level = line_level(e[1])
                return level is not None and _RANK[level] >= least
            return True

        return keep

    def segments(self, book: LogBook, lo: int, hi: int) -> list[Segment]:
        """The parts of lines lo .. hi-1 to scan, oldest first, each with its test. With a
        request: its INIT (a cold start's lines before START carry no request id) and its
        run; a request the book never saw (an earlier session's) has none."""
        base = self.predicate()
        rid = self.request_id
        if rid is None:
            return [(lo, hi, base)] if hi > lo else []
        span = book.span(rid)
        if span is None:
            return []

        def own(e: Entry) -> bool:
            return e[3] == rid and (base is None or base(e))

        def init(e: Entry) -> bool:
            ours = e[3] == rid or (
                e[3] is None and e[5] in span.init_envs and e[2] not in NOT_INIT_STREAMS
            )
            return ours and (base is None or base(e))

        parts: list[Segment] = []
        if span.init_start is not None:
            parts.append((max(lo, span.init_start), min(hi, span.start), init))
        end = span.end if span.end is not None else hi
        parts.append((max(lo, span.start), min(hi, end), own))
        return [p for p in parts if p[1] > p[0]]


def scan(
    book: LogBook, segments: Sequence[Segment], want: int, found: list[Entry]
) -> Iterator[None]:
    """Collect into `found` (newest first) the newest `want` lines the segments keep, reading
    backwards; yields after each SLICE lines checked, so a caller can let the loop run."""
    for lo, hi, keep in reversed(segments):
        if keep is None:  # nothing to test: the newest lines are the answer
            found.extend(reversed(book.entries(max(lo, hi - (want - len(found))), hi)))
        else:
            top = hi
            while top > lo and len(found) < want:
                bottom = max(lo, top - SLICE)
                for e in reversed(book.entries(bottom, top)):
                    if keep(e):
                        found.append(e)
                        if len(found) >= want:
                            break
                top = bottom
                yield
        if len(found) >= want:
            return


def work_of(segments: Sequence[Segment]) -> int:
    """Lines a scan may have to check (a segment without a test is read, not checked)."""
    return sum(hi - lo for lo, hi, keep in segments if keep is not None)
