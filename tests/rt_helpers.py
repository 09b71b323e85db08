"""Helpers for the supervisor and custom-runtime tests: run the real CLI, or drive a real
Function (real processes, real Runtime API) from a synchronous test through asyncio.run."""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import FIXTURES
from workbench.core.bus import Bus, LogLine
from workbench.core.config.function import detect
from workbench.core.engine.function import Function
from workbench.core.record import InvocationRecord, InvokeRequest

UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
NUM = r"\d+\.\d\d"
INIT_START_RE = re.compile(
    r"INIT_START Runtime Version: \S+\tRuntime Version ARN: "
    r"arn:aws:lambda:us-east-1::runtime:[0-9a-f]{64}"
)
# spec 5: tab separated, trailing tab; Init Duration only on the cold invoke.
REPORT_RE = re.compile(
    rf"REPORT RequestId: (?P<rid>{UUID_RE})\tDuration: (?P<duration>{NUM}) ms"
    r"\tBilled Duration: (?P<billed>\d+) ms\tMemory Size: (?P<memory>\d+) MB"
    rf"\tMax Memory Used: (?P<used>\d+) MB\t(?:Init Duration: (?P<init>{NUM}) ms\t)?"
    r"(?P<status>Status: .*)?"
)


def fixture(name: str) -> Path:
    return FIXTURES / name


def cli(
    folder: Path,
    *args: str,
    event: bytes | None = None,
    timeout: float = 100,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`workbench invoke FOLDER ...` as a user runs it; the event goes in on stdin."""
    argv = [sys.executable, "-m", "workbench", "invoke", str(folder), *args]
    if event is not None:
        argv += ["-e", "-"]
    proc = subprocess.run(argv, input=event or b"", capture_output=True, timeout=timeout, env=env)
    return subprocess.CompletedProcess(
        proc.args,
        proc.returncode,
        proc.stdout.decode(errors="replace"),
        proc.stderr.decode(errors="replace"),
    )


def run(coro_fn: Callable[[], Awaitable[Any]], limit: float = 100) -> Any:
    """Run one async test body; a hang fails the test instead of blocking the suite."""

    async def bounded() -> Any:
        return await asyncio.wait_for(coro_fn(), limit)

    return asyncio.run(bounded())


@dataclass
class Harness:
    """A real Function over a fixture folder, with every bus event kept."""

    folder: Path
    overrides: dict[str, Any] = field(default_factory=dict)
    runtime: str | None = None
    handler: str | None = None
    events: list[Any] = field(default_factory=list)
    fn: Function | None = None

    async def __aenter__(self) -> Harness:
        cfg = detect(self.folder, runtime=self.runtime, handler=self.handler)
        cfg = cfg.with_overrides(**self.overrides)
        bus = Bus()
        bus.subscribe(self.events.append)
        self.fn = Function(cfg, bus)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.fn is not None
        await self.fn.close()

    async def invoke(self, event: object = None) -> InvocationRecord:
        assert self.fn is not None
        return await self.fn.invoke(InvokeRequest(payload_of(event)))

    def lines(self, stream: str | None = None) -> list[str]:
        return [
            e.text
            for e in self.events
            if isinstance(e, LogLine) and (stream is None or e.stream == stream)
        ]


def payload_of(event: object) -> bytes:
    if event is None:
        return b"{}"
    if isinstance(event, bytes):
        return event
    return json.dumps(event).encode()


def body(record: InvocationRecord) -> Any:
    return json.loads(record.result.payload)


def report_of(lines: list[str], rid: str) -> re.Match[str]:
    found = [m for m in (REPORT_RE.fullmatch(line) for line in lines) if m and m["rid"] == rid]
    assert len(found) == 1, f"expected one REPORT for {rid} in:\n" + "\n".join(lines)
    return found[0]


def billed_from_printed(duration: str, init: str | None) -> set[int]:
    """Billed Duration is ceil of the unrounded sum; the printed values are rounded to 0.01 ms,
    so the exact sum lies within +-0.01 of the printed one."""
    total = float(duration) + (float(init) if init else 0.0)
    return {math.ceil(round(total - 0.01, 6)), math.ceil(round(total + 0.01, 6))}


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return False
    return stat[stat.rindex(b")") + 2 :][:1] != b"Z"


def processes_with_env(marker: str) -> list[int]:
    """Live processes whose environment holds `marker` (KEY=VALUE)."""
    needle = marker.encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                if needle in fh.read().split(b"\0") and alive(int(entry)):
                    found.append(int(entry))
        except OSError:
            continue
    return found


def index_of(lines: list[str], pattern: str, start: int = 0) -> int:
    """Index of the first line at or after `start` that fully matches `pattern`."""
    for i in range(start, len(lines)):
        if re.fullmatch(pattern, lines[i]):
            return i
    raise AssertionError(
        f"no line matching {pattern!r} after line {start} in:\n" + "\n".join(lines)
    )
