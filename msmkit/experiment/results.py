"""From finished stages to the report's data: per-arm results aggregated over seeds with CIs and n, paired
comparisons between arms on the same items, the AFT-size sweep, data statistics, stage costs and samples.
Everything is read through each stage's typed outputs; nothing here computes a number the stages do not hold."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timezone
from typing import Any

import numpy as np
import yaml

from msmkit.eval.stats import CrossedDifference, crossed_interval
from msmkit.experiment.config import ExperimentConfig
from msmkit.experiment.estimates import Grouped, align, arm_difference, arm_estimate
from msmkit.experiment.plan import GridPoint, Plan
from msmkit.experiment.report_data import ArmResult, HeatMap, ReportData, StageCost, SweepPoint
from msmkit.experiment.store import StageStore
from msmkit.quality_notes import EMBEDDED_DEFAULT_NOTE
from msmkit.runs import usage_totals
from msmkit.stages.contract import DocumentSet, EvalOutputs, Sample, TrainedModel
from msmkit.stages.eval_values import ValuesEvalOutputs, ValuesEvalSettings, set_name, value_samples

ONE_SEED_NOTE = ("One training seed per arm: replications saw arms swing by about +-5 points between seeds, so the "
                 "intervals below cover item noise only. Use 3 or more seeds before drawing conclusions.")
class Evaluations:
    """The finished eval stages of a plan, read once each: outcomes per unit by metric."""

    def __init__(self, plan: Plan, store: StageStore) -> None:
        self.plan, self.store = plan, store
        self._outputs: dict[str, EvalOutputs | None] = {}
        self._grouped: dict[str, dict[str, Grouped]] = {}

    def outputs(self, key: str) -> EvalOutputs | None:
        if key not in self._outputs:
            found = self.store.done_outputs(key)
            self._outputs[key] = found if isinstance(found, EvalOutputs) else None
        return self._outputs[key]

    def grouped(self, key: str) -> dict[str, Grouped]:
        if key not in self._grouped:
            outputs = self.outputs(key)
            self._grouped[key] = outputs.grouped_outcomes() if outputs else {}
        return self._grouped[key]

    def per_seed(self, keys: list[str]) -> dict[str, list[Grouped]]:
        """metric -> each finished seed's grouped outcomes (seeds without outcomes for it left out)."""
        found: dict[str, list[Grouped]] = defaultdict(list)
        for key in keys:
            for metric, groups in self.grouped(key).items():
                if any(groups.values()):
                    found[metric].append(groups)
        return found


def _seed_points(plan: Plan, arm: str, size: int | None, documents: int | None = None) -> list[GridPoint]:
    return [p for p in plan.points if p.arm == arm and p.aft_examples == size and p.msm_documents == documents]


def _unique_eval_keys(points: list[GridPoint], index: int) -> list[str]:
    """The arm's eval stages for one eval entry; the base arm's seeds share one (deterministic) stage."""
    return list(dict.fromkeys(p.evals[index] for p in points))


def _finished(evaluations: Evaluations, keys: list[str]) -> list[str]:
    return [k for k in keys if evaluations.outputs(k) is not None]


def arm_results(plan: Plan, evaluations: Evaluations) -> tuple[list[ArmResult], list[str]]:
    results: list[ArmResult] = []
    missing: list[str] = []
    for arm in plan.config.arms:
        points = _seed_points(plan, arm.name, None)
        for index, settings in enumerate(plan.config.evals):
            keys = _unique_eval_keys(points, index)
            finished = _finished(evaluations, keys)
            if len(finished) < len(keys):
                missing.append(f"{arm.name}: {len(keys) - len(finished)} of {len(keys)} {settings.suite} evals "
                               "not finished (see `msm status`)")
            if not finished:
                continue
            kind = type(evaluations.outputs(finished[0]))
            for eval_name, per_seed in sorted(evaluations.per_seed(finished).items()):
                results.append(_aggregate(arm.name, eval_name, per_seed, kind, evaluations, finished))
            scalars: dict[str, list[float]] = defaultdict(list)
            for key in finished:
                for metric, value in evaluations.outputs(key).scalars().items():  # type: ignore[union-attr]
                    scalars[metric].append(value)
            results += [_scalar(arm.name, metric, values) for metric, values in sorted(scalars.items())]
    order = {arm.name: index for index, arm in enumerate(plan.config.arms)}
    results.sort(key=lambda r: (r.eval_name, order[r.arm]))  # one eval's arms side by side
    return results, missing


def _aggregate(arm: str, eval_name: str, per_seed: list[Grouped], kind: type[EvalOutputs], evaluations: Evaluations,
               keys: list[str]) -> ArmResult:
    estimated = arm_estimate(per_seed, kind.UNIT)
    if estimated is None:  # the mean of what was scored is still a result; it only carries no interval
        aligned = align(per_seed)
        mean = float(aligned.matrix.mean()) if aligned.matrix.size else float("nan")
        return ArmResult(arm=arm, eval_name=eval_name, metric=kind.MEASURE, mean=mean, n_items=len(aligned.units),
                         n_seeds=len(per_seed), unit=kind.UNIT, n_outcomes=aligned.outcomes,
                         note=f"fewer than 2 {kind.UNIT}s scored by every seed: no interval")
    interval, aligned = estimated
    notes = _caveats(evaluations, keys, eval_name) + list(interval.notes)
    if aligned.dropped:
        notes.append(f"{aligned.dropped} {kind.UNIT}s not scored by every seed are left out")
    return ArmResult(arm=arm, eval_name=eval_name, metric=kind.MEASURE, mean=interval.mean, ci_low=interval.low,
                     ci_high=interval.high, n_items=interval.n_items, n_seeds=interval.n_seeds,
                     per_seed=[float(row.mean()) for row in aligned.matrix], unit=interval.unit,
                     n_outcomes=aligned.outcomes, dominant=interval.dominant or "", note="; ".join(notes))


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
    """A whole-model measurement (no items): with 2+ seeds, a t interval over seeds."""
    interval = crossed_interval(np.array([values]), unit="seed") if len(values) > 1 else None
    return ArmResult(arm=arm, eval_name=metric, metric="held-out perplexity (lower is better)"
                     if metric.endswith("perplexity") else metric,
                     mean=sum(values) / len(values), ci_low=interval.low if interval else None,
                     ci_high=interval.high if interval else None, n_items=1, n_seeds=len(values), per_seed=values,
                     unit="text", n_outcomes=len(values), note="one text; the interval (2+ seeds) is over seeds")


def arm_counts(plan: Plan, evaluations: Evaluations) -> list[dict[str, Any]]:
    """Per arm and eval, summed over its seeds: what was scored and what failed (parse failures, refusals, errors)."""
    rows = []
    for arm in plan.config.arms:
        points = _seed_points(plan, arm.name, None)
        for index, settings in enumerate(plan.config.evals):
            totals: dict[str, int] = defaultdict(int)
            for key in _finished(evaluations, _unique_eval_keys(points, index)):
                for name, value in evaluations.outputs(key).counts().items():  # type: ignore[union-attr]
                    totals[name] += value
            if totals:
                rows.append({"arm": arm.name, "eval": settings.suite, **totals})
    return rows


def condition_maps(plan: Plan, evaluations: Evaluations) -> list[HeatMap]:
    """For evals whose unit is a condition (agentic): each arm's rate on each condition, pooled over seeds."""
    maps: dict[str, dict[str, dict[str, list[float]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for arm in plan.config.arms:
        points = _seed_points(plan, arm.name, None)
        for index in range(len(plan.config.evals)):
            for key in _finished(evaluations, _unique_eval_keys(points, index)):
                if type(evaluations.outputs(key)).UNIT != "condition":
                    continue
                for metric, groups in evaluations.grouped(key).items():
                    for condition, values in groups.items():
                        maps[metric][arm.name][condition] += values
    found = []
    for metric, by_arm in sorted(maps.items()):
        conditions = sorted({c for cells in by_arm.values() for c in cells})
        arms = [arm.name for arm in plan.config.arms if arm.name in by_arm]
        found.append(HeatMap(eval_name=metric, rows=arms, columns=conditions, values=[
            [sum(by_arm[arm][c]) / len(by_arm[arm][c]) if by_arm[arm].get(c) else None for c in conditions]
            for arm in arms]))
    return found


def comparisons(plan: Plan, evaluations: Evaluations) -> list[dict[str, Any]]:
    rows = []
    for first, second in plan.config.comparison_pairs():
        for index in range(len(plan.config.evals)):
            a_keys = _finished(evaluations, _unique_eval_keys(_seed_points(plan, first, None), index))
            b_keys = _finished(evaluations, _unique_eval_keys(_seed_points(plan, second, None), index))
            if not a_keys or not b_keys:
                continue
            unit = type(evaluations.outputs(a_keys[0])).UNIT
            a, b = evaluations.per_seed(a_keys), evaluations.per_seed(b_keys)
            for metric in sorted(set(a) & set(b)):
                result = arm_difference(a[metric], b[metric], unit)
                if result is None:
                    continue
                rows.append({"first": first, "second": second, "eval": metric, f"n {unit}s": result.n_items,
                             "seeds": f"{result.n_seeds_first} vs {result.n_seeds_second}",
                             "first mean": f"{result.mean_first:.3f}", "second mean": f"{result.mean_second:.3f}",
                             "difference [95% CI]": f"{result.mean:+.3f} [{result.low:+.3f}, {result.high:+.3f}]",
                             "p": f"{result.p_value:.4f}", "variance dominated by": variance_column(result)})
    return rows


def variance_column(result: CrossedDifference) -> str:
    """What sets a difference's interval width; a zero width says so, since it only means no unit differed."""
    if result.low == result.high:
        return "nothing: no unit differed between the arms, so the interval has zero width"
    return result.dominant or "-"


def sweep_points(plan: Plan, store: StageStore, evaluations: Evaluations) -> tuple[list[SweepPoint], list[str]]:
    """The sweeps' points (AFT size, and MSM dose when swept), and each planned point that is missing with why."""
    if plan.config.sweep is None:
        return [], []
    points, missing = [], []
    for arm in plan.config.sweep.arms:
        combos = sorted({(p.msm_documents, p.aft_examples) for p in plan.points if p.arm == arm},
                        key=lambda c: tuple((s is None, s or 0) for s in c))
        for documents, size in combos:
            seed_points = _seed_points(plan, arm, size, documents)
            model = [store.done_outputs(p.model_stage) for p in seed_points]
            if not all(isinstance(t, TrainedModel) for t in model):
                reasons = {store.record(p.model_stage).error or store.record(p.model_stage).state
                           for p in seed_points if p.model_stage
                           and not isinstance(store.done_outputs(p.model_stage), TrainedModel)}
                where = f"{size or 'all'} AFT examples" + (f", MSM on {documents} documents" if documents else "")
                missing.append(f"sweep point {arm} at {where} is missing: its training is "
                               f"{'; '.join(sorted(str(r) for r in reasons))}")
                continue
            aft = [store.done_outputs(p.aft_stage) for p in seed_points if p.aft_stage]
            msm = [store.done_outputs(p.midtrain_stage) for p in seed_points if p.midtrain_stage]
            aft_tokens = round(sum(t.supervised_tokens for t in aft if isinstance(t, TrainedModel)) / len(aft)) \
                if aft else 0
            msm_tokens = round(sum(t.tokens for t in msm if isinstance(t, TrainedModel)) / len(msm)) \
                if documents and msm else None
            for index in range(len(plan.config.evals)):
                keys = _finished(evaluations, _unique_eval_keys(seed_points, index))
                if not keys:
                    continue
                unit = type(evaluations.outputs(keys[0])).UNIT
                for metric, per_seed in evaluations.per_seed(keys).items():
                    estimated = arm_estimate(per_seed, unit)
                    if estimated is None:
                        continue
                    interval = estimated[0]
                    series = arm if documents is None or not plan.config.sweep.aft_examples else \
                        f"{arm}, AFT {size or 'all'}"
                    points.append(SweepPoint(series=series, eval_name=metric, aft_tokens=aft_tokens,
                                             msm_tokens=msm_tokens, value=interval.mean, ci_low=interval.low,
                                             ci_high=interval.high))
    return points, missing


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
    how = "chosen for this base model" if config.eval_prompt_style == "auto" else "set by eval_prompt_style"
    notes = [f"Every arm's evals prompt the model in {plan.prompt_style} style ({how}), so arms differ only by their "
             "training."]
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
    return notes + mirrored_balance_notes(plan, store)


def mirrored_balance_notes(plan: Plan, store: StageStore) -> list[str]:
    """A two-spec dissociation design needs its two MSM corpora alike in size per domain: for each mirrored pair
    left untrimmed, one note per imbalance beyond `balance.tolerance`. A pair with a balance stage is not checked
    again: that stage's outputs note what it trimmed, from its own record."""
    from msmkit.data.audits import check_balance
    from msmkit.io import read_jsonl

    notes = []
    for pair in plan.mirrored:
        if pair.balance is not None:
            continue
        a, b = (store.done_outputs(key) for key in pair.corpora)
        if not isinstance(a, DocumentSet) or not isinstance(b, DocumentSet):
            continue
        report = check_balance(list(read_jsonl(a.documents_file)), list(read_jsonl(b.documents_file)),
                               tolerance=plan.config.balance.tolerance,
                               labels=(plan.stages[pair.corpora[0]].label, plan.stages[pair.corpora[1]].label))
        notes += [f"mirrored corpora out of balance: {flag.reason}" for flag in report.flags()]
    return notes


def dissociation_axes(config: ExperimentConfig) -> tuple[str, str] | None:
    """The two value item sets the headline chart plots, as eval names: for a mirrored pair of specs, the sets
    named after them (`pro_america` for spec `america`), first spec on x; else the first two sets in the order
    the config lists them (the in-domain set of a design, such as `cheese`, is usually listed last)."""
    sets = [set_name(item) for entry in config.evals if isinstance(entry, ValuesEvalSettings) for item in entry.items]
    sets = list(dict.fromkeys(sets))
    for pair in config.mirrored_pairs():
        named = [next((name for name in sets if spec.lower() in name.lower()), None) for spec in pair]
        if named[0] and named[1] and named[0] != named[1]:
            return f"values: {named[0]}", f"values: {named[1]}"
    return (f"values: {sets[0]}", f"values: {sets[1]}") if len(sets) >= 2 else None


def collect_report_data(plan: Plan, store: StageStore) -> ReportData:
    evaluations = Evaluations(plan, store)
    results, missing = arm_results(plan, evaluations)
    sweep, missing_points = sweep_points(plan, store, evaluations)
    config = plan.config
    from msmkit.experiment.layout import PREFLIGHT_DIR
    from msmkit.experiment.paper_gate import gate_section
    from msmkit.experiment.preflight import read_preflight

    return ReportData(
        title=config.title or f"Experiment {config.name}", experiment=config.name,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        config_yaml=yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True),
        notes=config.notes + automatic_notes(plan, store) + missing + missing_points,
        headline_values=dissociation_axes(config),
        arms={arm.name: arm.describe() for arm in config.arms}, results=results,
        comparisons=comparisons(plan, evaluations), sweep=sweep, counts=arm_counts(plan, evaluations),
        heatmaps=condition_maps(plan, evaluations), gate=gate_section(plan, results),
        preflight=read_preflight(plan.root.parent / PREFLIGHT_DIR),
        data_stats=data_statistics(plan, store), stages=stage_costs(plan, store),
        samples=samples(plan, store) + choice_samples(plan, evaluations))
