"""Whether a saved event still gets the response it should: `replay --check` and the pinned
checks that run after each reload judge the same way.

The baseline is the event's expected response (`"expected"` in its sidecar,
`events/.meta/NAME.json`), else the last good response recorded for it in history, leaving out
the ones a check already found different: a regression must not become the next baseline
merely by having been checked once.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from workbench.core.checks.compare import response_diff
from workbench.core.config.function import FunctionConfig
from workbench.core.config.settings import display_path
from workbench.core.history.store import HistoryStore, decode_json
from workbench.core.record import InvocationRecord
from workbench.core.vocab import CheckStatus

NOTHING_YET = "nothing to compare with yet: no expected response and no earlier run"


class CheckError(Exception):
    """A baseline cannot be read (a sidecar that is not JSON); the message says where."""


@dataclass(frozen=True, slots=True)
class Baseline:
    body: bytes
    label: str  # where it comes from, for people: "events/.meta/a.json", "history #12 (...)"


@dataclass(frozen=True, slots=True)
class Verdict:
    status: CheckStatus | Literal["ok"]  # "ok" and "error" without a check
    diff: str | None = None
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.status in ("diff", "error")


def expected_in_meta(cfg: FunctionConfig, name: str) -> Baseline | None:
    """The expected response the event's sidecar holds, if it holds one."""
    meta = cfg.code_dir / cfg.events_dir / ".meta" / f"{name}.json"
    if not meta.is_file():
        return None
    try:
        doc = json.loads(meta.read_bytes())
    except (OSError, ValueError) as exc:
        raise CheckError(f"{display_path(meta)}: not readable JSON: {exc}") from None
    if not isinstance(doc, dict) or "expected" not in doc:
        return None
    body = json.dumps(doc["expected"], ensure_ascii=False).encode()
    return Baseline(body, f'"expected" in {display_path(meta)}')


def history_label(entry: InvocationRecord) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry.started_at))
    return f"history #{entry.id} of {when} (request {entry.request_id[:8]})"


def baseline_for(
    cfg: FunctionConfig, store: HistoryStore | None, name: str, saved: bool = True
) -> Baseline | None:
    """What a run of the event `name` is compared with; `saved`: it is one of the function's
    saved events (which may have a sidecar), not a file from elsewhere."""
    found = expected_in_meta(cfg, name) if saved else None
    if found is None and store is not None:
        past = store.last_for_event(cfg.name, name)
        if past is not None:
            found = Baseline(past.response, history_label(past))
    return found


def error_detail(record: InvocationRecord) -> str:
    """A failed invocation in one line: its error type and message."""
    ok, doc = decode_json(record.result.payload)
    if ok and isinstance(doc, dict):
        kind = doc.get("errorType", record.result.error_type or record.status)
        return f"{kind}: {doc.get('errorMessage', '')}".rstrip(": ")
    return f"{record.status}: {record.result.payload[:200].decode('utf-8', 'replace')}"


def judge(record: InvocationRecord, baseline: Baseline | None, check: bool = True) -> Verdict:
    """An error is an error; otherwise, when checking, the response against the baseline."""
    if record.status != "ok" or record.result.function_error:
        return Verdict("error", None, error_detail(record))
    if not check:
        return Verdict("ok")
    if baseline is None:
        return Verdict("new", None, NOTHING_YET)
    diff = response_diff(
        baseline.body, record.result.payload, f"expected: {baseline.label}", "actual: this run"
    )
    if diff:
        return Verdict("diff", diff, f"differs from {baseline.label}")
    return Verdict("pass", None, f"same as {baseline.label}")


def saved_event_path(cfg: FunctionConfig, name: str) -> Path:
    return cfg.code_dir / cfg.events_dir / f"{name}.json"
