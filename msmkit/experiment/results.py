"""From finished stage folders to the report's data: per-arm results aggregated over seeds with CIs and n,
paired comparisons between arms on the same items, the AFT-size sweep, data statistics, stage costs and
samples. Nothing here computes a number the stage folders do not hold."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import yaml

from msmkit.eval.compare import item_outcomes
from msmkit.eval.stats import aggregate_seeds, bootstrap_mean, paired_comparison
from msmkit.experiment.config import ExperimentConfig
from msmkit.experiment.plan import Cell, Plan
from msmkit.experiment.report_data import ArmResult, ReportData, Sample, StageCost, SweepPoint
from msmkit.experiment.store import StageStore
from msmkit.experiment.usage import stage_usage
from msmkit.io import read_json, read_jsonl

EMBEDDED_NOTE = ("This run used the embedded default, Gemma 3 270M base. At 270M parameters the MSM effect is not "
                 "expected to be visible: replications saw it from 4B parameters up. The numbers below show that the "
                 "pipeline runs end to end, not what MSM does. To run the real study, see the README's "
                 "'Reproducing the paper' (for example `msm run examples/experiments/cheese_llama8b.yaml` on a GPU).")
ONE_SEED_NOTE = ("One training seed per arm: replications saw arms swing by about +-5 points between seeds, so the "
                 "intervals below cover item noise only. Use 3 or more seeds before drawing conclusions.")


def _done(store: StageStore, key: str | None) -> dict[str, Any] | None:
    if key is None:
        return None
    record = store.record(key)
    return record.outputs if record.state == "done" else None


class Outcomes:
    """Per-item outcomes of one eval stage, by metric: {metric: {item id: value}}."""

    def __init__(self, plan: Plan, store: StageStore) -> None:
        self.plan, self.store = plan, store
        self._read: dict[str, dict[str, dict[str, float]]] = {}  # results, comparisons and sweep reread the same

    def of(self, eval_key: str) -> dict[str, dict[str, float]]:
        if eval_key not in self._read:
            self._read[eval_key] = self._load(eval_key)
        return self._read[eval_key]

    def _load(self, eval_key: str) -> dict[str, dict[str, float]]:
        outputs = _done(self.store, eval_key)
        if outputs is None:
            return {}
        folder = self.plan.dir(eval_key)
        if outputs["suite"] == "values":
            return {f"values: {suite}": item_outcomes(folder, suite) for suite in outputs["summary"]}
        if outputs["suite"] == "capability":
            rows = read_jsonl(folder / "capability" / "mc_items.jsonl")
            return {"capability: MC accuracy": {r["id"]: 1.0 if r["correct"] else 0.0 for r in rows}}
        records = list(read_jsonl(folder / "agentic" / "records.jsonl"))
        return {f"agentic: {rate}": {f"{r['condition']}#{r['epoch']}": float(r[rate]) for r in records
                                     if r.get(rate) is not None} for rate in ("decided", "executed")}


_METRIC = {"values": "rate choosing the target value", "capability": "accuracy (chance 0.25)",
           "agentic": "misalignment rate"}


def _metric_name(eval_name: str) -> str:
    return _METRIC[eval_name.split(":", 1)[0]]


def _seed_cells(plan: Plan, arm: str, size: int | None) -> list[Cell]:
    return [c for c in plan.cells if c.arm == arm and c.aft_examples == size]


def _unique_eval_keys(cells: list[Cell], index: int) -> list[str]:
    """The arm's eval stages for one eval config; the base arm's seeds share one (deterministic) stage."""
    return list(dict.fromkeys(c.evals[index] for c in cells))


def arm_results(plan: Plan, store: StageStore, outcomes: Outcomes) -> tuple[list[ArmResult], list[str]]:
    results: list[ArmResult] = []
    missing: list[str] = []
    for arm in plan.config.arms:
        cells = _seed_cells(plan, arm.name, None)
        for index, settings in enumerate(plan.config.evals):
            keys = _unique_eval_keys(cells, index)
            finished = [k for k in keys if _done(store, k) is not None]
            if len(finished) < len(keys):
                missing.append(f"{arm.name}: {len(keys) - len(finished)} of {len(keys)} {settings.suite} evals "
                               "not finished (see `msm status`)")
            per_metric: dict[str, dict[str, list[float]]] = defaultdict(dict)
            for key in finished:
                for metric, values in outcomes.of(key).items():
                    per_metric[metric][key] = list(values.values())
            for eval_name, per_seed in sorted(per_metric.items()):
                results.append(_aggregate(arm.name, eval_name, per_seed, store, finished))
            if settings.suite == "capability" and finished:
                results.append(_perplexity(arm.name, [_done(store, k) for k in finished]))
    order = {arm.name: index for index, arm in enumerate(plan.config.arms)}
    results.sort(key=lambda r: (r.eval_name, order[r.arm]))  # one eval's arms side by side
    return results, missing


def _aggregate(arm: str, eval_name: str, per_seed: dict[str, list[float]], store: StageStore,
               keys: list[str]) -> ArmResult:
    filled = {key: values for key, values in per_seed.items() if values}
    if not filled:
        return ArmResult(arm=arm, eval_name=eval_name, metric=_metric_name(eval_name), mean=float("nan"), n_items=0,
                         n_seeds=0, note="no scored items")
    combined = aggregate_seeds(filled)
    interval = combined["seed_and_item_level"]
    notes = _value_notes(store, keys, eval_name)
    return ArmResult(arm=arm, eval_name=eval_name, metric=_metric_name(eval_name), mean=combined["mean"],
                     ci_low=interval["low"], ci_high=interval["high"],
                     n_items=max(len(v) for v in filled.values()), n_seeds=len(filled),
                     per_seed=list(combined["seed_means"].values()), note="; ".join(notes))


def _value_notes(store: StageStore, keys: list[str], eval_name: str) -> list[str]:
    if not eval_name.startswith("values: "):
        return []
    suite = eval_name.removeprefix("values: ")
    consistency = [(_done(store, k) or {}).get("summary", {}).get(suite, {}).get("order_consistency_rate", {})
                   .get("mean") for k in keys]
    consistency = [c for c in consistency if c is not None]
    if consistency and sum(consistency) / len(consistency) < 0.5:
        return [f"only {sum(consistency) / len(consistency):.0%} of items get the same choice in both option orders: "
                "choices mostly follow position, not content"]
    return []


def _perplexity(arm: str, outputs: list[dict[str, Any] | None]) -> ArmResult:
    values = [o["summary"]["perplexity"] for o in outputs if o]
    interval = bootstrap_mean(values) if len(values) > 1 else None
    return ArmResult(arm=arm, eval_name="capability: perplexity", metric="held-out perplexity (lower is better)",
                     mean=sum(values) / len(values), ci_low=interval.low if interval else None,
                     ci_high=interval.high if interval else None, n_items=1, n_seeds=len(values), per_seed=values,
                     note="one text; the interval (2+ seeds) is over seeds")


def _pooled(plan: Plan, outcomes: Outcomes, arm: str) -> dict[str, dict[str, float]]:
    """Per-item outcomes of one arm averaged over its seeds, by metric."""
    sums: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    cells = _seed_cells(plan, arm, None)
    for index in range(len(plan.config.evals)):
        for key in _unique_eval_keys(cells, index):
            for metric, values in outcomes.of(key).items():
                for item, value in values.items():
                    sums[metric][item].append(value)
    return {metric: {item: sum(v) / len(v) for item, v in items.items()} for metric, items in sums.items()}


def comparisons(plan: Plan, outcomes: Outcomes) -> list[dict[str, Any]]:
    rows = []
    for first, second in plan.config.comparison_pairs():
        a, b = _pooled(plan, outcomes, first), _pooled(plan, outcomes, second)
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


def sweep_points(plan: Plan, store: StageStore, outcomes: Outcomes) -> list[SweepPoint]:
    if plan.config.sweep is None:
        return []
    points = []
    for arm in plan.config.sweep.arms:
        sizes = sorted({c.aft_examples for c in plan.cells if c.arm == arm}, key=lambda s: (s is None, s or 0))
        for size in sizes:
            cells = _seed_cells(plan, arm, size)
            trained = [_done(store, c.aft_stage) for c in cells]
            if not all(trained):
                continue
            tokens = round(sum(t["supervised_tokens"] for t in trained if t) / len(trained))
            per_metric: dict[str, dict[str, list[float]]] = defaultdict(dict)
            for index in range(len(plan.config.evals)):
                for key in _unique_eval_keys(cells, index):
                    for metric, values in outcomes.of(key).items():
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
        usage = stage_usage(plan.dir(stage.key))
        costs.append(StageCost(key=stage.key, kind=stage.kind, label=stage.label, state=record.state,
                               seconds=record.seconds, cost_usd=float(usage.get("cost_usd", 0.0)),
                               input_tokens=int(usage.get("input_tokens", 0)),
                               output_tokens=int(usage.get("output_tokens", 0))))
    return costs


def _stats_view(stats: dict[str, Any]) -> dict[str, Any]:
    """stats.json without its bulky per-document lists."""
    view = json.loads(json.dumps(stats))
    view.get("token_lengths", {}).pop("values", None)
    view.pop("usage", None)
    return view


def data_statistics(plan: Plan, store: StageStore) -> dict[str, dict[str, Any]]:
    found = {}
    for stage in plan.ordered():
        path = plan.dir(stage.key) / "stats.json"
        if stage.kind in ("corpus", "neutral", "aftdata") and _done(store, stage.key) and path.exists():
            found[stage.label] = _stats_view(read_json(path))
    return found


def _first_rows(path: Path, n: int) -> Iterator[dict[str, Any]]:
    for index, row in enumerate(read_jsonl(path)):
        if index >= n:
            return
        yield row


def samples(plan: Plan, store: StageStore, per_source: int = 2) -> list[Sample]:
    found = []
    for stage in plan.ordered():
        folder = plan.dir(stage.key)
        if not _done(store, stage.key):
            continue
        if stage.kind in ("corpus", "neutral"):
            name = "corpus.jsonl" if stage.kind == "corpus" else "neutral.jsonl"
            for row in _first_rows(folder / name, per_source):
                meta = {k: row[k] for k in ("domain", "doc_type", "topic", "token_count") if k in row}
                found.append(Sample(kind="document", title=f"{stage.label}: {row.get('idea') or row.get('id')}",
                                    text=row["text"], meta=meta))
        elif stage.kind == "aftdata":
            name = "aft_cot.jsonl" if plan.config.aft_cot else "aft_nocot.jsonl"
            for row in _first_rows(folder / name, per_source):
                text = "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in row["messages"])
                meta = {k: v for k, v in row.get("metadata", {}).items() if k in ("domain", "kind", "style")}
                found.append(Sample(kind="demonstration", title=f"{stage.label}: {row['messages'][0]['content'][:80]}",
                                    text=text, meta=meta))
        elif stage.kind == "eval" and (folder / "agentic" / "records.jsonl").exists():
            for row in _first_rows(folder / "agentic" / "records.jsonl", per_source):
                found.append(Sample(kind="transcript", title=f"{stage.label}: {row['condition']}",
                                    text=row.get("judge") or row.get("error") or "",
                                    meta={k: row.get(k) for k in ("decided", "executed", "epoch")}))
    return found


def choice_samples(plan: Plan, store: StageStore, per_suite: int = 3) -> list[Sample]:
    """A few value items with the option each arm chose (seed 0 of each arm)."""
    from msmkit.eval.items import BUILTIN_VALUE_SETS, load_value_items

    found = []
    for index, settings in enumerate(plan.config.evals):
        if settings.suite != "values":
            continue
        for source in settings.items:
            if source not in BUILTIN_VALUE_SETS:
                continue
            items = load_value_items(source, split=None if settings.split == "all" else settings.split)[:per_suite]
            chosen: dict[str, dict[str, str | None]] = {}
            for arm in plan.config.arms:
                key = _seed_cells(plan, arm.name, None)[0].evals[index]
                path = plan.dir(key) / "values" / source / "items.jsonl"
                if path.exists():
                    chosen[arm.name] = {r["id"]: r["chosen_value"] for r in read_jsonl(path)}
            for item in items:
                lines = [item.question, "", f"A: {item.options['A']}  ({item.values['A']})",
                         f"B: {item.options['B']}  ({item.values['B']})", ""]
                lines += [f"{arm}: chose {picks.get(item.id) or 'tie / not scored'}" for arm, picks in chosen.items()]
                found.append(Sample(kind="value choice", title=f"{source}: {item.id}", text="\n".join(lines),
                                    meta={"domain": item.domain, "target": item.target_value}))
    return found


def automatic_notes(plan: Plan, store: StageStore) -> list[str]:
    config: ExperimentConfig = plan.config
    notes = []
    if config.base_model == "embedded":
        notes.append(EMBEDDED_NOTE)
    if len(config.seeds) == 1 and any(arm.midtrain or arm.aft for arm in config.arms):
        notes.append(ONE_SEED_NOTE)
    few = [s.label for s in plan.ordered() if (_done(store, s.key) or {}).get("few_steps_allowed")]
    if few:
        notes.append(f"{len(few)} training stages took fewer optimizer steps than guards.min_optimizer_steps (allowed "
                     "by allow_few_steps). A replication got a fake null result at 31 steps: no effect here is "
                     "not evidence of no effect. " + "; ".join(few[:4]) + (" ..." if len(few) > 4 else ""))
    quality: dict[str, list[str]] = defaultdict(list)  # one note per distinct text, naming its stages
    for stage in plan.ordered():
        outputs = _done(store, stage.key) or {}
        if outputs.get("quality_note"):
            quality[outputs["quality_note"]].append(stage.label)
        documents = outputs.get("documents")
        if isinstance(documents, dict) and documents.get("shortfall"):
            notes.append(f"{stage.label}: {documents['shortfall']} of {documents['target']} planned documents are "
                         "missing after cleaning and top-ups")
        if stage.kind == "neutral" and outputs and not outputs.get("within_tolerance"):
            notes.append(f"{stage.label}: {outputs['tokens']:,} tokens against a target of "
                         f"{outputs['target_tokens']:,}: outside the tolerance")
    notes += [f"{'; '.join(labels)}: {text}" for text, labels in quality.items()]
    return notes


def collect_report_data(plan: Plan, store: StageStore) -> ReportData:
    outcomes = Outcomes(plan, store)
    results, missing = arm_results(plan, store, outcomes)
    config = plan.config
    return ReportData(
        title=config.title or f"Experiment {config.name}", experiment=config.name,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        config_yaml=yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True),
        notes=config.notes + automatic_notes(plan, store) + missing,
        arms={arm.name: arm.describe() for arm in config.arms}, results=results,
        comparisons=comparisons(plan, outcomes), sweep=sweep_points(plan, store, outcomes),
        data_stats=data_statistics(plan, store), stages=stage_costs(plan, store),
        samples=samples(plan, store) + choice_samples(plan, store))
