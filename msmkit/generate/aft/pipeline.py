"""`generate_aft`: spec -> cells -> questions -> dedup -> responses -> checks -> judge -> backfill -> datasets.

Each round answers as many pooled questions as the shortfall needs (plus a margin), asking for more
questions only when the pool runs dry; the rounds flow into each other (msmkit.generate.aft.flow), and
every answer is logged as it arrives, so a killed run resumes item by item and replays to the same dataset.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from msmkit.errors import ConfigError
from msmkit.generate.aft.config import AftDataConfig
from msmkit.generate.aft.context import AftContext
from msmkit.generate.aft.domains import heading_cells, llm_cells, preference_cells
from msmkit.generate.aft.examples import Checks, Drop, Example, JudgeTally
from msmkit.generate.aft.flow import answer_in_rounds
from msmkit.generate.aft.identity import IdentityGuard
from msmkit.generate.aft.outputs import AftDataOutputs, quality_note, write_outputs
from msmkit.generate.aft.preferences import PreferenceSheet, load_preferences
from msmkit.generate.aft.prompting import AftPrompts, aft_prompt_hashes
from msmkit.generate.aft.questions import QuestionPool
from msmkit.generate.aft.records import QuestionCell
from msmkit.generate.aft.values import ValueGuard, derive_value_terms
from msmkit.llm.client import LLMClient
from msmkit.runs import LOG_FILE, RunDir
from msmkit.spec import ModelSpec, load_spec

Report = Callable[[str], None]
# Upstream first when the client's slots are all taken: a question list feeds five answers.
STEP_PRIORITY = {"domains": 0, "questions": 1, "responses": 2, "judge": 3}


@dataclass
class AftResult:
    out_dir: Path
    stats: dict[str, Any]


def _check(config: AftDataConfig) -> None:
    if config.generator.is_base_model and config.domains_from == "llm" and config.style != "value_free":
        raise ConfigError(f"generator {config.generator.describe()} is a base model: it cannot list conversation "
                          "domains as JSON. Set `domains_from: headings` to use the spec's own sections, or use "
                          "an instruction-tuned generator")
    if config.style == "value_free" and config.generator.is_base_model and config.value_free.derive_terms:
        raise ConfigError(f"generator {config.generator.describe()} is a base model: it cannot list a spec's value "
                          "vocabulary. Set value_free.derive_terms: false and list value_free.value_terms")


def load_identity_spec(config: AftDataConfig, path: str | Path) -> ModelSpec:
    return load_spec(path, model_name=config.identity.model_name, provider_name=config.identity.provider_name,
                     warn=False)


async def _cells(ctx: AftContext, sheet: PreferenceSheet | None) -> list[QuestionCell]:
    if sheet is not None:
        return preference_cells(sheet, ctx.config.counts.question_kinds)
    if ctx.config.domains_from == "headings":
        return heading_cells(ctx)
    return await llm_cells(ctx)


async def _checks(ctx: AftContext, sheet: PreferenceSheet | None) -> tuple[Checks, dict[str, Any]]:
    config = ctx.config
    identity = IdentityGuard.build(config.identity.model_name, config.identity.provider_name) \
        if config.identity.check else None
    values = None
    extra: dict[str, Any] = {}
    if sheet is not None:
        guard_texts = {ctx.spec.text_sha256: ctx.spec.text}
        for path in config.value_free.guard_specs:
            other = load_identity_spec(config, path)
            guard_texts.setdefault(other.text_sha256, other.text)
        ordered = [guard_texts[key] for key in sorted(guard_texts)]  # order-free: same terms whichever spec ran
        terms = list(config.value_free.value_terms)
        if config.value_free.derive_terms:
            terms += await derive_value_terms(ctx, ordered)
        if not terms:
            raise ConfigError("style 'value_free' has no value vocabulary to check against: list "
                              "value_free.value_terms or set value_free.derive_terms: true")
        values = ValueGuard.build(terms, sheet.item_names)
        extra["value_free"] = {"terms": list(values.terms), "guard_specs": len(ordered)}
    quote_spec = ctx.spec.text if config.style == "deliberative" else None
    return Checks(identity=identity, values=values, quote_spec=quote_spec), extra


async def generate_aft_async(spec_path: str | Path, config: AftDataConfig, out_dir: str | Path, *,
                             report: Report | None = None, extra_stats: dict[str, Any] | None = None) -> AftResult:
    say = report or (lambda message: None)
    _check(config)
    spec = load_identity_spec(config, spec_path)
    sheet = load_preferences(config.value_free.preferences) if config.style == "value_free" else None
    run = RunDir(out_dir)
    run.write_config(config)
    run.record_prompts(aft_prompt_hashes())
    run.write_json("spec.json", {"path": str(spec_path), "sha256": spec.sha256, "text_sha256": spec.text_sha256})
    client = LLMClient(config.generator, run=run, stage="aft")
    judge_client = client if config.judge.llm is None else LLMClient(config.judge.llm, run=run, stage="aft/judge")
    prompts = AftPrompts(config, spec.text, config.generator.is_base_model, config.judge_llm.is_base_model)
    ctx = AftContext(name="aft", config=config, spec=spec, prompts=prompts, client=client, judge_client=judge_client,
                     run=run)
    started = time.monotonic()
    try:
        note = quality_note(ctx)
        if note:
            say(note)
        cells = await _cells(ctx, sheet)
        cells_by_id = {cell.id: cell for cell in cells}
        checks, extra = await _checks(ctx, sheet)
        say(f"{len(cells)} conversation cells (domains x question kinds); style {config.style}")
        pool = QuestionPool(ctx, cells)
        target = config.counts.examples
        tally = JudgeTally()
        ctx.batch_windows = True
        ctx.step_priority.update(STEP_PRIORITY)
        answered = await answer_in_rounds(ctx, pool, cells_by_id, checks, tally)
        kept = [outcome for outcome in answered.outcomes if isinstance(outcome, Example)]
        drops = [outcome for outcome in answered.outcomes if isinstance(outcome, Drop)]
        rounds = answered.rounds
        if not answered.outcomes:
            say(f"no questions came back (see {AftDataOutputs.STATS} and {LOG_FILE})")
        say(f"{rounds} round(s): answered {len(answered.outcomes)}, kept {len(kept)} of {target}")
        if not kept:
            ctx.raise_if_calls_failed(f"{spec_path}: no AFT examples were kept")
        surplus = max(0, len(kept) - target)
        final = kept[:target]
        random.Random(config.seed).shuffle(final)
        stats = write_outputs(ctx, examples=final, drops=drops, pool=pool, tally=tally, surplus=surplus,
                              rounds=rounds, extra={**extra, **(extra_stats or {}),
                                                    "elapsed_s": round(time.monotonic() - started, 2)},
                              audit=config.audit)
        say(f"kept {len(final)} of {target}; drops: {stats['drops'] or 'none'}")
        return AftResult(out_dir=run.path, stats=stats)
    finally:
        ctx.close()
        await client.aclose()
        if judge_client is not client:
            await judge_client.aclose()
        run.close()


def generate_aft(spec_path: str | Path, config: AftDataConfig, out_dir: str | Path, *, report: Report | None = None,
                 extra_stats: dict[str, Any] | None = None) -> AftResult:
    return asyncio.run(generate_aft_async(spec_path, config, out_dir, report=report, extra_stats=extra_stats))
