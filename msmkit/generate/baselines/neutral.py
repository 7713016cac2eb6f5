"""Neutral corpus for the token-matched control arm: documents with no spec content, generated on
everyday topics until their token total matches a given MSM corpus (within a tolerance).

Tokens are counted with the target model's tokenizer when `tokenizer` is set (the same count is
applied to the MSM corpus), else estimated at ~4 characters per token; stats.json says which.
Documents are asked as task k -> (topic, document type, sample), logged as they arrive, so a rerun
resumes and replays to the same selection.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar

from pydantic import Field

from msmkit.config import StrictModel, load_config, load_yaml
from msmkit.data.chat import make_token_counter, write_jsonl_and_dataset
from msmkit.data.filters import looks_like_refusal
from msmkit.errors import ConfigError, DataError
from msmkit.generate.aft.values import ValueGuard
from msmkit.generate.context import GenerationContext
from msmkit.io import atomic_write_jsonl
from msmkit.llm.client import LLMClient
from msmkit.llm.progress import progress_bar
from msmkit.llm.types import LLMConfig, LLMRequest, StopReason
from msmkit.prompts import load_prompt, prompt_hashes
from msmkit.runs import RunDir
from msmkit.stages.contract import DocumentSet, Sample, first_rows, stats_view

NEUTRAL_TOPICS: tuple[str, ...] = (
    "home vegetable gardening", "the water cycle", "maintaining a bicycle", "the history of the printing press",
    "baking sourdough bread", "how tides work", "birdwatching for beginners", "caring for houseplants",
    "the geology of volcanoes", "planning a budget road trip", "the rules of chess openings", "knitting a scarf",
    "how bridges carry loads", "the life cycle of butterflies", "organising a small library", "making pottery",
    "the basics of astronomy", "training for a 10k run", "the history of the bicycle", "composting at home",
    "how coffee is roasted", "the migration of whales", "writing a good recipe", "repairing a leaking tap",
    "the history of maps", "photographing landscapes", "how bees make honey", "learning to swim as an adult",
    "the invention of the telephone", "keeping backyard chickens",
)
NEUTRAL_DOC_TYPES: tuple[str, ...] = (
    "blog post", "encyclopedia entry", "how-to guide", "magazine feature", "newsletter article", "forum post",
)
# AI talk is off-limits in a neutral corpus whatever the spec.
AI_TERMS: tuple[str, ...] = ("artificial intelligence", "AI assistant", "language model", "chatbot", "machine learning")
NEUTRAL_PROMPTS = ["aft/neutral_document", "aft/base_neutral_document"]
_SENTENCE_END = re.compile(r"[.!?][\"')\]]?\s")


class NeutralConfig(StrictModel):
    generator: LLMConfig = Field(default_factory=LLMConfig)
    tokenizer: str | None = None  # the target model's tokenizer (local folder or cached name); else ~4 chars/token
    tolerance: float = Field(0.02, ge=0.0, le=0.5)  # |achieved/target - 1| allowed
    topics: list[str] = Field(default_factory=lambda: list(NEUTRAL_TOPICS), min_length=1)
    doc_types: list[str] = Field(default_factory=lambda: list(NEUTRAL_DOC_TYPES), min_length=1)
    target_words: int = Field(500, ge=20)
    max_tokens: int = Field(1500, ge=16)
    min_words: int = Field(60, ge=1)
    forbidden_terms: list[str] = Field(default_factory=list)  # the spec's vocabulary: any mention drops a document
    max_rounds: int = Field(8, ge=1)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    seed: int = 0


def load_neutral_config(path: str | Path) -> NeutralConfig:
    data = load_yaml(path)
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    return load_config(path, NeutralConfig, section="neutral" if isinstance(data, dict) and "neutral" in data else None)


def corpus_token_total(path: str | Path, count: Callable[[str], int]) -> tuple[int, int]:
    """(token total, documents) of an MSM corpus JSONL with a `text` column."""
    source = Path(path)
    if not source.is_file():
        raise DataError(f"{source}: no such corpus file (expected the documents JSONL of an MSM corpus run)")
    total = documents = 0
    with open(source, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{source}:{number}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                raise DataError(f"{source}:{number}: each row needs a string 'text' field")
            total += count(row["text"])
            documents += 1
    if documents == 0:
        raise DataError(f"{source}: the corpus is empty; there is nothing to match")
    return total, documents


class NeutralOutputs(DocumentSet):
    """A neutral corpus folder: documents with no spec content (JSONL and `datasets`), drops and statistics."""

    DOCUMENTS: ClassVar[str] = "neutral.jsonl"
    DATASET: ClassVar[str] = "dataset"
    DROPS: ClassVar[str] = "drops.jsonl"
    STATS: ClassVar[str] = "stats.json"

    documents: int
    tokens: int
    target_tokens: int
    within_tolerance: bool

    @classmethod
    def from_stats(cls, folder: Path, stats: dict[str, Any]) -> "NeutralOutputs":
        return cls(folder=folder, documents=stats["documents"], tokens=stats["achieved_tokens"],
                   target_tokens=stats["target_tokens"], within_tolerance=stats["within_tolerance"])

    @property
    def documents_file(self) -> Path:
        return self.folder / self.DOCUMENTS

    def notes(self, label: str) -> list[str]:
        if self.within_tolerance:
            return []
        return [f"{label}: {self.tokens:,} tokens against a target of {self.target_tokens:,}: outside the tolerance"]

    def statistics(self) -> dict[str, Any] | None:
        return stats_view(self.folder / self.STATS)

    def samples(self, label: str, n: int) -> list[Sample]:
        return [Sample(kind="document", title=f"{label}: {row.get('id')}", text=row["text"],
                       meta={k: row[k] for k in ("doc_type", "topic", "token_count") if k in row})
                for row in first_rows(self.documents_file, n)]


@dataclass
class NeutralResult:
    out_dir: Path
    stats: dict[str, Any]


class NeutralGenerator:
    def __init__(self, config: NeutralConfig, run: RunDir, client: LLMClient) -> None:
        self.config = config
        self.ctx = GenerationContext(name="neutral", client=client, run=run)
        self.guard = ValueGuard.build([*config.forbidden_terms, *AI_TERMS])

    def task(self, k: int) -> tuple[str, str, str, int]:
        topics, types = self.config.topics, self.config.doc_types
        topic, doc_type = topics[k % len(topics)], types[(k // len(topics)) % len(types)]
        sample = k // (len(topics) * len(types))
        return f"{k}:{topic}:{doc_type}:{sample}", topic, doc_type, sample

    def request(self, k: int) -> LLMRequest:
        _, topic, doc_type, sample = self.task(k)
        config = self.config
        if config.generator.is_base_model:
            text = load_prompt("aft/base_neutral_document").render(doc_type_title=doc_type.title(),
                                                                  topic_title=topic[:1].upper() + topic[1:])
        else:
            text = load_prompt("aft/neutral_document").render(doc_type=doc_type, topic=topic,
                                                             target_words=config.target_words)
        return LLMRequest.of(text, max_tokens=config.max_tokens, temperature=config.temperature,
                             sample_index=config.seed * 100_000 + sample)

    async def answer(self, k: int) -> dict[str, Any] | None:
        task = self.task(k)[0]
        stored = self.ctx.stored("documents", task)
        if stored is not None:
            return stored
        response = await self.ctx.ask("documents", self.request(k), task=task)
        if response is None:
            return None
        record = {"task": task, "answered": True, "text": response.text, "stop_reason": response.stop_reason,
                  "model": response.model}
        self.ctx.log("documents").append(record)
        return record

    def outcome(self, record: dict[str, Any] | None) -> tuple[str | None, str]:
        """(text, "") when usable, else (None, drop reason)."""
        if record is None:
            return None, "call_failed"
        text = record["text"].strip()
        if record["stop_reason"] == StopReason.REFUSAL or looks_like_refusal(text):
            return None, "refusal"
        if record["stop_reason"] == StopReason.MAX_TOKENS:
            if not self.config.generator.is_base_model:
                return None, "truncated"
            ends = list(_SENTENCE_END.finditer(text + " "))  # base models rarely stop: keep whole sentences
            text = text[:ends[-1].end()].strip() if ends else ""
        if len(text.split()) < self.config.min_words:
            return None, "too_short"
        if self.guard.problem(text):
            return None, "spec_content"
        return text, ""


async def generate_neutral_async(match_corpus: str | Path, config: NeutralConfig, out_dir: str | Path, *,
                                 report: Callable[[str], None] | None = None) -> NeutralResult:
    say = report or (lambda message: None)
    count, method = make_token_counter(config.tokenizer)
    target, msm_documents = corpus_token_total(match_corpus, count)
    run = RunDir(out_dir)
    run.write_config(config)
    run.record_prompts(prompt_hashes(NEUTRAL_PROMPTS))
    client = LLMClient(config.generator, run=run, stage="neutral")
    generator = NeutralGenerator(config, run, client)
    low, high = target * (1 - config.tolerance), target * (1 + config.tolerance)
    say(f"matching {target:,} tokens ({method}) of {msm_documents} MSM documents in {match_corpus}")
    kept: list[dict[str, Any]] = []
    drops: dict[str, int] = {}
    next_task, total, rounds = 0, 0, 0
    try:
        for _ in range(config.max_rounds):
            if total >= low:
                break
            mean = total / len(kept) if kept else config.target_words * 4 / 3
            wanted = max(1, math.ceil((target - total) / max(mean, 1.0) * 1.15))
            tasks = list(range(next_task, next_task + wanted))
            next_task += wanted
            rounds += 1
            with progress_bar(f"neutral round {rounds}", total=len(tasks)) as advance:
                async def one(k: int) -> dict[str, Any] | None:
                    record = await generator.answer(k)
                    advance()
                    return record

                records = await asyncio.gather(*(one(k) for k in tasks))
            for k, record in zip(tasks, records):
                text, reason = generator.outcome(record)
                if text is None:
                    drops[reason] = drops.get(reason, 0) + 1
                    continue
                tokens = count(text)
                if total + tokens > high:  # would overshoot: a later, shorter document may fit
                    drops["over_target"] = drops.get("over_target", 0) + 1
                    continue
                _, topic, doc_type, _ = generator.task(k)
                kept.append({"id": f"neutral-{k:06d}", "text": text, "topic": topic, "doc_type": doc_type,
                             "token_count": tokens, "token_count_method": method,
                             "generator": config.generator.describe()})
                total += tokens
            say(f"round {rounds}: {len(kept)} documents, {total:,} of {target:,} tokens")
        if not kept:
            generator.ctx.raise_if_calls_failed("no neutral documents were kept")
        write_jsonl_and_dataset(kept, run.path / NeutralOutputs.DOCUMENTS, run.path / NeutralOutputs.DATASET)
        atomic_write_jsonl(run.path / NeutralOutputs.DROPS, [{"reason": r, "count": n} for r, n in drops.items()])
        run.save_usage()
        counters = generator.ctx.counters["documents"]
        stats = {"target_tokens": target, "achieved_tokens": total, "ratio": round(total / target, 4),
                 "within_tolerance": low <= total <= high, "tolerance": config.tolerance,
                 "token_count_method": method, "msm_corpus": str(match_corpus), "msm_documents": msm_documents,
                 "documents": len(kept), "drops": drops, "rounds": rounds,
                 "requests": {"made": counters.requests, "reused_from_log": counters.reused,
                              "failed": counters.failed},
                 "usage": run.usage.totals(), "generator": config.generator.describe()}
        run.write_json(NeutralOutputs.STATS, stats)
        return NeutralResult(out_dir=run.path, stats=stats)
    finally:
        generator.ctx.close()
        await client.aclose()
        run.close()


def generate_neutral(match_corpus: str | Path, config: NeutralConfig, out_dir: str | Path, *,
                     report: Callable[[str], None] | None = None) -> NeutralResult:
    return asyncio.run(generate_neutral_async(match_corpus, config, out_dir, report=report))
