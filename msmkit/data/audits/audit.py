"""Run every audit on one generated set (a corpus or an AFT set) and gather the flags, counts and offenders."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

import numpy as np

from msmkit.data.audits import fingerprints, overlap
from msmkit.data.audits.findings import AuditReport, Flag, Offender, summarise
from msmkit.data.audits.references import ItemSet, ScenarioEntity, load_item_sets, prompt_texts, scenario_entities
from msmkit.data.audits.rows import AuditedRow
from msmkit.data.audits.settings import AuditSettings
from msmkit.data.audits.text import sentence_windows, words
from msmkit.data.dedup import embed


@dataclass(frozen=True)
class AuditReferences:
    """What a set is compared with. `item_sets` None: the settings' `eval_items`; `entities` None: the installed
    agentic scenarios' (when the settings' `scenarios` is on)."""

    prompt_families: tuple[str, ...] = ()  # packaged prompt folders the generator used: ("corpus",), ("aft",)
    subject_names: tuple[str, ...] = ()  # the subject's name and maker: they recur by design
    spec_text: str | None = None
    item_sets: tuple[ItemSet, ...] | None = None
    entities: tuple[ScenarioEntity, ...] | None = None


@lru_cache(maxsize=1)
def shared_embedder() -> Any:
    """all-MiniLM-L6-v2, loaded once per process (it takes seconds) and only read afterwards."""
    from msmkit.data.dedup import load_embedder

    return load_embedder()


@lru_cache(maxsize=16)
def _shared_vectors(texts: tuple[str, ...]) -> np.ndarray:
    """Embeddings of reference texts (items, spec passages) by the shared embedder, kept for the next set."""
    return embed(texts, shared_embedder())


def _embedding_overlap(rows: Sequence[AuditedRow], item_sets: Sequence[ItemSet], spec_text: str | None,
                       settings: AuditSettings, embedder: Any) -> list[Flag]:
    items = [(f"{item_set.name}/{item.id}", item) for item_set in item_sets for item in item_set.items]
    item_texts = tuple(item.text for _, item in items)
    spec_passages = tuple(sentence_windows(spec_text, settings.window_sentences)) if spec_text else ()

    def reference(texts: tuple[str, ...]) -> np.ndarray:
        return _shared_vectors(texts) if embedder is None else embed(texts, embedder)

    item_vectors = reference(item_texts)
    baseline = (reference(spec_passages) @ item_vectors.T).max(axis=0) if spec_passages else \
        np.full(len(items), -1.0, dtype=np.float32)
    model = embedder if embedder is not None else shared_embedder()
    return overlap.eval_embedding_overlap(rows, items, item_vectors, baseline, settings,
                                          lambda texts: embed(texts, model))


def audit_rows(rows: Sequence[AuditedRow], references: AuditReferences, settings: AuditSettings | None = None,
               *, embedder: Any = None) -> AuditReport:
    """Every check on `rows`; `embedder` defaults to the packaged all-MiniLM-L6-v2."""
    settings = settings or AuditSettings()
    flags: list[Flag] = []
    skipped: list[str] = []
    top: dict[str, list[Offender]] = {}
    rates: dict[str, float] = {}

    fragments = prompt_texts(references.prompt_families, references.subject_names)
    copies, rates["prompt_copy"] = overlap.prompt_copies(rows, fragments, settings)
    flags += copies

    item_sets = list(references.item_sets) if references.item_sets is not None else load_item_sets(settings.eval_items)
    flags += overlap.eval_ngram_overlap(rows, item_sets, settings)
    if settings.embedding and item_sets:
        flags += _embedding_overlap(rows, item_sets, references.spec_text, settings, embedder)
    elif item_sets:
        skipped.append("eval_embedding: turned off (embedding: false)")

    entities: tuple[ScenarioEntity, ...] = ()
    if references.entities is not None:
        entities = references.entities
    elif settings.scenarios:
        entities, notes = scenario_entities()
        skipped += [f"scenario_entity: {note}" for note in notes]
    flags += overlap.scenario_mentions(rows, entities, exclude=references.subject_names)
    contaminated = {flag.id for flag in flags if flag.check in ("eval_ngram", "eval_embedding", "scenario_entity")}
    rates["eval_contamination"] = len(contaminated) / len(rows) if rows else 0.0

    known = fingerprints.known_words([references.spec_text or "", *(text for _, text in fragments)])
    subject_words = frozenset(token for name in references.subject_names for token in words(name).tokens)
    for found in (fingerprints.recurring_names(rows, settings, known, subject_words),
                  fingerprints.recurring_openings(rows, settings),
                  fingerprints.date_clusters(rows, settings),
                  fingerprints.place_clusters(rows, settings, known, subject_words)):
        flags += found.flags
        top[found.kind] = found.top
    if references.spec_text:
        quotes, top["spec_quotation"], rates["spec_quotation"] = fingerprints.spec_quotation(
            rows, references.spec_text, settings)
        flags += quotes
    else:
        skipped.append("spec_quotation: no spec text given")

    return AuditReport(
        summary=summarise(len(rows), flags, skipped), flags=flags, top=top,
        rates={name: round(rate, 4) for name, rate in rates.items()},
        references={"prompt_templates": sorted({name for name, _ in fragments}),
                    "item_sets": {item_set.name: len(item_set.items) for item_set in item_sets},
                    "scenario_entities": sorted(entity.name for entity in entities),
                    "subject_names": list(references.subject_names), "spec": references.spec_text is not None},
        settings=settings.model_dump(mode="json"))
