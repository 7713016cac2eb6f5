"""Conversation cells: (domain, question kind) pairs. Domains come from the LLM, the spec's headings,
or, in value-free mode, the preference pairs (no spec text involved)."""

from __future__ import annotations

from pydantic import BaseModel, Field, TypeAdapter

from msmkit.errors import DataError
from msmkit.generate.aft.context import AftContext
from msmkit.generate.aft.preferences import PreferenceSheet
from msmkit.generate.aft.records import Domain, QuestionCell, make_id


class DomainAnswer(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    description: str = ""


_DOMAINS = TypeAdapter(list[DomainAnswer])


def _cells(domains: list[Domain], kinds: list[str], pairs: dict[str, object] | None = None) -> list[QuestionCell]:
    # Kind-major order, so a short run still covers every domain with the first kind, then the next.
    return [QuestionCell(id=make_id(domain.id, kind), domain=domain, kind=kind,
                 pair=(pairs or {}).get(domain.id))  # type: ignore[arg-type]
            for kind in kinds for domain in domains]


def preference_cells(sheet: PreferenceSheet, kinds: list[str]) -> list[QuestionCell]:
    domains = [Domain(id=make_id("pair", pair.id), name=pair.context or f"{pair.preferred} or {pair.dispreferred}")
               for pair in sheet.pairs]
    return _cells(domains, kinds, {domain.id: pair for domain, pair in zip(domains, sheet.pairs)})


def heading_cells(ctx: AftContext) -> list[QuestionCell]:
    sections = [s for s in ctx.spec.structure.sections if s.level >= 1 and s.body.strip()]
    if not sections:
        raise DataError(f"{ctx.spec.name}: domains_from is 'headings' but the spec has no headed sections with "
                        "text; use domains_from: llm (needs an instruction-tuned generator)")
    domains = [Domain(id=make_id("heading", s.index, s.title), name=s.title,
                      description=" ".join(s.body.split())[:300]) for s in sections]
    return _cells(domains, ctx.config.counts.question_kinds)


async def llm_cells(ctx: AftContext) -> list[QuestionCell]:
    log = ctx.log("domains")
    task = "domains"
    record = ctx.stored("domains", task)
    if record is None:
        result = await ctx.ask_json("domains", ctx.prompts.domains(ctx.config.counts.domains), _DOMAINS, task=task)
        if result is None:
            ctx.raise_if_calls_failed(f"{ctx.spec.name}: the generator gave no list of conversation domains")
        if result is None or not result.ok:
            error = "the call failed" if result is None else result.error
            raise DataError(f"{ctx.spec.name}: the generator gave no usable list of conversation domains "
                            f"({error}); rerun to ask again, or set domains_from: headings")
        record = {"task": task, "answered": True, "items": [d.model_dump() for d in result.value]}
        log.append(record)
    seen: set[str] = set()
    domains = []
    for position, item in enumerate(record["items"][:ctx.config.counts.domains]):
        key = item["name"].strip().casefold()
        if key not in seen:
            seen.add(key)
            domains.append(Domain(id=make_id("domain", position, key), name=item["name"].strip(),
                                  description=item.get("description", "")))
    return _cells(domains, ctx.config.counts.question_kinds)
