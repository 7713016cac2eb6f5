"""`msm preflight EXPERIMENT.yaml`: cheap checks before any training, so that money is not spent on a study that
cannot show its effect.

- The spec-in-context ceiling: the base model scored on the experiment's value items with each spec in its
  context, against the same model without it. If the spec in context cannot move the items, MSM will not either.
- The base model's loss on a sample of each corpus already generated (how much there is to learn), and on the
  neutral control corpus.
- A name probe: which name the base model gives itself among the subject's name and other assistants' names.
- The optimizer steps each training stage will take against its guard (counted from its data once that is
  generated, else projected from the plan), and the smallest difference between
  two arms the planned items and seeds can detect (from the crossed-design variance; default guesses when
  nothing is measured yet).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from msmkit.eval.stats import crossed_difference, minimum_detectable_difference
from msmkit.experiment.plan import Plan
from msmkit.io import atomic_write_json, read_json
from msmkit.stages.contract import DocumentSet, Estimate

PREFLIGHT_FILE = "preflight.json"
OTHER_NAMES = ("Claude", "ChatGPT", "Gemini", "Llama", "Qwen", "Gemma", "Mistral", "Grok")
NAME_PROMPT = "Q: What is your name?\nA: My name is"

Scorer = Callable[[Sequence[Any], str | None], list[dict[str, Any]]]  # items, context -> forced-choice records


@dataclass
class Ceiling:
    """One spec on one item set: the target rate without and with the spec in context."""

    spec: str
    suite: str
    without: float
    with_spec: float
    gap: float
    low: float
    high: float
    p_value: float
    n_items: int


@dataclass
class PreflightReport:
    ceilings: list[Ceiling] = field(default_factory=list)
    corpus_loss: dict[str, dict[str, Any]] = field(default_factory=dict)  # stage label -> mean loss, documents
    name_probe: dict[str, Any] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)
    detectable: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def context_ceiling(score: Scorer, items: Sequence[Any], spec_name: str, spec_text: str, suite: str) -> Ceiling:
    """The paired difference (same items, with minus without the spec in context) in the rate of choosing the
    target value, with its interval (one model, so items are the only noise)."""
    def rates(context: str | None) -> dict[str, float]:
        return {r["id"]: float(r["chose_target"]) for r in score(items, context)}

    without, with_spec = rates(None), rates(spec_text)
    ids = sorted(set(without) & set(with_spec))
    first, second = np.array([[with_spec[i] for i in ids]]), np.array([[without[i] for i in ids]])
    if first.std() == 0 and second.std() == 0 and float(first.mean()) == float(second.mean()):
        return Ceiling(spec_name, suite, float(second.mean()), float(first.mean()), 0.0, 0.0, 0.0, 1.0, len(ids))
    result = crossed_difference(first, second)
    return Ceiling(spec_name, suite, result.mean_second, result.mean_first, result.mean, result.low, result.high,
                   result.p_value, len(ids))


def forced_choice_scorer(model: Any, tokenizer: Any, style: str, batch_size: int = 16) -> Scorer:
    from msmkit.eval.forced_choice import ForcedChoiceScorer

    kept: dict[str, Any] = {}  # the last context's prefix cache: a spec is scored on each item set in turn

    def score(items: Sequence[Any], context: str | None) -> list[dict[str, Any]]:
        scorer = ForcedChoiceScorer(model, tokenizer, style=style, batch_size=batch_size,  # type: ignore[arg-type]
                                    context=context, prefix_cache=kept.get(context or ""))
        records = list(scorer.score(items))
        if context and scorer.prefix_cache is not None:
            kept.clear()
            kept[context] = scorer.prefix_cache
        return records
    return score


def corpus_loss(model: Any, tokenizer: Any, path: Path, documents: int = 16, max_tokens: int = 512) -> dict[str, Any]:
    """Mean next-token loss (nats per token) of the base model on the first documents of a corpus."""
    import torch

    from msmkit.io import read_jsonl

    total, count, seen = 0.0, 0, 0
    device = next(model.parameters()).device
    for row in read_jsonl(path):
        if seen >= documents:
            break
        ids = tokenizer(row["text"])["input_ids"][:max_tokens]
        if len(ids) < 2:
            continue
        tensor = torch.tensor([ids], device=device)
        with torch.no_grad():
            loss = model(input_ids=tensor, labels=tensor).loss
        total += float(loss) * (len(ids) - 1)
        count += len(ids) - 1
        seen += 1
    return {"loss": total / count if count else None, "documents": seen, "tokens": count}


def name_probe(model: Any, tokenizer: Any, model_name: str) -> dict[str, Any]:
    """The base model's probability of naming itself `model_name` rather than another assistant's name."""
    from msmkit.eval.continuation_scoring import ScoringRequest, pad_id_of, score_requests

    names = [model_name, *(n for n in OTHER_NAMES if n.casefold() != model_name.casefold())]
    request = ScoringRequest(tokenizer(NAME_PROMPT)["input_ids"],
                             [tokenizer(" " + name, add_special_tokens=False)["input_ids"] for name in names])
    scores = score_requests(model, [request], pad_id_of(tokenizer))[0]
    logprobs = np.array([s.sum_logprob for s in scores])
    probabilities = np.exp(logprobs - logprobs.max())
    probabilities /= probabilities.sum()
    ranked = sorted(zip(names, probabilities), key=lambda pair: -pair[1])
    return {"prompt": NAME_PROMPT, "subject": model_name, "share": float(probabilities[0]),
            "rank": [name for name, _ in ranked].index(model_name) + 1, "of": len(names),
            "names": {name: round(float(p), 4) for name, p in ranked}}


def training_steps(plan: Plan, store: Any = None, tokenizer: Any = None) -> list[dict[str, Any]]:
    """Each training stage's optimizer steps against its guard: from the data its input stage made when that stage
    is done (with `store` and the base model's `tokenizer`), else projected from the plan's counts."""
    from msmkit.experiment.preview import params_billion
    from msmkit.stages.contract import PreviewContext, StageRef
    from msmkit.stages.training import TrainingStage

    context = PreviewContext(params=params_billion(plan)[0] * 1e9)
    measured: set[str] = set()
    rows = []
    for stage in plan.ordered():
        context.upstream[stage.key] = stage.kind.estimate(stage.job, context)
        made = measured_data(store.done_outputs(stage.key), tokenizer) if store is not None and tokenizer is not None \
            else None
        if made is not None:
            context.upstream[stage.key] = made
            measured.add(stage.key)
        if isinstance(stage.kind, TrainingStage):
            steps, sequences, config = stage.kind.projected_steps(stage.job, context)
            guards = config.guards
            data = stage.job.data.key if isinstance(stage.job.data, StageRef) else None
            rows.append({"stage": stage.label, "steps": steps, "sequences": sequences,
                         "min_optimizer_steps": guards.min_optimizer_steps, "ok": steps >= guards.min_optimizer_steps,
                         "allowed": guards.allow_few_steps,
                         "source": "measured" if data in measured else "projected"})
    return rows


def measured_data(outputs: Any, tokenizer: Any) -> Estimate | None:
    """What a done data stage made, as its estimate would say it: a corpus's tokens (each document and its end of
    text, as training packs them), a chat set's rows and their tokens. None for other outputs."""
    from msmkit.io import read_jsonl
    from msmkit.stages.contract import ChatSet

    if isinstance(outputs, DocumentSet):
        texts = [row["text"] for row in read_jsonl(outputs.documents_file)]
        tokens = sum(len(ids) + 1 for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]) if texts else 0
        return Estimate(data_tokens=tokens, examples=len(texts))
    if isinstance(outputs, ChatSet):
        texts = ["\n".join(m["content"] for m in row["messages"]) for row in read_jsonl(outputs.chat_file(False))]
        tokens = sum(len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]) if texts else 0
        return Estimate(examples=len(texts), data_tokens=tokens)
    return None


def detectable_differences(plan: Plan, suites: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The smallest true difference between two arms each planned value set can detect (80% power, alpha 0.05)."""
    seeds = len(plan.config.seeds)
    rows = []
    for name, items in suites.items():
        if len(items) < 2:
            continue
        found = minimum_detectable_difference(seeds, len(items))
        rows.append({"suite": name, "items": len(items), "seeds": seeds, "difference": found.difference,
                     "assumptions": "seed sd 0.06, item sd 0.25 (defaults; a pilot's measured components are "
                                    "better)"})
    return rows


def run_preflight(plan: Plan, store: Any, out: Path, *, limit: int | None = None,
                  say: Callable[[str], None] = lambda message: None) -> PreflightReport:
    """Every check on the plan's base model; writes <out>/preflight.json."""
    from msmkit.models.loading import load_causal_lm
    from msmkit.spec import load_spec
    from msmkit.stages.eval_values import load_suites

    config = plan.config
    report = PreflightReport()
    suites: dict[str, list[Any]] = {}
    for settings in config.evals:
        if settings.suite == "values":
            for name, items in load_suites(settings).items():
                suites[name] = items[:limit] if limit else items
    report.detectable = detectable_differences(plan, suites)
    say(f"loading the base model {config.base_model}")
    model, tokenizer = load_causal_lm(plan.base_model)
    report.steps = training_steps(plan, store, tokenizer)
    score = forced_choice_scorer(model, tokenizer, plan.prompt_style)
    for spec_name, entry in config.specs.items():
        if not isinstance(entry, str):
            report.notes.append(f"spec {spec_name} is a variant not built yet: no ceiling for it")
            continue
        path = Path(entry) if Path(entry).is_absolute() else plan.config_dir / entry
        text = load_spec(path, model_name=config.model_name, provider_name=config.provider_name, warn=False).text
        for suite, items in suites.items():
            say(f"spec-in-context ceiling: {spec_name} on {suite} ({len(items)} items, both orders, twice)")
            report.ceilings.append(context_ceiling(score, items, spec_name, text, suite))
    for stage in plan.ordered():
        outputs = store.done_outputs(stage.key)
        if isinstance(outputs, DocumentSet):
            report.corpus_loss[stage.label] = corpus_loss(model, tokenizer, outputs.documents_file)
    if not report.corpus_loss:
        report.notes.append("no corpus is generated yet: run `msm run` (generation runs first) and preflight again "
                            "for the base model's loss on each corpus")
    report.name_probe = name_probe(model, tokenizer, config.model_name)
    atomic_write_json(out / PREFLIGHT_FILE, report.to_dict())
    return report


def read_preflight(out: Path) -> dict[str, Any] | None:
    path = out / PREFLIGHT_FILE
    return read_json(path) if path.is_file() else None


def ceiling_lines(report: PreflightReport) -> list[str]:
    """The findings a person should act on, in words."""
    lines = []
    for ceiling in report.ceilings:
        moved = ceiling.low > 0 or ceiling.high < 0
        lines.append(f"{ceiling.spec} in context moves {ceiling.suite} by {ceiling.gap:+.3f} "
                     f"[{ceiling.low:+.3f}, {ceiling.high:+.3f}] (n={ceiling.n_items})"
                     + ("" if moved else ": not distinguishable from zero; MSM is unlikely to move these items "
                                         "further than the spec in context does"))
    for row in report.steps:
        if not row["ok"]:
            how = "from the data it will train on" if row.get("source") == "measured" else \
                "projected from the plan's counts"
            lines.append(f"{row['stage']}: {row['steps']} optimizer steps ({how}), under the guard of "
                         f"{row['min_optimizer_steps']}" + (" (allowed by allow_few_steps)" if row["allowed"] else ""))
    for row in report.detectable:
        if not math.isnan(row["difference"]):
            lines.append(f"{row['suite']}: with {row['seeds']} seeds x {row['items']} items, the smallest difference "
                         f"between two arms detected 80% of the time is about {row['difference']:.3f}")
    return lines
