"""The per-subdomain and per-cell list jobs: assertions, document types, ideas."""

from __future__ import annotations

import re
from typing import Any, Callable, Sequence

from msmkit.generate.corpus.context import CorpusContext
from msmkit.generate.corpus.lists import ListJob
from msmkit.generate.corpus.parsing import ASSERTIONS, DOC_TYPES, IDEAS
from msmkit.generate.corpus.prompting import assertion_labels
from msmkit.generate.corpus.quotas import DocTypeCell
from msmkit.generate.corpus.records import Assertion, DocType, Domain, Idea, Subdomain, make_id

_REPLACEMENT_STRIDE = 10**6  # above any seed's own sample indices (seed x 1000 + attempt)
_REASON = re.compile(r"\s+(?:because|since|Why:|Reason:)\s+", re.IGNORECASE)


def _base_assertion(subject: str) -> Callable[[str], dict[str, Any]]:
    def parse(line: str) -> dict[str, Any]:
        text = line if line.startswith(subject) else f"{subject} {line}"
        parts = _REASON.split(text, maxsplit=1)
        explanation = parts[1] if len(parts) > 1 else ""
        return {"kind": "behaviour", "statement": parts[0].strip(), "explanation": explanation.strip()}
    return parse


def assertion_job(ctx: CorpusContext, domain: Domain, sub: Subdomain) -> ListJob:
    subject = ctx.prompts.subject
    return ListJob(
        parent_id=sub.id, want=ctx.config.counts.assertions_per_subdomain,
        adapter=None if ctx.prompts.base_model else ASSERTIONS,
        build=lambda existing, need, sample: ctx.prompts.assertions(domain, sub, need, existing, sample),
        accept=lambda raw, item_id: Assertion(id=item_id, subdomain_id=sub.id, kind=raw.get("kind", "behaviour"),
                                              statement=raw["statement"], explanation=raw.get("explanation", "")),
        describe=lambda item: item.statement, base_opener=f"1. {subject}", base_item=_base_assertion(subject))


def doc_type_job(ctx: CorpusContext, domain: Domain, sub: Subdomain) -> ListJob:
    return ListJob(
        parent_id=f"{sub.id}/types", want=ctx.config.counts.doc_types_per_subdomain,
        adapter=None if ctx.prompts.base_model else DOC_TYPES,
        build=lambda existing, need, sample: ctx.prompts.doc_types(domain, sub, need, existing, sample),
        accept=lambda raw, item_id: DocType(id=item_id, subdomain_id=sub.id, name=raw.get("name") or raw["text"],
                                            description=raw.get("description", "")),
        describe=lambda item: item.name, base_item=lambda line: {"name": line, "description": ""})


def ideas_job(ctx: CorpusContext, cell: DocTypeCell, want: int, round_number: int, parent_id: str,
              earlier: Sequence[str]) -> ListJob:
    """Ask `cell` for `want` ideas, telling the generator the `earlier` ideas it must not repeat. Ideas that name
    no assertion get one round-robin, counted from len(earlier), so the choice depends on no timing. Replacement
    jobs (round > 0) sample apart from every other job (their own sample indices): a base model's ideas prompt
    is the same for every job of a cell, and the same request would be answered from the cache."""
    offset = 0 if round_number == 0 else _REPLACEMENT_STRIDE * (1 + int(make_id(parent_id)[:8], 16))
    labels = assertion_labels(cell.assertions)
    assertion_ids = [assertion.id for assertion in cell.assertions]
    job: ListJob

    def accept(raw: dict[str, Any], item_id: str) -> Idea:
        chosen = [labels[label.strip()] for label in raw.get("assertions", []) if label.strip() in labels]
        if not chosen and assertion_ids:  # base models (and sloppy answers) get assertions round-robin
            chosen = [assertion_ids[(len(earlier) + len(job.items)) % len(assertion_ids)]]
        return Idea(id=item_id, subdomain_id=cell.subdomain.id, doc_type_id=cell.doc_type.id,
                    title=raw.get("title") or raw["text"], description=raw.get("description", ""),
                    assertion_ids=list(dict.fromkeys(chosen)), round=round_number)

    job = ListJob(
        parent_id=parent_id, want=want, adapter=None if ctx.prompts.base_model else IDEAS,
        build=lambda existing, need, sample: ctx.prompts.ideas(
            cell.domain, cell.subdomain, cell.doc_type, cell.assertions, need, list(earlier) + existing,
            sample + offset),
        accept=accept, describe=lambda item: item.title, base_item=lambda line: {"title": line})
    return job
