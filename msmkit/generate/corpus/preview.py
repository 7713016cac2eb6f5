"""What a corpus run will cost before it runs: calls, tokens and dollars per stage."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from msmkit.data.filters import estimate_tokens
from msmkit.generate.corpus.config import CorpusConfig
from msmkit.generate.corpus.prompting import CorpusPrompts
from msmkit.generate.corpus.records import Domain, Subdomain
from msmkit.llm.projection import CallProjection, project_calls
from msmkit.spec import ModelSpec

# Rough sizes of our own instructions and of the answers, in tokens (measured on Claude answers).
_INSTRUCTIONS = {"assertions": 300, "doc_types": 250, "ideas": 350, "documents": 450, "judge": 250}
_PER_ITEM_OUTPUT = {"assertions": 70, "doc_types": 45, "ideas": 80}
_PLAN_TOKENS = 300  # scratchpad before each document
_TOKENS_PER_WORD = 1.35


@dataclass
class Projection:
    stages: list[CallProjection]
    documents: int
    decomposition: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> CallProjection:
        costs = [stage.cost_usd for stage in self.stages]
        return CallProjection("total", sum(s.calls for s in self.stages), sum(s.input_tokens for s in self.stages),
                               sum(s.output_tokens for s in self.stages),
                               None if any(c is None for c in costs) else sum(c for c in costs if c is not None))

    def as_dict(self) -> dict[str, Any]:
        return {"stages": [asdict(stage) for stage in self.stages], "total": asdict(self.total),
                "documents": self.documents, "decomposition": self.decomposition, "notes": self.notes}


def project(config: CorpusConfig, prompts: CorpusPrompts, domains: list[Domain], subdomains: list[Subdomain],
            *, decomposition_calls: CallProjection | None = None) -> Projection:
    counts, lengths = config.counts, config.lengths
    s_all = len(subdomains)
    cells = s_all * counts.doc_types_per_subdomain
    documents = counts.documents if counts.documents is not None else cells * counts.ideas_per_type
    s = min(s_all, documents)  # subdomains that get no documents are not characterised
    ideas_calls = min(cells, documents)
    per_cell = math.ceil(documents / cells) if cells else 0
    system = 0 if prompts.base_model else estimate_tokens(prompts.system_text)
    excerpt = sum(estimate_tokens(sub.spec_excerpt) for sub in subdomains) / s_all if s_all else 0
    document_tokens = lengths.target_words * _TOKENS_PER_WORD
    llm = config.generator
    stages = [decomposition_calls] if decomposition_calls else []
    stages += [
        project_calls("assertions", s, system + excerpt + _INSTRUCTIONS["assertions"],
               counts.assertions_per_subdomain * _PER_ITEM_OUTPUT["assertions"], llm),
        project_calls("doc_types", s, system + _INSTRUCTIONS["doc_types"],
               counts.doc_types_per_subdomain * _PER_ITEM_OUTPUT["doc_types"], llm),
        project_calls("ideas", ideas_calls, system + _INSTRUCTIONS["ideas"] + counts.assertions_per_subdomain * 50,
               per_cell * _PER_ITEM_OUTPUT["ideas"], llm),
        project_calls("documents", documents, system + excerpt + _INSTRUCTIONS["documents"],
               document_tokens + (0 if prompts.base_model else _PLAN_TOKENS), llm),
    ]
    if config.judge is not None:
        stages.append(project_calls("judge", documents, system + document_tokens + _INSTRUCTIONS["judge"], 60,
                                    config.judge))
    notes = [
        "Estimates: ~4 characters per token, answer sizes from typical answers. Top-up requests, truncated-document "
        "retries and replacement rounds for dropped documents come on top (typically 5-20% more document calls).",
    ]
    if not prompts.base_model and llm.provider == "anthropic":
        notes.append("Input cost is an upper bound: the spec is sent as a cached system prefix, read at 0.1x price.")
    if any(stage.cost_usd is None for stage in stages):
        notes.append("No price is known for a model here; set `price:` in its LLM config to see costs.")
    tree = [{"domain": d.name, "subdomains": [{"name": sub.name, "excerpt_similarity": sub.excerpt_similarity,
                                               "excerpt_verified": sub.excerpt_verified}
                                              for sub in subdomains if sub.domain_id == d.id]} for d in domains]
    return Projection(stages=stages, documents=documents, decomposition=tree, notes=notes)


def estimate_corpus(config: CorpusConfig, spec: ModelSpec | None, spec_text: str) -> Projection:
    """A corpus run's projection before any call: the spec's own sections with `decompose: headings`, else
    placeholder domains and subdomains of the configured shape (the real decomposition is a few calls)."""
    from msmkit.generate.corpus.decompose import decompose_by_headings

    prompts = CorpusPrompts(config, spec.text if spec else spec_text, config.generator.is_base_model)
    if config.decompose == "headings" and spec is not None:
        domains, subdomains = decompose_by_headings(spec)
        return project(config, prompts, domains, subdomains)
    counts = config.counts
    domains = [Domain(id=f"d{d}", name=f"domain {d}") for d in range(counts.domains)]
    share = spec_text[:max(400, len(spec_text) // max(1, counts.domains * counts.subdomains_per_domain))]
    subdomains = [Subdomain(id=f"d{d}s{s}", domain_id=f"d{d}", name=f"subdomain {s}", spec_excerpt=share)
                  for d in range(counts.domains) for s in range(counts.subdomains_per_domain)]
    decomposition = project_calls("decomposition", 1 + counts.domains, estimate_tokens(spec_text) + 500,
                                  150 * counts.subdomains_per_domain, config.generator)
    return project(config, prompts, domains, subdomains, decomposition_calls=decomposition)


def projected_tokens(config: CorpusConfig, projection: Projection) -> int:
    """Tokens the corpus will hold (documents x target length)."""
    return int(projection.documents * config.lengths.target_words * _TOKENS_PER_WORD)
