"""The LLM client's hot path: prioritised concurrency slots, and cache writes gathered per loop iteration."""

from __future__ import annotations

import asyncio
import sqlite3

from msmkit.llm.cache import ResponseCache
from msmkit.llm.ratelimit import PrioritySlots
from msmkit.llm.types import LLMResponse


def test_waiters_get_free_slots_by_priority_then_in_arrival_order() -> None:
    async def scenario() -> list[str]:
        slots = PrioritySlots(1)
        order: list[str] = []
        await slots.acquire()  # the only slot is taken: everyone below waits

        async def wait(name: str, priority: int) -> None:
            await slots.acquire(priority)
            order.append(name)
            slots.release()

        waiters = [asyncio.create_task(wait(name, priority))
                   for name, priority in [("doc-1", 4), ("doc-2", 4), ("ideas", 3), ("domains", 0)]]
        await asyncio.sleep(0)
        slots.release()
        await asyncio.gather(*waiters)
        return order

    assert asyncio.run(scenario()) == ["domains", "ideas", "doc-1", "doc-2"]


def test_a_cancelled_waiter_gives_its_turn_to_the_next() -> None:
    async def scenario() -> tuple[bool, int]:
        slots = PrioritySlots(1)
        await slots.acquire()
        cancelled = asyncio.create_task(slots.acquire(0))
        later = asyncio.create_task(slots.acquire(5))
        await asyncio.sleep(0)
        cancelled.cancel()
        await asyncio.sleep(0)
        slots.release()
        await asyncio.wait_for(later, 1)
        slots.release()
        return cancelled.cancelled(), slots.free

    assert asyncio.run(scenario()) == (True, 1)


def answer(text: str) -> LLMResponse:
    return LLMResponse(text=text, stop_reason="end", model="m")


def stored(path) -> int:  # noqa: ANN001
    with sqlite3.connect(path) as connection:
        return connection.execute("SELECT COUNT(*) FROM responses").fetchone()[0]


def test_answers_put_in_one_loop_iteration_are_written_together_at_its_end(tmp_path) -> None:
    path = tmp_path / "cache.sqlite"
    cache = ResponseCache(path)

    async def scenario() -> tuple[int, str | None, int]:
        for number in range(50):
            cache.put(f"key {number}", answer(f"answer {number}"))
        before = stored(path)  # nothing written yet: the loop has not come round
        served = cache.get("key 7")
        await asyncio.sleep(0)
        return before, served.text if served else None, stored(path)

    before, served, after = asyncio.run(scenario())
    assert (before, served, after) == (0, "answer 7", 50)
    fresh = ResponseCache(path).get("key 7")
    assert fresh is not None and fresh.cached and fresh.text == "answer 7"


def test_outside_an_event_loop_a_put_is_written_at_once_and_close_writes_what_is_pending(tmp_path) -> None:
    path = tmp_path / "cache.sqlite"
    cache = ResponseCache(path)
    cache.put("sync", answer("now"))
    assert stored(path) == 1

    async def put_and_close() -> None:
        cache.put("async", answer("later"))
        cache.close()  # before the loop comes round

    asyncio.run(put_and_close())
    assert stored(path) == 2
