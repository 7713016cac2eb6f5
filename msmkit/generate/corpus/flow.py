"""The corpus steps item by item, with no wave waiting for its slowest call.

A subdomain is characterised (assertions and document types) as soon as its domain's list is in; a cell asks
for ideas as soon as its subdomain is characterised and the quotas are known; a document is asked as soon as
its idea exists, then cleaned and judged at once; a dropped document asks for its own replacement idea
straight away (up to `max_topup_rounds` deep). Near-duplicates are the one thing only the whole corpus can
show: they are replaced after the flow drains, by the same rules.

Every decision depends on logged answers only, never on the order they arrived in: a replacement is asked
per dropped idea under a task id naming it, with the titles of the answer it came from as what not to
repeat, and the final corpus is assembled from all answers in a fixed order. So a killed run resumes item
by item and a rerun replays to the same corpus.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from msmkit.generate.corpus.assemble import Assembler, Assembly
from msmkit.generate.corpus.context import CorpusContext
from msmkit.generate.corpus.decompose import decompose_by_headings, decompose_with_llm
from msmkit.generate.corpus.documents import DocumentJob, write_document
from msmkit.generate.corpus.judge import JudgeItem, Verdict, judge_document
from msmkit.generate.corpus.lists import fill_list
from msmkit.generate.corpus.outline import assertion_job, doc_type_job, ideas_job
from msmkit.generate.corpus.quotas import DocTypeCell, allocate_quotas
from msmkit.generate.corpus.records import Assertion, Domain, Idea, Subdomain, make_id
from msmkit.llm.progress import GrowingProgress, growing_progress

_MISSING = 1 << 30  # orders ideas asked for because a job came back short after the replacements of drops
# Upstream first when the client's slots are all taken: an idea list unlocks its cell's documents.
STEP_PRIORITY = {"domains": 0, "subdomains": 1, "assertions": 2, "doc_types": 2, "ideas": 3, "documents": 4,
                 "judge": 5}


@dataclass(frozen=True)
class _Place:
    """Where an idea sits: its cell, its fixed order key (round first), and the titles its replacement avoids."""

    cell: DocTypeCell
    key: tuple[int, ...]
    earlier: tuple[str, ...]


@dataclass
class FlowResult:
    domains: list[Domain]
    subdomains: list[Subdomain]
    cells: list[DocTypeCell]  # subdomain order, then document type order; each cell's ideas in their fixed order
    assertions: dict[str, list[Assertion]]
    quotas: dict[str, int]  # documents per subdomain
    assembly: Assembly


def subdomain_quotas(ctx: CorpusContext, subdomains: list[Subdomain]) -> dict[str, int]:
    """Documents per subdomain: the total spread evenly (earlier ones take the remainder), or T x I each."""
    counts = ctx.config.counts
    quotas = allocate_quotas(len(subdomains), counts.documents, counts.doc_types_per_subdomain * counts.ideas_per_type)
    return {sub.id: quota for sub, quota in zip(subdomains, quotas)}


class CorpusFlow:
    def __init__(self, ctx: CorpusContext) -> None:
        self.ctx = ctx
        ctx.step_priority.update(STEP_PRIORITY)
        self.assembler = Assembler(ctx)
        self.max_round = ctx.config.counts.max_topup_rounds
        self.domains: dict[str, Domain] = {}
        self.subdomains: list[Subdomain] = []
        self.quotas: dict[str, int] = {}
        self.quotas_known = asyncio.Event()
        self.characterised: set[str] = set()  # subdomain ids whose characterisation has started
        self.assertions: dict[str, list[Assertion]] = {}
        self.cells_by_sub: dict[str, list[DocTypeCell]] = {}
        self.places: dict[str, _Place] = {}
        self.verdicts: dict[str, Verdict] = {}
        self.replaced: set[str] = set()  # ideas (or short jobs) that already asked for their replacement
        self._group: asyncio.TaskGroup | None = None
        self._progress: GrowingProgress | None = None

    # -- running -------------------------------------------------------------------------------

    async def run(self) -> FlowResult | None:
        """The whole corpus; None when the decomposition gave no subdomains (nothing else was asked)."""
        with growing_progress(f"{self.ctx.name} documents") as progress:
            self._progress = progress
            clock = time.monotonic()
            subdomains: list[Subdomain] = []

            async def start() -> None:
                nonlocal subdomains
                domains, subdomains = await self._decompose()
                self.domains.update((domain.id, domain) for domain in domains)
                self.ctx.timings["decomposition"] = time.monotonic() - clock
                self.quotas = subdomain_quotas(self.ctx, subdomains)
                self.quotas_known.set()
                for sub in subdomains:
                    if self.quotas[sub.id] > 0:
                        self._characterise(self.domains[sub.domain_id], sub)

            await self._drain(start())
            if not subdomains:
                return None
            self.ctx.timings["flow"] = time.monotonic() - clock
            assembly = self._assemble()
            for number in range(1, self.max_round + 1):
                late = [self._idea(drop.idea_id) for drop in assembly.drops
                        if drop.reason != "over_quota" and drop.idea_id not in self.replaced]
                late = [idea for idea in late if idea.round < self.max_round]
                if not late:
                    break
                clock = time.monotonic()

                await self._drain(self._replace_all(late))
                assembly = self._assemble()
                self.ctx.timings[f"near-duplicate replacements {number}"] = time.monotonic() - clock
        return FlowResult(domains=list(self.domains.values()), subdomains=subdomains, cells=self.cells(),
                          assertions=self.assertions, quotas=self.quotas, assembly=assembly)

    async def _drain(self, first: Coroutine[Any, Any, None]) -> None:
        """Run `first` and everything it starts, transitively, until all of it is done."""
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                group.create_task(first)
        except BaseExceptionGroup as failed:  # a bug or a cancellation: surface the first cause itself
            raise failed.exceptions[0] from None
        finally:
            self._group = None

    def _start(self, work: Coroutine[Any, Any, None]) -> None:
        assert self._group is not None, "flow work starts only while the flow runs"
        self._group.create_task(work)

    def cells(self) -> list[DocTypeCell]:
        """Every cell, in subdomain order then document type order (the order the corpus is assembled in)."""
        return [cell for sub in self.subdomains for cell in self.cells_by_sub.get(sub.id, [])]

    def _idea(self, idea_id: str) -> Idea:
        place = self.places[idea_id]
        return next(idea for idea in place.cell.ideas if idea.id == idea_id)

    def _assemble(self) -> Assembly:
        clock = time.monotonic()
        for cells in self.cells_by_sub.values():
            for cell in cells:
                cell.ideas.sort(key=lambda idea: self.places[idea.id].key)
        assembly = self.assembler.assemble(self.cells(), self.verdicts)
        self.ctx.timings["final assembly"] = self.ctx.timings.get("final assembly", 0.0) + time.monotonic() - clock
        return assembly

    # -- steps ---------------------------------------------------------------------------------

    async def _decompose(self) -> tuple[list[Domain], list[Subdomain]]:
        ctx = self.ctx
        if ctx.config.decompose == "headings":
            domains, subdomains = decompose_by_headings(ctx.spec)
        else:
            counts = ctx.config.counts
            planned = counts.domains * counts.subdomains_per_domain
            # Characterising before the last list is in is safe only when no subdomain can end with no documents.
            early = counts.documents is None or counts.documents >= planned
            domains, subdomains = await decompose_with_llm(ctx, self._characterise_all if early else None)
        self.subdomains = subdomains
        return domains, subdomains

    def _characterise_all(self, domain: Domain, subdomains: list[Subdomain]) -> None:
        for sub in subdomains:
            self._characterise(domain, sub)

    def _characterise(self, domain: Domain, sub: Subdomain) -> None:
        if sub.id not in self.characterised:
            self.characterised.add(sub.id)
            self._start(self._characterise_one(domain, sub))

    async def _characterise_one(self, domain: Domain, sub: Subdomain) -> None:
        ctx = self.ctx
        assertions, types = assertion_job(ctx, domain, sub), doc_type_job(ctx, domain, sub)
        await asyncio.gather(fill_list(ctx, "assertions", assertions), fill_list(ctx, "doc_types", types))
        self.assertions[sub.id] = assertions.items
        await self.quotas_known.wait()
        quota = self.quotas.get(sub.id, 0)
        cells = [DocTypeCell(domain, sub, doc_type, assertions.items, cell_quota)
                 for doc_type, cell_quota in zip(types.items, allocate_quotas(len(types.items), quota, 0))]
        self.cells_by_sub[sub.id] = cells
        for cell in cells:
            if cell.quota > 0:
                self._start(self._ask_ideas(cell, cell.quota, 0, cell.id, (), ()))

    async def _ask_ideas(self, cell: DocTypeCell, want: int, round_number: int, parent_id: str,
                         earlier: tuple[str, ...], job_key: tuple[int, ...]) -> None:
        """Ask `cell` for `want` ideas; each answer's ideas start their documents at once."""
        job = ideas_job(self.ctx, cell, want, round_number, parent_id, earlier)

        def on_items(ideas: list[Idea]) -> None:
            first = len(job.items) - len(ideas)
            seen = earlier + tuple(item.title for item in job.items)
            for offset, idea in enumerate(ideas):
                self.places[idea.id] = _Place(cell, (round_number, *job_key, first + offset), seen)
                cell.ideas.append(idea)
                if self._progress is not None:
                    self._progress.add()
                self._start(self._document(cell, idea))

        await fill_list(self.ctx, "ideas", job, on_items)
        missing = want - len(job.items)
        if missing > 0 and round_number < self.max_round:
            # Ideas the job never delivered are asked for as replacements, like dropped documents.
            again = f"{cell.id}/round{round_number + 1}" if round_number == 0 else \
                f"{cell.id}/round{round_number + 1}/missing-{make_id(parent_id)}"
            self._start(self._ask_ideas(cell, missing, round_number + 1, again,
                                        earlier + tuple(item.title for item in job.items), (*job_key, _MISSING)))

    async def _document(self, cell: DocTypeCell, idea: Idea) -> None:
        ctx = self.ctx
        by_id = {assertion.id: assertion for assertion in cell.assertions}
        chosen = [by_id[i] for i in idea.assertion_ids if i in by_id] or cell.assertions
        await write_document(ctx, DocumentJob(idea, cell.subdomain, cell.doc_type, chosen))
        outcome = self.assembler.clean(idea.id)
        kept = outcome.text is not None
        if outcome.text is not None:
            await self.assembler.prepare(outcome.text)
            if ctx.judge_client is not None:
                verdict = await judge_document(ctx, JudgeItem(idea.id, outcome.text, cell.assertions))
                self.verdicts[idea.id] = verdict
                kept = verdict.keep
        if self._progress is not None:
            self._progress.advance()
        if not kept:
            self._replace(idea)

    async def _replace_all(self, ideas: list[Idea]) -> None:
        for idea in ideas:
            self._replace(idea)

    def _replace(self, idea: Idea) -> None:
        """Ask for one idea in place of `idea` (dropped), unless it has one or is already `max_topup_rounds` deep."""
        if idea.id in self.replaced or idea.round >= self.max_round:
            return
        self.replaced.add(idea.id)
        place = self.places[idea.id]
        round_number = idea.round + 1
        # The dropped idea goes last in what not to repeat, so siblings' replacement prompts differ.
        earlier = tuple(title for title in place.earlier if title != idea.title) + (idea.title,)
        self._start(self._ask_ideas(place.cell, 1, round_number, f"{place.cell.id}/round{round_number}/{idea.id}",
                                    earlier, place.key[1:]))
