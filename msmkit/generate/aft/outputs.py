"""Write the two AFT datasets (with and without CoT), drops, questions, stats.json and a summary plot."""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path
from typing import Any

from msmkit.data.chat import assistant_tokens, make_token_counter, total_tokens, write_jsonl_and_dataset
from msmkit.generate.aft.context import AftContext
from msmkit.generate.aft.examples import Drop, Example, JudgeTally
from msmkit.generate.aft.questions import QuestionPool
from msmkit.io import atomic_write_jsonl, atomic_write_text

EMBEDDED_NOTE = (
    "These demonstrations were written and judged by the embedded default model, Gemma 3 270M *base* "
    "(quantised), prompted in completion style. A 270M base model cannot follow the spec, keep a chain of "
    "thought well formed, or judge anything: most answers are dropped and the kept ones are not real "
    "spec-aligned demonstrations. This run shows the pipeline working end to end offline (questions, dedup, "
    "CoT parsing, judge, backfill, outputs); for real AFT data use a strong API model or a large model behind vLLM.")


def quality_note(ctx: AftContext) -> str | None:
    config = ctx.client.config
    if config.provider == "local" and config.model == "embedded":
        return EMBEDDED_NOTE
    if ctx.prompts.base_model or ctx.prompts.judge_base_model:
        return ("The generator or judge is a base model prompted in completion style; read a sample of the "
                "kept examples before training on them.")
    return None


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
                  tally: JudgeTally, surplus: int, rounds: int, extra: dict[str, Any]) -> dict[str, Any]:
    out = ctx.run.path
    with_cot, without_cot, method = build_rows(ctx, examples)
    write_jsonl_and_dataset(with_cot, out / "aft_cot.jsonl", out / "dataset_cot")
    write_jsonl_and_dataset(without_cot, out / "aft_nocot.jsonl", out / "dataset_nocot")
    atomic_write_jsonl(out / "drops.jsonl", [drop.as_dict() for drop in drops])
    atomic_write_jsonl(out / "questions.jsonl", [q.model_dump() for q in pool.unique])
    atomic_write_jsonl(out / "duplicates.jsonl", pool.duplicates)
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
        "assistant_tokens": {"method": method, "with_cot_total": sum(cot_tokens), "without_cot_total": sum(nocot_tokens),
                             "with_cot_mean": statistics.fmean(cot_tokens) if cot_tokens else 0,
                             "without_cot_mean": statistics.fmean(nocot_tokens) if nocot_tokens else 0},
        "stages": {stage: vars(counter) for stage, counter in ctx.counters.items()},
        "usage": ctx.run.usage.totals(),
        "style": ctx.config.style, "generator": ctx.client.config.describe(),
        "identity": ctx.config.identity.model_dump(),
        "quality_note": quality_note(ctx),
        **extra,
    }
    ctx.run.write_json("stats.json", stats)
    _plot(stats, out / "aft_stats.png")
    if stats["quality_note"]:
        atomic_write_text(out / "QUALITY_NOTE.txt", stats["quality_note"] + "\n")
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
