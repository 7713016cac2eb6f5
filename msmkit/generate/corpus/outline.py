"""Per-subdomain and per-cell list stages: assertions, document types, ideas."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from msmkit.generate.corpus.context import CorpusContext
from msmkit.generate.corpus.lists import ListJob, fill_lists
from msmkit.generate.corpus.parsing import ASSERTIONS, DOC_TYPES, IDEAS
from msmkit.generate.corpus.prompting import assertion_labels
from msmkit.generate.corpus.quotas import DocTypeCell
from msmkit.generate.corpus.records import Assertion, DocType, Domain, Idea, Subdomain

_REASON = re.compile(r"\s+(?:because|since|Why:|Reason:)\s+", re.IGNORECASE)


def _base_assertion(subject: str):  # noqa: ANN202
    def parse(line: str) -> dict[str, Any]:
        text = line if line.startswith(subject) else f"{subject} {line}"
        parts = _REASON.split(text, maxsplit=1)
        explanation = parts[1] if len(parts) > 1 else ""
        return {"kind": "behaviour", "statement": parts[0].strip(), "explanation": explanation.strip()}
    return parse


async def characterise_subdomains(ctx: CorpusContext, domains: list[Domain], subdomains: list[Subdomain]
                                  ) -> tuple[dict[str, list[Assertion]], dict[str, list[DocType]]]:
    """Assertions and document types for every subdomain; the two stages run side by side."""
    counts = ctx.config.counts
    by_id = {domain.id: domain for domain in domains}
    base = ctx.prompts.base_model
    subject = ctx.prompts.subject

    def assertion_job(sub: Subdomain) -> ListJob:
        domain = by_id[sub.domain_id]
        return ListJob(
            parent_id=sub.id, want=counts.assertions_per_subdomain, adapter=None if base else ASSERTIONS,
            build=lambda existing, need, sample: ctx.prompts.assertions(domain, sub, need, existing, sample),
            accept=lambda raw, item_id: Assertion(id=item_id, subdomain_id=sub.id, kind=raw.get("kind", "behaviour"),
                                                  statement=raw["statement"], explanation=raw.get("explanation", "")),
            describe=lambda item: item.statement, base_opener=f"1. {subject}", base_item=_base_assertion(subject))

    def type_job(sub: Subdomain) -> ListJob:
        domain = by_id[sub.domain_id]
        return ListJob(
            parent_id=f"{sub.id}/types", want=counts.doc_types_per_subdomain, adapter=None if base else DOC_TYPES,
            build=lambda existing, need, sample: ctx.prompts.doc_types(domain, sub, need, existing, sample),
            accept=lambda raw, item_id: DocType(id=item_id, subdomain_id=sub.id, name=raw.get("name") or raw["text"],
                                                description=raw.get("description", "")),
            describe=lambda item: item.name, base_item=lambda line: {"name": line, "description": ""})

    assertion_jobs = [assertion_job(sub) for sub in subdomains]
    type_jobs = [type_job(sub) for sub in subdomains]
    await asyncio.gather(fill_lists(ctx, "assertions", assertion_jobs), fill_lists(ctx, "doc_types", type_jobs))
    return ({sub.id: job.items for sub, job in zip(subdomains, assertion_jobs)},
            {sub.id: job.items for sub, job in zip(subdomains, type_jobs)})


async def propose_ideas(ctx: CorpusContext, wants: list[tuple[DocTypeCell, int]], round_number: int) -> None:
    """Ask each cell for `want` more ideas (round 0: its quota; later rounds: replacements for drops)."""
    base = ctx.prompts.base_model

    def job(cell: DocTypeCell, want: int) -> ListJob:
        labels = assertion_labels(cell.assertions)
        assertion_ids = [assertion.id for assertion in cell.assertions]
        start = len(cell.ideas)

        def accept(raw: dict[str, Any], item_id: str) -> Idea:
            chosen = [labels[label.strip()] for label in raw.get("assertions", []) if label.strip() in labels]
            if not chosen and assertion_ids:  # base models (and sloppy answers) get assertions round-robin
                position = start + len(jobs_by_cell[cell.id].items)
                chosen = [assertion_ids[position % len(assertion_ids)]]
            return Idea(id=item_id, subdomain_id=cell.subdomain.id, doc_type_id=cell.doc_type.id,
                        title=raw.get("title") or raw["text"], description=raw.get("description", ""),
                        assertion_ids=list(dict.fromkeys(chosen)), round=round_number)

        return ListJob(
            parent_id=cell.id if round_number == 0 else f"{cell.id}/round{round_number}", want=want,
            adapter=None if base else IDEAS,
            build=lambda existing, need, sample: ctx.prompts.ideas(
                cell.domain, cell.subdomain, cell.doc_type, cell.assertions, need,
                [idea.title for idea in cell.ideas] + existing, sample),
            accept=accept, describe=lambda item: item.title, base_item=lambda line: {"title": line})

    jobs_by_cell: dict[str, ListJob] = {}
    for cell, want in wants:
        jobs_by_cell[cell.id] = job(cell, want)
    await fill_lists(ctx, "ideas", list(jobs_by_cell.values()))
    for cell, _ in wants:
        cell.ideas.extend(jobs_by_cell[cell.id].items)
