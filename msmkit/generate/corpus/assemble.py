"""From logged answers to the corpus: clean, dedup, apply the judge's verdicts, and trim each cell to its quota.

Cleaning and dedup signatures are worked out as each answer arrives; the decision runs over all answers
in a fixed order, round by round, so earlier keeps stay kept when replacements add documents, and the
same answers always give the same corpus, whatever order they arrived in.
"""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from msmkit.data.dedup import EmbeddingIndex, MinHashIndex, embed, load_embedder
from msmkit.data.filters import IdentityCheck, estimate_tokens
from msmkit.generate.corpus.context import CorpusContext
from msmkit.generate.corpus.documents import Outcome, final_answer, judge_outcome
from msmkit.generate.corpus.judge import Verdict
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
    """Cleans each answer as it arrives and prepares its dedup signature; `assemble` then decides the corpus from
    every logged answer in a fixed order (no calls), so the same answers always give the same corpus."""

    def __init__(self, ctx: CorpusContext) -> None:
        self.ctx = ctx
        self.identity = identity_check_for(ctx)
        settings = ctx.config.dedup
        self._minhash = MinHashIndex(settings.minhash_threshold) if settings.method == "minhash" else None
        self._signatures: dict[str, Any] = {}  # minhash signatures by text hash
        self._vectors: dict[str, np.ndarray] = {}  # embeddings by text hash
        self._waiting: dict[str, str] = {}  # texts to embed with the next batch
        self._embed_lock = asyncio.Lock()
        self._embedder: Any = None

    def clean(self, idea_id: str) -> Outcome:
        """Keep-or-drop of an idea's final answer by the checks that need nothing but the answer."""
        config = self.ctx.config
        return judge_outcome(final_answer(self.ctx, idea_id), base_model=self.ctx.prompts.base_model,
                             min_words=config.lengths.min_words, max_words=config.lengths.max_words,
                             identity=self.identity, base_opening=self.ctx.prompts.base_document_opening)

    async def prepare(self, text: str) -> None:
        """Work out a clean document's dedup signature now, while other calls are in flight. Embeddings are
        computed off the event loop, in batches of whatever arrived while the previous batch ran."""
        key = text_hash(text)
        if self._minhash is not None:
            if key not in self._signatures:
                self._signatures[key] = self._minhash.signature(text)
            return
        if self.ctx.config.dedup.method != "embedding" or key in self._vectors:
            return
        self._waiting[key] = text
        async with self._embed_lock:
            if not self._waiting:
                return
            batch, self._waiting = self._waiting, {}
            if self._embedder is None:
                self._embedder = await asyncio.to_thread(load_embedder)
            vectors = await asyncio.to_thread(embed, list(batch.values()), self._embedder)
            self._vectors.update(zip(batch, vectors))

    def _near_duplicates(self, candidates: list[tuple[DocTypeCell, Idea, str]]) -> dict[int, tuple[str, float]]:
        settings = self.ctx.config.dedup
        if settings.method == "none" or not candidates:
            return {}
        if self._minhash is not None:
            index = MinHashIndex(settings.minhash_threshold)
            found: dict[int, tuple[str, float]] = {}
            for position, (_, idea, text) in enumerate(candidates):
                key = text_hash(text)
                signature = self._signatures.get(key)
                if signature is None:
                    signature = self._signatures[key] = index.signature(text)
                duplicate = index.find(text, signature)
                if duplicate is None:
                    index.add(idea.id, text, signature)
                else:
                    found[position] = (str(duplicate[0]), duplicate[1])
            return found
        hashes = [text_hash(text) for _, _, text in candidates]
        missing = {h: text for h, (_, _, text) in zip(hashes, candidates) if h not in self._vectors}
        if missing:
            self._embedder = self._embedder or load_embedder()
            self._vectors.update(zip(missing, embed(list(missing.values()), self._embedder)))
        embedding_index = EmbeddingIndex(settings.embedding_threshold)
        duplicates = embedding_index.check_and_add_many(
            [idea.id for _, idea, _ in candidates], [text for _, _, text in candidates],
            vectors=np.stack([self._vectors[h] for h in hashes]))
        return {position: (str(key), score) for position, (key, score) in duplicates.items()}

    def assemble(self, cells: list[DocTypeCell], verdicts: dict[str, Verdict]) -> Assembly:
        """Clean, dedup (keep-first in order of round, cell, position), apply the judge's `verdicts` (by idea id)
        and trim each cell to its quota."""
        config = self.ctx.config
        entries = sorted(((idea.round, order, position, cell, idea) for order, cell in enumerate(cells)
                          for position, idea in enumerate(cell.ideas)), key=lambda entry: entry[:3])
        assembly = Assembly()
        candidates: list[tuple[DocTypeCell, Idea, str]] = []
        models: dict[str, str] = {}
        for _, _, _, cell, idea in entries:
            outcome = self.clean(idea.id)
            if outcome.text is None:
                assembly.drops.append(Drop(idea_id=idea.id, reason=outcome.reason or "unknown",
                                           detail=outcome.detail, excerpt=outcome.excerpt))
                continue
            candidates.append((cell, idea, outcome.text))
            models[idea.id] = (final_answer(self.ctx, idea.id) or {}).get("model") or self.ctx.client.config.model
        duplicates = self._near_duplicates(candidates)
        unique: list[tuple[DocTypeCell, Idea, str]] = []
        for position, (cell, idea, text) in enumerate(candidates):
            if position in duplicates:
                of, similarity = duplicates[position]
                assembly.drops.append(Drop(idea_id=idea.id, reason="near_duplicate",
                                           detail=f"similarity {similarity:.3f} to {of} ({config.dedup.method})",
                                           excerpt=text[:300]))
            else:
                unique.append((cell, idea, text))
        judged = self.ctx.judge_client is not None
        per_cell: dict[str, int] = defaultdict(int)
        quotas = {cell.id: cell.quota for cell in cells}
        for cell, idea, text in unique:
            verdict = verdicts.get(idea.id) or (Verdict(False, "judge_failed", "not judged") if judged else None)
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
