"""AFT answering item by item, in rounds that are worked out from the answers, never waited for.

The rounds are those of the plain procedure: round 0 answers ceil(target x answer_overgenerate) pooled
questions, and each next round answers ceil(shortfall x answer_overgenerate) more, the shortfall being
counted after the rounds before it, up to max_rounds. Here no round waits for the one before: a question
whose place in the pool lies inside the rounds even if every unanswered question were kept is certainly
asked, so it is asked at once, and each drop that arrives moves that bound on at once. The pool grows in
the background when the bound passes its end. Which questions are answered, their rounds and the
examples kept depend only on the answers, so a killed run resumes to the same dataset.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass

from msmkit.generate.aft.context import AftContext
from msmkit.generate.aft.examples import Checks, Drop, Example, JudgeTally, process
from msmkit.generate.aft.questions import QuestionPool
from msmkit.generate.aft.records import QuestionCell
from msmkit.llm.progress import growing_progress


def plan_rounds(target: int, overgenerate: float, max_rounds: int,
                dropped: Callable[[int], bool]) -> list[tuple[int, int]]:
    """[start, end) pool positions of each round, counting a position as kept unless `dropped` says otherwise."""
    rounds: list[tuple[int, int]] = []
    start = kept = 0
    for _ in range(max_rounds):
        need = target - kept
        if need <= 0:
            break
        end = start + math.ceil(need * overgenerate)
        rounds.append((start, end))
        kept += sum(1 for position in range(start, end) if not dropped(position))
        start = end
    return rounds


@dataclass
class Answered:
    outcomes: list[Example | Drop]  # in pool order, each labelled with its round
    rounds: int  # rounds that answered at least one question


async def answer_in_rounds(ctx: AftContext, pool: QuestionPool, cells: dict[str, QuestionCell], checks: Checks,
                           tally: JudgeTally) -> Answered:
    counts = ctx.config.counts
    outcomes: dict[int, Example | Drop] = {}
    changed = asyncio.Event()
    grower: asyncio.Task[None] | None = None
    exhausted = False  # the pool stopped growing: no question can be added

    def plan() -> list[tuple[int, int]]:
        return plan_rounds(counts.examples, counts.answer_overgenerate, counts.max_rounds,
                           lambda position: isinstance(outcomes.get(position), Drop))

    async def grow(wanted: int) -> None:
        nonlocal exhausted
        before = len(pool.unique)
        async for _ in pool.grow(wanted):
            changed.set()
        exhausted = len(pool.unique) == before
        changed.set()

    with growing_progress("aft answer + judge") as progress:
        async def answer(position: int) -> None:
            question = pool.unique[position]
            outcomes[position] = await process(ctx, question, cells[question.cell_id], checks, 0, tally)
            progress.advance()
            changed.set()

        async def launch(group: asyncio.TaskGroup) -> None:
            nonlocal grower
            while True:
                changed.clear()
                rounds = plan()
                bound = rounds[-1][1] if rounds else 0
                while pool.taken < min(bound, len(pool.unique)):
                    position = pool.taken
                    pool.take(1)
                    progress.add()
                    group.create_task(answer(position))
                if pool.taken < bound and not exhausted and (grower is None or grower.done()):
                    grower = group.create_task(grow(math.ceil((bound - pool.taken) * counts.question_overgenerate)))
                growing = grower is not None and not grower.done()
                if len(outcomes) == pool.taken and not growing and (pool.taken >= bound or exhausted):
                    return
                await changed.wait()

        try:
            async with asyncio.TaskGroup() as group:
                await launch(group)
        except BaseExceptionGroup as failed:  # a bug or a cancellation: surface the first cause itself
            raise failed.exceptions[0] from None
    rounds = plan()
    ordered: list[Example | Drop] = []
    used = 0
    for number, (start, end) in enumerate(rounds):
        answered = [outcomes[position] for position in range(start, min(end, pool.taken))]
        for outcome in answered:
            outcome.round = number
        ordered.extend(answered)
        used += 1 if answered else 0
    return Answered(ordered, used)
