"""Spec -> domains -> subdomains: from the spec's own headings (free, deterministic) or by the generator."""

from __future__ import annotations

import asyncio
from typing import Any, Callable

from msmkit.generate.corpus.context import CorpusContext
from msmkit.generate.corpus.faithfulness import check_excerpt
from msmkit.generate.corpus.lists import ListJob, fill_list
from msmkit.generate.corpus.parsing import DOMAINS, SUBDOMAINS
from msmkit.generate.corpus.records import Domain, Subdomain, make_id
from msmkit.spec import ModelSpec

_MIN_OWN_BODY_WORDS = 25  # a section's own text shorter than this is an intro line, not a subdomain
_MIN_SUBDOMAIN_WORDS = 10  # a bare title line is no subdomain (kept only when nothing else is left)


def decompose_by_headings(spec: ModelSpec) -> tuple[list[Domain], list[Subdomain]]:
    """Top-level sections become domains, their subsections (or themselves) subdomains, spec text verbatim."""
    sections = spec.structure.sections
    roots = [section for section in sections if section.parent is None and section.text.strip()]
    domains: list[Domain] = []
    subdomains: list[Subdomain] = []
    for root in roots:
        domain = Domain(id=make_id(spec.text_sha256, "heading-domain", root.index), name=root.title,
                        source="headings")
        parts: list[tuple[str, str]] = []
        children = [sections[index] for index in root.children]
        if not children or len(root.body.split()) >= _MIN_OWN_BODY_WORDS:
            parts.append((root.title, root.body if children else root.text))
        parts.extend((child.title, child.text) for child in children)
        substantial = [(title, text) for title, text in parts if len(text.split()) >= _MIN_SUBDOMAIN_WORDS]
        parts = substantial or [(title, text) for title, text in parts if text.strip()]
        if not parts:
            continue
        domains.append(domain)
        for number, (title, text) in enumerate(parts):
            subdomains.append(Subdomain(
                id=make_id(domain.id, "heading-subdomain", number), domain_id=domain.id, name=title,
                description=f"{root.title}: {title}" if title != root.title else root.title,
                spec_excerpt=text.strip(), source="headings"))
    return domains, subdomains


async def decompose_with_llm(ctx: CorpusContext,
                             on_subdomains: Callable[[Domain, list[Subdomain]], None] | None = None
                             ) -> tuple[list[Domain], list[Subdomain]]:
    """Domains, then each domain's subdomains as soon as the domains are known; `on_subdomains` gets each
    domain's subdomains when its list is complete (the others may still be coming)."""
    counts = ctx.config.counts
    root_id = make_id(ctx.spec.text_sha256, "domains", ctx.config.subject.kind, ctx.config.rules_mode)

    def accept_domain(raw: dict[str, Any], item_id: str) -> Domain:
        return Domain(id=item_id, name=raw["name"].strip(), description=raw.get("description", "").strip())

    domain_job = ListJob(parent_id=root_id, want=counts.domains, adapter=DOMAINS,
                         build=lambda existing, need, sample: ctx.prompts.domains(need, existing, sample),
                         accept=accept_domain, describe=lambda item: item.name)
    await fill_list(ctx, "domains", domain_job)
    domains: list[Domain] = domain_job.items

    threshold = ctx.config.faithfulness.excerpt_threshold
    keep_unverified = ctx.config.faithfulness.keep_unverified_subdomains

    def make_job(domain: Domain) -> ListJob:
        def accept(raw: dict[str, Any], item_id: str) -> Subdomain | None:
            quoted = raw["spec_excerpt"].strip()
            check = check_excerpt(ctx.spec, quoted, threshold)
            flag = {"kind": "unverified_excerpt", "subdomain_id": item_id, "name": raw["name"],
                    "similarity": check.similarity, "quoted": quoted, "kept": keep_unverified}
            if not check.verified:
                ctx.flags.append(flag)
                if not keep_unverified:
                    return None
            return Subdomain(
                id=item_id, domain_id=domain.id, name=raw["name"].strip(),
                description=raw.get("description", "").strip(),
                spec_excerpt=check.spec_text if check.verified else quoted,
                quoted_excerpt="" if check.verified and check.spec_text == quoted else quoted,
                excerpt_similarity=check.similarity, excerpt_verified=check.verified)

        return ListJob(parent_id=domain.id, want=counts.subdomains_per_domain, adapter=SUBDOMAINS,
                       build=lambda existing, need, sample: ctx.prompts.subdomains(domain, need, existing, sample),
                       accept=accept, describe=lambda item: item.name)

    async def fill(domain: Domain, job: ListJob) -> None:
        await fill_list(ctx, "subdomains", job)
        if on_subdomains is not None and job.items:
            on_subdomains(domain, job.items)

    jobs = [make_job(domain) for domain in domains]
    await asyncio.gather(*(fill(domain, job) for domain, job in zip(domains, jobs)))
    return domains, [sub for job in jobs for sub in job.items]
