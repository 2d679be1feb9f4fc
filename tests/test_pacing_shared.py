"""The pacer with a shared send schedule (several processes): what it does when its own event
loop stalls past a reserved slot, and when the schedule cannot be reached.

The schedule here is a stand-in with the `SharedSlots` protocol that hands out slots 1/rate
apart on this process's clock; the PostgreSQL one is exercised by tests/test_scale_out_rate.py."""

from __future__ import annotations

import asyncio
import time

from bot.channels import pacing
from bot.channels.pacing import Pacer


class Schedule:
    """Slots 1/rate apart from the last one handed out (as the database row does)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.next_slot = time.monotonic()
        self.taken: list[float] = []  # the absolute time of every slot handed out
        self.fail = False
        self.answer_delays: list[float] = []  # seconds each next answer takes to come back

    async def take(self, want: int, live: bool) -> tuple[list[float], float]:
        if self.fail:
            raise ConnectionError("database away")
        now = time.monotonic()
        if self.answer_delays:
            # the slots are counted from `now`, but the answer reaches the process later (a
            # starved event loop or a slow database): the process cannot tell when they are
            await asyncio.sleep(self.answer_delays.pop(0))
        start = max(self.next_slot, now)
        count = max(0, min(want, int((0.5 - (start - now)) * self.rate) + 1))
        slots = [start + i / self.rate for i in range(count)]
        self.next_slot = start + count / self.rate
        self.taken += slots
        return [s - now for s in slots], 0.05

    async def pause(self, seconds: float) -> None:
        pass


async def test_a_slot_reached_late_is_given_back_and_a_new_one_taken():
    pacer, schedule = Pacer(rate=10, name="test"), Schedule(rate=10)
    pacer.shared = schedule
    released: list[float] = []

    async def send() -> None:
        await pacer.live()
        released.append(time.monotonic())

    tasks = [asyncio.create_task(send()) for _ in range(4)]
    await asyncio.sleep(0.05)  # slots reserved: now, +0.1, +0.2, +0.3 s
    time.sleep(0.6)  # noqa: ASYNC251 - the point: this process's event loop stalls
    await asyncio.gather(*tasks)
    assert len(released) == 4
    # The stalled slots were not used: more slots were taken than sends made, and no two sends
    # left in a burst after the stall (each one at a fresh slot, 1/rate apart).
    assert len(schedule.taken) > 4
    gaps = [b - a for a, b in zip(released[1:], released[2:], strict=False)]
    assert all(gap >= 0.1 - 0.03 for gap in gaps), gaps


async def test_without_the_shared_schedule_a_process_paces_at_half_the_rate(monkeypatch):
    monkeypatch.setattr(pacing, "SHARED_RETRY", 60.0)
    pacer, schedule = Pacer(rate=20, name="test"), Schedule(rate=20)
    schedule.fail = True
    pacer.shared = schedule
    released: list[float] = []

    async def send() -> None:
        await pacer.live()
        released.append(time.monotonic())

    start = time.monotonic()
    await asyncio.gather(*(send() for _ in range(12)))
    # capacity 2 at once, then 10 more at 10/s (half of 20/s): about a second, not half of one
    assert released[-1] - start >= 0.8
    first_second = sum(1 for t in released if t - start < 1.0)
    assert first_second <= 2 + 10 + 1


async def test_slots_from_an_answer_that_came_back_late_are_not_used():
    pacer, schedule = Pacer(rate=10, name="test"), Schedule(rate=10)
    pacer.shared = schedule
    schedule.answer_delays = [0.45]  # the first answer arrives when its slots have (nearly) passed
    released: list[float] = []

    async def send() -> None:
        await pacer.live()
        released.append(time.monotonic())

    await asyncio.gather(*(send() for _ in range(4)))
    # Sent at their slots' times as read on arrival, the four would have left 0.45 s late, in
    # the slots of whoever took the next ones; instead new slots were taken, 1/rate apart.
    assert len(schedule.taken) >= 8
    first_slots = schedule.taken[:4]
    assert all(t > first_slots[-1] for t in released), (released, first_slots)
    gaps = [b - a for a, b in zip(released, released[1:], strict=False)]
    assert all(gap >= 0.1 - 0.03 for gap in gaps), gaps
