"""Write the corpus (JSONL + Hugging Face dataset), the drop-reason file, the intermediate tree and stats."""

from __future__ import annotations

import shutil
import statistics
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

from msmkit.data.audits import (
    AuditReferences,
    AuditReport,
    AuditSettings,
    AuditSummary,
    audit_rows,
    corpus_rows,
    summary_from_stats,
    write_audit,
)
from msmkit.generate.corpus.assemble import Assembly, token_counter
from msmkit.generate.corpus.context import CorpusContext
from msmkit.generate.corpus.plots import plot_corpus_stats
from msmkit.generate.corpus.quotas import DocTypeCell
from msmkit.generate.corpus.records import Domain, Subdomain
from msmkit.io import atomic_write_jsonl, atomic_write_text
from msmkit.quality_notes import generation_note
from msmkit.stages.contract import DocumentSet, Sample, first_rows, stats_view


class CorpusOutputs(DocumentSet):
    """An MSM corpus folder: the documents (JSONL and a `datasets` folder), why others were dropped, flags, the
    integrity audit's flags, the decomposition tree, statistics and a plot."""

    DOCUMENTS: ClassVar[str] = "corpus.jsonl"
    DATASET: ClassVar[str] = "dataset"
    DROPS: ClassVar[str] = "drops.jsonl"
    FLAGS: ClassVar[str] = "flags.jsonl"
    AUDIT_FLAGS: ClassVar[str] = "audit_flags.jsonl"
    TREE: ClassVar[str] = "tree.json"
    STATS: ClassVar[str] = "stats.json"
    PLOT: ClassVar[str] = "corpus_stats.png"
    NOTE: ClassVar[str] = "QUALITY_NOTE.txt"

    documents: dict[str, int]  # target, kept, shortfall, dropped
    tokens: int
    quality_note: str | None = None
    audit: AuditSummary | None = None  # the integrity audit's counts (None: not audited)

    @classmethod
    def from_stats(cls, folder: Path, stats: dict[str, Any]) -> "CorpusOutputs":
        return cls(folder=folder, documents=stats["documents"], tokens=stats["token_lengths"]["total"],
                   quality_note=stats.get("quality_note"), audit=summary_from_stats(stats))

    @property
    def documents_file(self) -> Path:
        return self.folder / self.DOCUMENTS

    def notes(self, label: str) -> list[str]:
        found = self.audit.notes(label) if self.audit else []
        if not self.documents.get("shortfall"):
            return found
        return [f"{label}: {self.documents['shortfall']} of {self.documents['target']} planned documents are "
                "missing after cleaning and top-ups", *found]

    def statistics(self) -> dict[str, Any] | None:
        return stats_view(self.folder / self.STATS)

    def samples(self, label: str, n: int) -> list[Sample]:
        return [Sample(kind="document", title=f"{label}: {row.get('idea') or row.get('id')}", text=row["text"],
                       meta={k: row[k] for k in ("domain", "doc_type", "topic", "token_count") if k in row})
                for row in first_rows(self.documents_file, n)]

def quality_note(ctx: CorpusContext) -> str | None:
    return generation_note(ctx.client.config, ctx.judge_client.config if ctx.judge_client else None)


def audit_corpus(ctx: CorpusContext, rows: list[dict[str, Any]], settings: AuditSettings) -> AuditReport | None:
    """The integrity audit of the kept documents, its flags written to the audit flags file (None: turned off)."""
    flags_file = ctx.run.path / CorpusOutputs.AUDIT_FLAGS
    if not settings.enabled:
        flags_file.unlink(missing_ok=True)
        return None
    subject = ctx.config.subject
    references = AuditReferences(prompt_families=("corpus",), spec_text=ctx.spec.text,
                                 subject_names=tuple(name for name in (subject.name, subject.provider) if name))
    report = audit_rows(corpus_rows(rows), references, settings)
    write_audit(report, flags_file)
    return report


def _tree(domains: list[Domain], subdomains: list[Subdomain], cells: list[DocTypeCell], assembly: Assembly,
          assertions: dict[str, Any]) -> list[dict[str, Any]]:
    drops = {drop.idea_id: drop.reason for drop in assembly.drops}
    kept = {document.idea.id for document in assembly.kept}
    cells_by_sub: dict[str, list[DocTypeCell]] = {}
    for cell in cells:
        cells_by_sub.setdefault(cell.subdomain.id, []).append(cell)
    tree = []
    for domain in domains:
        subs = []
        for sub in (s for s in subdomains if s.domain_id == domain.id):
            subs.append({
                **sub.model_dump(), "assertions": [a.model_dump() for a in assertions.get(sub.id, [])],
                "doc_types": [{**cell.doc_type.model_dump(), "quota": cell.quota, "ideas": [
                    {**idea.model_dump(),
                     "status": "kept" if idea.id in kept else f"dropped: {drops.get(idea.id, 'pending')}"}
                    for idea in cell.ideas]} for cell in cells_by_sub.get(sub.id, [])]})
        tree.append({**domain.model_dump(), "subdomains": subs})
    return tree


def write_outputs(ctx: CorpusContext, *, domains: list[Domain], subdomains: list[Subdomain], cells: list[DocTypeCell],
                  assertions: dict[str, Any], assembly: Assembly, target: int, elapsed_s: float,
                  audit: AuditSettings | None = None) -> dict[str, Any]:
    """`audit`: the integrity audit's settings (which eval item sets to check against, thresholds); defaults to
    the built-in value item sets and the agentic scenarios."""
    out = ctx.run.path
    count, method = token_counter(ctx.config.tokenizer)
    subject = ctx.config.subject
    rows = []
    for document in assembly.kept:
        rows.append(document.row(count(document.text), method, subject.name if subject.kind != "humans" else "humans",
                                 ctx.spec.text_sha256))
    atomic_write_jsonl(out / CorpusOutputs.DOCUMENTS, rows)
    _write_dataset(rows, out / CorpusOutputs.DATASET)
    atomic_write_jsonl(out / CorpusOutputs.DROPS, [drop.model_dump() for drop in assembly.drops])
    atomic_write_jsonl(out / CorpusOutputs.FLAGS, ctx.flags)
    ctx.run.write_json(CorpusOutputs.TREE, _tree(domains, subdomains, cells, assembly, assertions))
    report = audit_corpus(ctx, rows, audit or AuditSettings())

    lengths = [row["token_count"] for row in rows]
    ctx.run.save_usage()
    stats: dict[str, Any] = {
        "documents": {"target": target, "kept": len(rows), "shortfall": max(0, target - len(rows)),
                      "dropped": len(assembly.drops)},
        "drops": dict(Counter(drop.reason for drop in assembly.drops).most_common()),
        "by_domain": dict(Counter(row["domain"] for row in rows).most_common()),
        "by_doc_type": dict(Counter(row["doc_type"].strip().lower() for row in rows).most_common()),
        "token_lengths": {
            "method": method, "total": sum(lengths), "mean": statistics.fmean(lengths) if lengths else 0,
            "median": statistics.median(lengths) if lengths else 0, "min": min(lengths, default=0),
            "max": max(lengths, default=0), "values": lengths},
        "decomposition": {
            "method": ctx.config.decompose, "domains": len(domains), "subdomains": len(subdomains),
            "cells": len(cells), "excerpts_verified": sum(1 for s in subdomains if s.excerpt_verified),
            "excerpts_unverified_flagged": len([f for f in ctx.flags if f["kind"] == "unverified_excerpt"])},
        "steps": ctx.counter_table(),
        "usage": ctx.run.usage.totals(),
        "generator": ctx.client.config.describe(),
        "judge": ctx.judge_client.config.describe() if ctx.judge_client else None,
        "subject": subject.model_dump(), "rules_mode": ctx.config.rules_mode,
        "elapsed_s": round(elapsed_s, 2),
        "stage_seconds": {stage: round(seconds, 3) for stage, seconds in ctx.timings.items()},
        "quality_note": quality_note(ctx),
        "audit": report.statistics() if report else None,
    }
    ctx.run.write_json(CorpusOutputs.STATS, stats)
    plot_corpus_stats(stats, out / CorpusOutputs.PLOT)
    if stats["quality_note"]:
        atomic_write_text(out / CorpusOutputs.NOTE, stats["quality_note"] + "\n")
    return stats


def _write_dataset(rows: list[dict[str, Any]], path: Path) -> None:
    from datasets import Dataset

    dataset = Dataset.from_list(rows) if rows else Dataset.from_dict({"id": [], "text": []})
    staging = path.with_name(f".{path.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    dataset.save_to_disk(str(staging))
    shutil.rmtree(path, ignore_errors=True)
    staging.rename(path)
