"""From logged answers to the corpus: clean, dedup, judge, and trim each cell to its quota.

Runs on every pass (and every rerun) over all answers in a fixed order, round by round, so earlier
keeps stay kept when top-up rounds add documents, and the same answers always give the same corpus.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from msmkit.data.dedup import EmbeddingIndex, MinHashIndex, embed
from msmkit.data.filters import IdentityCheck, estimate_tokens
from msmkit.generate.corpus.context import CorpusContext
from msmkit.generate.corpus.documents import final_answer, judge_outcome
from msmkit.generate.corpus.judge import JudgeItem, judge_documents
from msmkit.generate.corpus.quotas import DocTypeCell
from msmkit.generate.corpus.records import Drop, Idea, text_hash


@dataclass
class KeptDocument:
    cell: DocTypeCell
    idea: Idea
    text: str
    model: str

    def row(self, token_count: int, token_count_method: str, subject: str, spec_sha256: str) -> dict[str, Any]:
        cell = self.cell
        return {
            "id": self.idea.id, "text": self.text, "domain": cell.domain.name, "domain_id": cell.domain.id,
            "subdomain": cell.subdomain.name, "subdomain_id": cell.subdomain.id,
            "assertion_ids": list(self.idea.assertion_ids), "doc_type": cell.doc_type.name,
            "doc_type_id": cell.doc_type.id, "idea": self.idea.title, "idea_id": self.idea.id,
            "round": self.idea.round, "generator_model": self.model, "token_count": token_count,
            "token_count_method": token_count_method, "word_count": len(self.text.split()),
            "subject": subject, "spec_sha256": spec_sha256,
        }


@dataclass
class Assembly:
    kept: list[KeptDocument] = field(default_factory=list)
    drops: list[Drop] = field(default_factory=list)
    kept_per_cell: dict[str, int] = field(default_factory=dict)

    def deficits(self, cells: list[DocTypeCell]) -> dict[str, int]:
        return {cell.id: cell.quota - self.kept_per_cell.get(cell.id, 0) for cell in cells
                if self.kept_per_cell.get(cell.id, 0) < cell.quota}


def identity_check_for(ctx: CorpusContext) -> IdentityCheck | None:
    if not ctx.config.faithfulness.identity_check:
        return None
    subject = ctx.config.subject
    if subject.kind == "humans":
        return IdentityCheck.build((), subject_is_ai=False,
                                   extra_other_names=[n for n in (subject.model_name, subject.provider_name) if n])
    others = [n for n in (subject.model_name, subject.provider_name) if n] if subject.kind == "other_ai" else []
    return IdentityCheck.build([n for n in (subject.name, subject.provider) if n], extra_other_names=others)


class Assembler:
    def __init__(self, ctx: CorpusContext) -> None:
        self.ctx = ctx
        self.identity = identity_check_for(ctx)
        self._vectors: dict[str, np.ndarray] = {}  # embedding cache across rounds, by text hash

    def _near_duplicates(self, candidates: list[tuple[DocTypeCell, Idea, str]]) -> dict[int, tuple[str, float]]:
        settings = self.ctx.config.dedup
        if settings.method == "none" or not candidates:
            return {}
        if settings.method == "minhash":
            index = MinHashIndex(settings.minhash_threshold)
            found: dict[int, tuple[str, float]] = {}
            for position, (_, idea, text) in enumerate(candidates):
                duplicate = index.check_and_add(idea.id, text)
                if duplicate is not None:
                    found[position] = (str(duplicate[0]), duplicate[1])
            return found
        hashes = [text_hash(text) for _, _, text in candidates]
        missing = [(h, text) for h, (_, _, text) in zip(hashes, candidates) if h not in self._vectors]
        if missing:
            for (h, _), vector in zip(missing, embed([text for _, text in missing])):
                self._vectors[h] = vector
        embedding_index = EmbeddingIndex(settings.embedding_threshold)
        duplicates = embedding_index.check_and_add_many(
            [idea.id for _, idea, _ in candidates], [text for _, _, text in candidates],
            vectors=np.stack([self._vectors[h] for h in hashes]))
        return {position: (str(key), score) for position, (key, score) in duplicates.items()}

    async def assemble(self, cells: list[DocTypeCell]) -> Assembly:
        config = self.ctx.config
        base = self.ctx.prompts.base_model
        entries = sorted(((idea.round, order, position, cell, idea) for order, cell in enumerate(cells)
                          for position, idea in enumerate(cell.ideas)), key=lambda entry: entry[:3])
        assembly = Assembly()
        candidates: list[tuple[DocTypeCell, Idea, str]] = []
        models: dict[str, str] = {}
        for _, _, _, cell, idea in entries:
            record = final_answer(self.ctx, idea.id)
            outcome = judge_outcome(record, base_model=base, min_words=config.lengths.min_words,
                                    max_words=config.lengths.max_words, identity=self.identity,
                                    base_opening=self.ctx.prompts.base_document_opening)
            if outcome.text is None:
                assembly.drops.append(Drop(idea_id=idea.id, reason=outcome.reason or "unknown",
                                           detail=outcome.detail, excerpt=outcome.excerpt))
                continue
            candidates.append((cell, idea, outcome.text))
            models[idea.id] = (record or {}).get("model") or self.ctx.client.config.model
        duplicates = self._near_duplicates(candidates)
        unique: list[tuple[DocTypeCell, Idea, str]] = []
        for position, candidate in enumerate(candidates):
            if position in duplicates:
                of, similarity = duplicates[position]
                assembly.drops.append(Drop(idea_id=candidate[1].id, reason="near_duplicate",
                                           detail=f"similarity {similarity:.3f} to {of} ({config.dedup.method})",
                                           excerpt=candidate[2][:300]))
            else:
                unique.append(candidate)
        verdicts = await judge_documents(self.ctx, [JudgeItem(idea.id, text, cell.assertions)
                                                    for cell, idea, text in unique])
        per_cell: dict[str, int] = defaultdict(int)
        quotas = {cell.id: cell.quota for cell in cells}
        for cell, idea, text in unique:
            verdict = verdicts.get(idea.id)
            if verdict is not None and not verdict.keep:
                assembly.drops.append(Drop(idea_id=idea.id, reason=verdict.reason, detail=verdict.detail,
                                           excerpt=text[:300]))
                continue
            if per_cell[cell.id] >= quotas[cell.id]:
                assembly.drops.append(Drop(idea_id=idea.id, reason="over_quota", detail="cell already full"))
                continue
            per_cell[cell.id] += 1
            assembly.kept.append(KeptDocument(cell, idea, text, models[idea.id]))
        assembly.kept_per_cell = dict(per_cell)
        return assembly


def token_counter(name: str | None) -> tuple[Any, str]:
    """(count function, method name): a local HF tokenizer when configured, else ~4 characters per token."""
    if not name:
        return estimate_tokens, "estimate_4_chars_per_token"
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=True)
    return (lambda text: len(tokenizer.encode(text, add_special_tokens=False))), f"tokenizer:{name}"


def token_histogram(counts: list[int], bins: int = 20) -> dict[str, Any]:
    if not counts:
        return {"bins": [], "counts": []}
    top = max(counts)
    width = max(1, math.ceil(top / bins))
    edges = [width * i for i in range(bins + 1)]
    histogram = [0] * bins
    for count in counts:
        histogram[min(bins - 1, count // width)] += 1
    return {"bins": edges, "counts": histogram}
