"""Several execution environments for one function, as Lambda scales out: each invoke goes to
an idle environment (a warm one first), a new one starts while fewer than `concurrency` exist,
and beyond that invokes wait their turn in arrival order (the service would throttle with 429;
a workbench queues, which is kinder to a developer's script)."""

from __future__ import annotations

import asyncio
import collections

from workbench.core.bus import Bus
from workbench.core.config.function import FunctionConfig
from workbench.core.engine.environment import InitOutcome
from workbench.core.engine.function import (
    Function,
    InvocationHandle,
    copy_outcome,
    start_invocation,
)
from workbench.core.record import InvocationRecord, InvokeRequest, InvokeResult


class FunctionPool:
    def __init__(self, cfg: FunctionConfig, bus: Bus | None = None) -> None:
        self.cfg = cfg
        self.bus = bus or Bus()
        self._slots: list[Function] = []
        self._busy: set[Function] = set()
        self._waiting: collections.deque[asyncio.Future[Function]] = collections.deque()
        self._tasks: set[asyncio.Task[InvocationRecord]] = set()

    @property
    def name(self) -> str:
        return self.cfg.name

    @property
    def environments(self) -> int:
        return len(self._slots)

    def start_invoke(self, req: InvokeRequest, rid: str | None = None) -> InvocationHandle:
        return start_invocation(self._invoke, req, rid, self._tasks)

    async def invoke(self, req: InvokeRequest) -> InvocationRecord:
        return await self.start_invoke(req).record

    async def prewarm(self) -> InitOutcome:
        """One environment started now (a reload's new code), so the next invoke is warm;
        more start as invokes overlap. A failed init leaves no environment behind."""
        slot = Function(self.cfg, self.bus)
        self._slots.append(slot)
        self._busy.add(slot)  # not handed to an invoke while its runtime starts
        try:
            outcome = await slot.prewarm()
        except BaseException:
            self._slots.remove(slot)
            self._busy.discard(slot)
            await asyncio.shield(slot.close())
            raise
        if not outcome.ok:
            self._slots.remove(slot)
            self._busy.discard(slot)
            return outcome
        self._release(slot)
        return outcome

    async def idle(self) -> None:
        """Return when no invocation is running or waiting here."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*(slot.close() for slot in self._slots))
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)

    async def _invoke(
        self, req: InvokeRequest, rid: str, answer: asyncio.Future[InvokeResult]
    ) -> InvocationRecord:
        slot = await self._acquire()
        try:
            handle = slot.start_invoke(req, rid)
            handle.answer.add_done_callback(lambda f: copy_outcome(f, answer))
            return await handle.record
        finally:
            self._release(slot)

    async def _acquire(self) -> Function:
        idle = [s for s in self._slots if s not in self._busy]
        if idle:  # a warm environment first: its runtime is already up
            slot = max(idle, key=lambda s: s.warm)
        elif len(self._slots) < self.cfg.concurrency:
            slot = Function(self.cfg, self.bus)
            self._slots.append(slot)
        else:
            waiter: asyncio.Future[Function] = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            slot = await waiter  # handed over by _release, already marked busy
            return slot
        self._busy.add(slot)
        return slot

    def _release(self, slot: Function) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():  # a cancelled waiter is skipped
                waiter.set_result(slot)  # stays busy: it passes straight to the next invoke
                return
        self._busy.discard(slot)
