"""From finished stages to the report's data: per-arm results aggregated over seeds with CIs and n, paired
comparisons between arms on the same items, the AFT-size sweep, data statistics, stage costs and samples.
Everything is read through each stage's typed outputs; nothing here computes a number the stages do not hold."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timezone
from typing import Any

import yaml

from msmkit.eval.stats import aggregate_seeds, bootstrap_mean, paired_comparison
from msmkit.experiment.config import ExperimentConfig
from msmkit.experiment.plan import GridPoint, Plan
from msmkit.experiment.report_data import ArmResult, ReportData, StageCost, SweepPoint
from msmkit.experiment.store import StageStore
from msmkit.quality_notes import EMBEDDED_DEFAULT_NOTE
from msmkit.runs import usage_totals
from msmkit.stages.contract import EvalOutputs, Outcomes, Sample, TrainedModel
from msmkit.stages.eval_values import ValuesEvalOutputs, value_samples

ONE_SEED_NOTE = ("One training seed per arm: replications saw arms swing by about +-5 points between seeds, so the "
                 "intervals below cover item noise only. Use 3 or more seeds before drawing conclusions.")
class Evaluations:
    """The finished eval stages of a plan, read once each: outcomes per item by metric."""

    def __init__(self, plan: Plan, store: StageStore) -> None:
        self.plan, self.store = plan, store
        self._outputs: dict[str, EvalOutputs | None] = {}
        self._outcomes: dict[str, Outcomes] = {}

    def outputs(self, key: str) -> EvalOutputs | None:
        if key not in self._outputs:
            found = self.store.done_outputs(key)
            self._outputs[key] = found if isinstance(found, EvalOutputs) else None
        return self._outputs[key]

    def outcomes(self, key: str) -> Outcomes:
        if key not in self._outcomes:
            outputs = self.outputs(key)
            self._outcomes[key] = outputs.outcomes() if outputs else {}
        return self._outcomes[key]


def _seed_points(plan: Plan, arm: str, size: int | None) -> list[GridPoint]:
    return [p for p in plan.points if p.arm == arm and p.aft_examples == size]


def _unique_eval_keys(points: list[GridPoint], index: int) -> list[str]:
    """The arm's eval stages for one eval entry; the base arm's seeds share one (deterministic) stage."""
    return list(dict.fromkeys(p.evals[index] for p in points))


def arm_results(plan: Plan, evaluations: Evaluations) -> tuple[list[ArmResult], list[str]]:
    results: list[ArmResult] = []
    missing: list[str] = []
    for arm in plan.config.arms:
        points = _seed_points(plan, arm.name, None)
        for index, settings in enumerate(plan.config.evals):
            keys = _unique_eval_keys(points, index)
            finished = [k for k in keys if evaluations.outputs(k) is not None]
            if len(finished) < len(keys):
                missing.append(f"{arm.name}: {len(keys) - len(finished)} of {len(keys)} {settings.suite} evals "
                               "not finished (see `msm status`)")
            per_metric: dict[str, dict[str, list[float]]] = defaultdict(dict)
            scalars: dict[str, list[float]] = defaultdict(list)
            for key in finished:
                for metric, values in evaluations.outcomes(key).items():
                    per_metric[metric][key] = list(values.values())
                for metric, value in evaluations.outputs(key).scalars().items():  # type: ignore[union-attr]
                    scalars[metric].append(value)
            for eval_name, per_seed in sorted(per_metric.items()):
                results.append(_aggregate(arm.name, eval_name, per_seed, evaluations, finished))
            results += [_scalar(arm.name, metric, values) for metric, values in sorted(scalars.items())]
    order = {arm.name: index for index, arm in enumerate(plan.config.arms)}
    results.sort(key=lambda r: (r.eval_name, order[r.arm]))  # one eval's arms side by side
    return results, missing


def _aggregate(arm: str, eval_name: str, per_seed: dict[str, list[float]], evaluations: Evaluations,
               keys: list[str]) -> ArmResult:
    filled = {key: values for key, values in per_seed.items() if values}
    measure = type(evaluations.outputs(keys[0])).MEASURE
    if not filled:
        return ArmResult(arm=arm, eval_name=eval_name, metric=measure, mean=float("nan"), n_items=0,
                         n_seeds=0, note="no scored items")
    combined = aggregate_seeds(filled)
    interval = combined["seed_and_item_level"]
    return ArmResult(arm=arm, eval_name=eval_name, metric=measure, mean=combined["mean"],
                     ci_low=interval["low"], ci_high=interval["high"],
                     n_items=max(len(v) for v in filled.values()), n_seeds=len(filled),
                     per_seed=list(combined["seed_means"].values()),
                     note="; ".join(_caveats(evaluations, keys, eval_name)))


def _caveats(evaluations: Evaluations, keys: list[str], eval_name: str) -> list[str]:
    """The eval kind's warnings for one metric, from its diagnostics averaged over the arm's seeds."""
    outputs = [o for o in (evaluations.outputs(k) for k in keys) if o is not None]
    sums: dict[str, list[float]] = defaultdict(list)
    for found in outputs:
        for name, value in found.diagnostics().get(eval_name, {}).items():
            sums[name].append(value)
    if not outputs or not sums:
        return []
    averaged = {name: sum(values) / len(values) for name, values in sums.items()}
    return type(outputs[0]).caveats(eval_name, averaged)


def _scalar(arm: str, metric: str, values: list[float]) -> ArmResult:
    """A whole-model measurement (no items): the interval, with 2+ seeds, is over seeds."""
    interval = bootstrap_mean(values) if len(values) > 1 else None
    return ArmResult(arm=arm, eval_name=metric, metric="held-out perplexity (lower is better)"
                     if metric.endswith("perplexity") else metric,
                     mean=sum(values) / len(values), ci_low=interval.low if interval else None,
                     ci_high=interval.high if interval else None, n_items=1, n_seeds=len(values), per_seed=values,
                     note="one text; the interval (2+ seeds) is over seeds")


def _pooled(plan: Plan, evaluations: Evaluations, arm: str) -> dict[str, dict[str, float]]:
    """Per-item outcomes of one arm averaged over its seeds, by metric."""
    sums: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    points = _seed_points(plan, arm, None)
    for index in range(len(plan.config.evals)):
        for key in _unique_eval_keys(points, index):
            for metric, values in evaluations.outcomes(key).items():
                for item, value in values.items():
                    sums[metric][item].append(value)
    return {metric: {item: sum(v) / len(v) for item, v in items.items()} for metric, items in sums.items()}


def comparisons(plan: Plan, evaluations: Evaluations) -> list[dict[str, Any]]:
    rows = []
    for first, second in plan.config.comparison_pairs():
        a, b = _pooled(plan, evaluations, first), _pooled(plan, evaluations, second)
        for metric in sorted(set(a) & set(b)):
            shared = sorted(set(a[metric]) & set(b[metric]))
            if not shared:
                continue
            result = paired_comparison([a[metric][i] for i in shared], [b[metric][i] for i in shared])
            diff = result["difference"]
            rows.append({"first": first, "second": second, "eval": metric, "n items": result["n"],
                         "first mean": f"{result['mean_first']:.3f}", "second mean": f"{result['mean_second']:.3f}",
                         "difference [95% CI]": f"{diff['mean']:+.3f} [{diff['low']:+.3f}, {diff['high']:+.3f}]",
                         "permutation p": f"{result['permutation_test']['p_value']:.4f}",
                         "sign test p": f"{result['sign_test']['p_value']:.4f}",
                         "McNemar p": f"{result['mcnemar']['p_value']:.4f}" if "mcnemar" in result else "-"})
    return rows


def sweep_points(plan: Plan, store: StageStore, evaluations: Evaluations) -> list[SweepPoint]:
    if plan.config.sweep is None:
        return []
    points = []
    for arm in plan.config.sweep.arms:
        sizes = sorted({p.aft_examples for p in plan.points if p.arm == arm}, key=lambda s: (s is None, s or 0))
        for size in sizes:
            seed_points = _seed_points(plan, arm, size)
            trained = [store.done_outputs(p.aft_stage) for p in seed_points]
            if not all(isinstance(t, TrainedModel) for t in trained):
                continue
            tokens = round(sum(t.supervised_tokens for t in trained if isinstance(t, TrainedModel)) / len(trained))
            per_metric: dict[str, dict[str, list[float]]] = defaultdict(dict)
            for index in range(len(plan.config.evals)):
                for key in _unique_eval_keys(seed_points, index):
                    for metric, values in evaluations.outcomes(key).items():
                        if values:
                            per_metric[metric][key] = list(values.values())
            for metric, per_seed in per_metric.items():
                combined = aggregate_seeds(per_seed)
                interval = combined["seed_and_item_level"]
                points.append(SweepPoint(series=arm, eval_name=metric, aft_tokens=tokens, value=combined["mean"],
                                         ci_low=interval["low"], ci_high=interval["high"]))
    return points


def stage_costs(plan: Plan, store: StageStore) -> list[StageCost]:
    costs = []
    for stage in plan.ordered():
        record = store.record(stage.key)
        usage = usage_totals(plan.dir(stage.key))
        costs.append(StageCost(key=stage.key, kind=stage.kind.name, label=stage.label, state=record.state,
                               seconds=record.seconds, cost_usd=float(usage.get("cost_usd", 0.0)),
                               input_tokens=int(usage.get("input_tokens", 0)),
                               output_tokens=int(usage.get("output_tokens", 0))))
    return costs


def data_statistics(plan: Plan, store: StageStore) -> dict[str, dict[str, Any]]:
    found = {}
    for stage in plan.ordered():
        outputs = store.done_outputs(stage.key)
        statistics = outputs.statistics() if outputs else None
        if statistics is not None:
            found[stage.label] = statistics
    return found


def samples(plan: Plan, store: StageStore, per_source: int = 2) -> list[Sample]:
    found: list[Sample] = []
    for stage in plan.ordered():
        outputs = store.done_outputs(stage.key)
        if outputs is not None:
            found += outputs.samples(stage.label, per_source)
    return found


def choice_samples(plan: Plan, evaluations: Evaluations, per_suite: int = 3) -> list[Sample]:
    """A few value items with the option each arm chose (seed 0 of each arm)."""
    found: list[Sample] = []
    for index, settings in enumerate(plan.config.evals):
        by_arm = {}
        for arm in plan.config.arms:
            outputs = evaluations.outputs(_seed_points(plan, arm.name, None)[0].evals[index])
            if isinstance(outputs, ValuesEvalOutputs):
                by_arm[arm.name] = outputs
        if by_arm:
            found += value_samples(by_arm, settings, per_suite)
    return found


def automatic_notes(plan: Plan, store: StageStore) -> list[str]:
    config: ExperimentConfig = plan.config
    notes = []
    if config.base_model == "embedded":
        notes.append(EMBEDDED_DEFAULT_NOTE)
    if len(config.seeds) == 1 and any(arm.midtrain or arm.aft for arm in config.arms):
        notes.append(ONE_SEED_NOTE)
    outputs = {stage.key: store.done_outputs(stage.key) for stage in plan.ordered()}
    few = [s.label for s in plan.ordered() if isinstance(outputs[s.key], TrainedModel)
           and outputs[s.key].few_steps_allowed]  # type: ignore[union-attr]
    if few:
        notes.append(f"{len(few)} training stages took fewer optimizer steps than guards.min_optimizer_steps (allowed "
                     "by allow_few_steps). A replication got a fake null result at 31 steps: no effect here is "
                     "not evidence of no effect. " + "; ".join(few[:4]) + (" ..." if len(few) > 4 else ""))
    quality: dict[str, list[str]] = defaultdict(list)  # one note per distinct text, naming its stages
    for stage in plan.ordered():
        found = outputs[stage.key]
        if found is None:
            continue
        text = getattr(found, "quality_note", None)
        if text and text not in notes:
            quality[text].append(stage.label)
        notes += found.notes(stage.label)
    notes += [f"{'; '.join(labels)}: {text}" for text, labels in quality.items()]
    return notes


def collect_report_data(plan: Plan, store: StageStore) -> ReportData:
    evaluations = Evaluations(plan, store)
    results, missing = arm_results(plan, evaluations)
    config = plan.config
    return ReportData(
        title=config.title or f"Experiment {config.name}", experiment=config.name,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        config_yaml=yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True),
        notes=config.notes + automatic_notes(plan, store) + missing,
        arms={arm.name: arm.describe() for arm in config.arms}, results=results,
        comparisons=comparisons(plan, evaluations), sweep=sweep_points(plan, store, evaluations),
        data_stats=data_statistics(plan, store), stages=stage_costs(plan, store),
        samples=samples(plan, store) + choice_samples(plan, evaluations))
