"""User questions: asked cell by cell in a fixed global order, parsed, and semantically deduplicated.

Question request k goes to cell k mod |cells| with its own sample index, and is logged under a task id
naming k and the cell, so a rerun replays the same requests from the log in the same order and the
dedup (keep-first) rebuilds the same pool. Unanswered unique questions stay in the pool for later rounds.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any, AsyncIterator

from pydantic import TypeAdapter

from msmkit.data.dedup import EmbeddingIndex, embed, load_embedder
from msmkit.generate.aft.context import AftContext
from msmkit.generate.aft.records import Question, QuestionCell, make_id
from msmkit.generate.line_list import parse_line_list
from msmkit.llm.progress import progress_bar

_QUESTIONS = TypeAdapter(list[str])
MIN_QUESTION_CHARS, MAX_QUESTION_CHARS = 8, 2000


def load_question_embedder(precision: str = "bfloat16") -> Any:
    """all-MiniLM-L6-v2 (msmkit.data.dedup.load_embedder), optionally cast to bfloat16 for speed."""
    model = load_embedder()
    if precision == "bfloat16":
        import torch

        model = model.to(torch.bfloat16)
    return model


class QuestionPool:
    def __init__(self, ctx: AftContext, cells: list[QuestionCell]) -> None:
        self.ctx = ctx
        self.cells = cells
        self.next_request = 0
        self.unique: list[Question] = []
        self.taken = 0  # unique questions handed out for answering so far
        self.duplicates: list[dict[str, Any]] = []
        self.raw_questions = 0
        self.rejected_questions = 0  # too short/long or unparseable lines
        self.unusable_requests = 0  # answered without a usable list (bad JSON after a re-ask, refusal)
        settings = ctx.config.dedup
        self._index = EmbeddingIndex(settings.threshold) if settings.enabled else None
        self._embedder: Any = None

    @property
    def available(self) -> int:
        return len(self.unique) - self.taken

    def take(self, count: int) -> list[Question]:
        chosen = self.unique[self.taken:self.taken + count]
        self.taken += len(chosen)
        return chosen

    async def grow(self, wanted: int) -> AsyncIterator[None]:
        """Ask enough question requests to add about `wanted` raw questions; dedup their answers in request
        order as soon as each request and every one before it is answered, yielding after each dedup so
        callers can start answering the unique questions while later requests are still out."""
        per_request = self.ctx.config.counts.questions_per_request
        requests = list(range(self.next_request, self.next_request + max(1, math.ceil(wanted / per_request))))
        self.next_request = requests[-1] + 1
        pending = [k for k in requests if self.ctx.log("questions").get(self._task(k)) is None]
        await self.ctx.prefetch("questions", [self._request(k) for k in pending])
        with progress_bar("aft questions", total=len(requests)) as advance:
            async def one(k: int) -> dict[str, Any] | None:
                record = await self._answer(k)
                advance()
                return record

            answers = [asyncio.ensure_future(one(k)) for k in requests]
            try:
                head = 0
                while head < len(answers):
                    if not answers[head].done():
                        await asyncio.wait([answers[head]])
                    fresh: list[Question] = []
                    while head < len(answers) and answers[head].done():  # the answered prefix, in order
                        fresh.extend(self._parse(requests[head], answers[head].result()))
                        head += 1
                    await self._dedup(fresh)
                    yield
            finally:
                for answer in answers:
                    answer.cancel()

    def _cell(self, k: int) -> QuestionCell:
        return self.cells[k % len(self.cells)]

    def _task(self, k: int) -> str:
        return f"{k}:{self._cell(k).id}"

    def _request(self, k: int):  # noqa: ANN202
        batch = k // len(self.cells)
        return self.ctx.prompts.questions(self._cell(k), self.ctx.config.counts.questions_per_request,
                                          self.ctx.config.seed * 100_000 + batch, batch + 1)

    async def _answer(self, k: int) -> dict[str, Any] | None:
        ctx = self.ctx
        task = self._task(k)
        stored = ctx.stored("questions", task)
        if stored is not None:
            return stored
        request = self._request(k)
        if ctx.prompts.base_model:
            response = await ctx.ask("questions", request)
            if response is None:
                return None
            # The completion prompt shows two example messages and ends at "3."; only new items count.
            items = parse_line_list("3. " + response.text.strip(), ctx.config.counts.questions_per_request)
            record = {"task": task, "answered": True, "items": items, "error": None}
        else:
            result = await ctx.ask_json("questions", request, _QUESTIONS, task=task)
            if result is None:
                return None
            record = {"task": task, "answered": True, "items": list(result.value) if result.ok else [],
                      "error": result.error}
        ctx.log("questions").append(record)
        return record

    def _parse(self, k: int, record: dict[str, Any] | None) -> list[Question]:
        if record is None:
            return []
        if not record["items"]:
            self.unusable_requests += 1
        cell = self._cell(k)
        questions = []
        for position, raw in enumerate(record["items"][:self.ctx.config.counts.questions_per_request]):
            text = raw.strip()
            self.raw_questions += 1
            if not MIN_QUESTION_CHARS <= len(text) <= MAX_QUESTION_CHARS:
                self.rejected_questions += 1
                continue
            questions.append(Question(id=make_id("question", cell.id, k, position), cell_id=cell.id,
                                      domain=cell.domain.name, kind=cell.kind, text=text, request=k,
                                      pair_id=cell.pair.id if cell.pair else None))
        return questions

    async def _dedup(self, fresh: list[Question]) -> None:
        if self._index is None or not fresh:
            self.unique.extend(fresh)
            return
        index = self._index
        texts = [question.text for question in fresh]
        if self._embedder is None:  # loaded once, off the event loop
            self._embedder = await asyncio.to_thread(load_question_embedder, self.ctx.config.dedup.precision)
        vectors = await asyncio.to_thread(embed, texts, self._embedder, batch_size=index.batch_size)
        duplicates = index.check_and_add_many([q.id for q in fresh], texts, vectors)
        for position, question in enumerate(fresh):
            if position in duplicates:
                of, similarity = duplicates[position]
                self.duplicates.append({"question_id": question.id, "request": question.request, "text": question.text,
                                        "duplicate_of": of,
                                        "similarity": round(similarity, 4)})
            else:
                self.unique.append(question)
