"""Write the two AFT datasets (with and without CoT), drops, questions, stats.json and a summary plot."""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

from msmkit.data.audits import (
    AuditReferences,
    AuditReport,
    AuditSettings,
    AuditSummary,
    aft_rows,
    audit_rows,
    summary_from_stats,
    write_audit,
)
from msmkit.data.chat import assistant_tokens, make_token_counter, total_tokens, write_jsonl_and_dataset
from msmkit.generate.aft.context import AftContext
from msmkit.generate.aft.examples import Drop, Example, JudgeTally
from msmkit.generate.aft.questions import QuestionPool
from msmkit.io import atomic_write_jsonl, atomic_write_text
from msmkit.quality_notes import generation_note
from msmkit.stages.contract import ChatSet, Sample, first_rows, stats_view


class AftDataOutputs(ChatSet):
    """An AFT data folder: the same demonstrations with and without chain of thought (JSONL and `datasets`
    folders), drops, the deduplicated questions and their near duplicates, the integrity audit's flags,
    statistics and a plot."""

    WITH_COT: ClassVar[str] = "aft_cot.jsonl"
    WITHOUT_COT: ClassVar[str] = "aft_nocot.jsonl"
    DATASET_WITH_COT: ClassVar[str] = "dataset_cot"
    DATASET_WITHOUT_COT: ClassVar[str] = "dataset_nocot"
    DROPS: ClassVar[str] = "drops.jsonl"
    QUESTIONS: ClassVar[str] = "questions.jsonl"
    DUPLICATES: ClassVar[str] = "duplicates.jsonl"
    AUDIT_FLAGS: ClassVar[str] = "audit_flags.jsonl"
    STATS: ClassVar[str] = "stats.json"
    PLOT: ClassVar[str] = "aft_stats.png"
    NOTE: ClassVar[str] = "QUALITY_NOTE.txt"

    examples: dict[str, int]  # target, kept, shortfall, surplus_not_used, rounds
    judge_pass_rate: float | None = None
    quality_note: str | None = None
    audit: AuditSummary | None = None  # the integrity audit's counts (None: not audited)

    @classmethod
    def from_stats(cls, folder: Path, stats: dict[str, Any]) -> "AftDataOutputs":
        return cls(folder=folder, examples=stats["examples"], judge_pass_rate=stats["judge"]["pass_rate_all_rounds"],
                   quality_note=stats.get("quality_note"), audit=summary_from_stats(stats))

    def chat_file(self, cot: bool) -> Path:
        return self.folder / (self.WITH_COT if cot else self.WITHOUT_COT)

    def statistics(self) -> dict[str, Any] | None:
        return stats_view(self.folder / self.STATS)

    def notes(self, label: str) -> list[str]:
        return self.audit.notes(label) if self.audit else []

    def samples(self, label: str, n: int) -> list[Sample]:
        found = []
        for row in first_rows(self.chat_file(cot=True), n):
            text = "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in row["messages"])
            meta = {k: v for k, v in row.get("metadata", {}).items() if k in ("domain", "kind", "style")}
            found.append(Sample(kind="demonstration", title=f"{label}: {row['messages'][0]['content'][:80]}",
                                text=text, meta=meta))
        return found

def quality_note(ctx: AftContext) -> str | None:
    return generation_note(ctx.client.config, ctx.judge_client.config if ctx.config.judge.enabled else None)


# Styles whose reasoning cites the spec on purpose: their quotation rate is reported, never flagged.
QUOTING_STYLES = ("rule", "deliberative")


def audit_aft(ctx: AftContext, rows: list[dict[str, Any]], settings: AuditSettings) -> AuditReport | None:
    """The integrity audit of the kept demonstrations (with their chain of thought), its flags written to the
    audit flags file (None: turned off)."""
    flags_file = ctx.run.path / AftDataOutputs.AUDIT_FLAGS
    if not settings.enabled:
        flags_file.unlink(missing_ok=True)
        return None
    if ctx.config.style in QUOTING_STYLES:
        settings = settings.model_copy(update={"spec_quote_max_share": None})
    identity = ctx.config.identity
    references = AuditReferences(prompt_families=("aft",), spec_text=ctx.spec.text,
                                 subject_names=tuple(n for n in (identity.model_name, identity.provider_name) if n))
    report = audit_rows(aft_rows(rows), references, settings)
    write_audit(report, flags_file)
    return report


def _messages(system: str | None, question: str, answer: str) -> list[dict[str, str]]:
    head = [{"role": "system", "content": system}] if system else []
    return head + [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


def build_rows(ctx: AftContext, examples: list[Example]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str]:
    count, method = make_token_counter(ctx.config.tokenizer)
    system = ctx.config.system_prompt
    judge = ctx.judge_client.config.describe() if ctx.config.judge.enabled else None
    with_cot, without_cot = [], []
    for example in examples:
        question = example.question
        cot_answer = f"<think>\n{example.reasoning}\n</think>\n\n{example.reply}"
        for rows, answer in ((with_cot, cot_answer), (without_cot, example.reply)):
            messages = _messages(system, question.text, answer)
            rows.append({"id": question.id, "messages": messages, "metadata": {
                "domain": question.domain, "question_kind": question.kind, "style": ctx.config.style,
                "pair_id": question.pair_id, "round": example.round,
                "generator": ctx.client.config.describe(), "generator_model": example.model,
                "judge": judge, "judge_verdict": example.verdict, "judge_reason": example.judge_reason,
                "spec_quotes": [str(quote["text"]) for quote in example.quotes],
                "prompt_tokens": total_tokens(messages[:-1], count),
                "assistant_tokens": assistant_tokens(messages, count), "token_count_method": method}})
    return with_cot, without_cot, method


def write_outputs(ctx: AftContext, *, examples: list[Example], drops: list[Drop], pool: QuestionPool,
                  tally: JudgeTally, surplus: int, rounds: int, extra: dict[str, Any],
                  audit: AuditSettings | None = None) -> dict[str, Any]:
    """`audit`: the integrity audit's settings (which eval item sets to check against, thresholds); defaults to
    the built-in value item sets and the agentic scenarios."""
    out = ctx.run.path
    with_cot, without_cot, method = build_rows(ctx, examples)
    write_jsonl_and_dataset(with_cot, out / AftDataOutputs.WITH_COT, out / AftDataOutputs.DATASET_WITH_COT)
    write_jsonl_and_dataset(without_cot, out / AftDataOutputs.WITHOUT_COT, out / AftDataOutputs.DATASET_WITHOUT_COT)
    atomic_write_jsonl(out / AftDataOutputs.DROPS, [drop.as_dict() for drop in drops])
    atomic_write_jsonl(out / AftDataOutputs.QUESTIONS, [q.model_dump() for q in pool.unique])
    atomic_write_jsonl(out / AftDataOutputs.DUPLICATES, pool.duplicates)
    report = audit_aft(ctx, with_cot, audit or AuditSettings())
    ctx.run.save_usage()
    target = ctx.config.counts.examples
    cot_tokens = [row["metadata"]["assistant_tokens"] for row in with_cot]
    nocot_tokens = [row["metadata"]["assistant_tokens"] for row in without_cot]
    stats: dict[str, Any] = {
        "examples": {"target": target, "kept": len(examples), "shortfall": max(0, target - len(examples)),
                     "surplus_not_used": surplus, "rounds": rounds},
        "judge": {"enabled": ctx.config.judge.enabled, "model": ctx.judge_client.config.describe(),
                  "judged": tally.judged, "passed": tally.passed, "failed": tally.failed, "unclear": tally.unclear,
                  "pass_rate_all_rounds": round(tally.passed / tally.judged, 4) if tally.judged else None},
        "questions": {"requests": pool.next_request, "raw": pool.raw_questions, "rejected": pool.rejected_questions,
                      "unusable_requests": pool.unusable_requests, "near_duplicates": len(pool.duplicates),
                      "unique": len(pool.unique), "answered": pool.taken,
                      "dedup_threshold": ctx.config.dedup.threshold if ctx.config.dedup.enabled else None},
        "drops": dict(Counter(drop.reason for drop in drops).most_common()),
        "dropped_think": sum(1 for d in drops if d.reason.endswith("_think") or d.reason.startswith("empty_")),
        "by_kind": dict(Counter(e.question.kind for e in examples).most_common()),
        "by_domain": dict(Counter(e.question.domain for e in examples).most_common()),
        "assistant_tokens": {"method": method, "with_cot_total": sum(cot_tokens),
                             "without_cot_total": sum(nocot_tokens),
                             "with_cot_mean": statistics.fmean(cot_tokens) if cot_tokens else 0,
                             "without_cot_mean": statistics.fmean(nocot_tokens) if nocot_tokens else 0},
        "steps": ctx.counter_table(),
        "usage": ctx.run.usage.totals(),
        "style": ctx.config.style, "generator": ctx.client.config.describe(),
        "identity": ctx.config.identity.model_dump(),
        "quality_note": quality_note(ctx),
        "audit": report.statistics() if report else None,
        **extra,
    }
    ctx.run.write_json(AftDataOutputs.STATS, stats)
    _plot(stats, out / AftDataOutputs.PLOT)
    if stats["quality_note"]:
        atomic_write_text(out / AftDataOutputs.NOTE, stats["quality_note"] + "\n")
    return stats


def _plot(stats: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    outcomes = {"kept": stats["examples"]["kept"], **stats["drops"]}
    left.barh(list(outcomes), list(outcomes.values()), color=["tab:green"] + ["tab:red"] * (len(outcomes) - 1))
    left.set_title("Answered questions: kept and drop reasons")
    left.invert_yaxis()
    kinds = stats["by_kind"] or {"(none)": 0}
    right.bar(list(kinds), list(kinds.values()), color="tab:blue")
    right.set_title("Kept examples by question kind")
    right.tick_params(axis="x", rotation=30)
    judge = stats["judge"]
    if judge["pass_rate_all_rounds"] is not None:
        figure.suptitle(f"Judge pass rate over all rounds: {judge['pass_rate_all_rounds']:.0%} "
                        f"({judge['passed']}/{judge['judged']})")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
