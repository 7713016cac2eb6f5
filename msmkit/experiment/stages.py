"""The work of each stage kind: call the stage's own library function into the stage folder and return a
small summary of its outputs (kept in the stage's done.json). Every stage function resumes its own
partial work, so a killed stage that runs again pays for nothing twice."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
from importlib.resources import files
from pathlib import Path
from typing import Any, Callable

import yaml

from msmkit.errors import MsmError
from msmkit.experiment.config import LauncherConfig
from msmkit.experiment.plan import Stage
from msmkit.io import atomic_write_json, read_json
from msmkit.runs import RunDir

Say = Callable[[str], None]


class StageFailed(MsmError):
    """A stage finished without the outputs its dependents need."""


def run_variant(stage: Stage, out: Path, say: Say) -> dict[str, Any]:
    from msmkit.llm.client import LLMClient
    from msmkit.spec import load_spec
    from msmkit.spec.variants import make_llm_variant, make_variant, write_variant

    params = stage.params
    entry = params["variant"]
    spec = load_spec(params["source"], model_name=params["model_name"], provider_name=params["provider_name"],
                     warn=False)
    if entry.variant.needs_llm:
        run = RunDir(out)

        async def write() -> Any:
            async with LLMClient(params["generator"], run=run, stage="variant") as client:
                return await make_llm_variant(spec, entry.variant, client)

        variant = asyncio.run(write())
        run.close()
    else:
        variant = make_variant(spec, entry.variant, entry.options)
    write_variant(variant, out / "spec.md")
    for note in variant.notes:
        say(f"variant note: {note}")
    return {"spec": "spec.md", "notes": variant.notes}


def run_corpus(stage: Stage, out: Path, say: Say) -> dict[str, Any]:
    from msmkit.generate.corpus import generate_corpus

    stats = generate_corpus(stage.params["spec"], stage.params["config"], out, report=say).stats or {}
    documents = stats.get("documents", {})
    if not documents.get("kept"):
        raise StageFailed(f"{stage.label}: no documents were kept (see {out / 'stats.json'} and drops.jsonl)")
    return {"corpus": "corpus.jsonl", "documents": documents, "tokens": stats["token_lengths"]["total"],
            "quality_note": stats.get("quality_note")}


def run_neutral(stage: Stage, out: Path, say: Say) -> dict[str, Any]:
    from msmkit.generate.baselines.neutral import generate_neutral

    stats = generate_neutral(stage.params["match"], stage.params["config"], out, report=say).stats
    if not stats["documents"]:
        raise StageFailed(f"{stage.label}: no neutral documents were kept (see {out / 'stats.json'})")
    return {"corpus": "neutral.jsonl", "documents": stats["documents"], "tokens": stats["achieved_tokens"],
            "target_tokens": stats["target_tokens"], "within_tolerance": stats["within_tolerance"]}


def run_aft_data(stage: Stage, out: Path, say: Say) -> dict[str, Any]:
    from msmkit.generate.aft import generate_aft
    from msmkit.generate.baselines.anti_spec import generate_anti_spec
    from msmkit.generate.baselines.deliberative import generate_deliberative

    generate = {"aft": generate_aft, "deliberative": generate_deliberative, "anti": generate_anti_spec}
    params = stage.params
    stats = generate[params["mode"]](params["spec"], params["config"], out, report=say).stats
    examples = stats["examples"]
    if not examples["kept"]:
        raise StageFailed(f"{stage.label}: no examples were kept (see {out / 'stats.json'})")
    return {"cot": "aft_cot.jsonl", "nocot": "aft_nocot.jsonl", "examples": examples,
            "judge_pass_rate": stats["judge"]["pass_rate_all_rounds"], "quality_note": stats.get("quality_note")}


def run_mix(stage: Stage, out: Path, say: Say) -> dict[str, Any]:
    from msmkit.data.chat import make_token_counter, read_chat_dataset, write_jsonl_and_dataset
    from msmkit.data.mix import mix_datasets

    params, mix = stage.params, stage.params["mix"]
    count, method = make_token_counter(mix.tokenizer)
    rows, stats = mix_datasets(read_chat_dataset(params["aft"]), read_chat_dataset(params["general"]),
                               ratio=mix.ratio, by=mix.by, count=count, seed=0)
    write_jsonl_and_dataset(rows, out / "mixed.jsonl", out / "dataset")
    atomic_write_json(out / "mix_stats.json", {**stats, "token_count_method": method})
    say(f"mixed {stats['aft_rows']} AFT rows with {stats['general_rows_used']} general rows")
    return {"data": "mixed.jsonl", **{k: stats[k] for k in ("aft_rows", "general_rows_used", "achieved_ratio")}}


def _launch_accelerate(kind: str, config_path: Path, out: Path, launcher: LauncherConfig) -> None:
    """`accelerate launch ... -m msmkit.train KIND`: the same training code, one process per device."""
    packaged = files("msmkit.train").joinpath(f"accelerate/{launcher.accelerate_config}.yaml")
    accelerate_config = str(packaged) if packaged.is_file() else launcher.accelerate_config
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", accelerate_config]
    if launcher.num_processes:
        command += ["--num_processes", str(launcher.num_processes)]
    command += ["-m", "msmkit.train", kind, "--config", str(config_path), "--out", str(out)]
    done = subprocess.run(command)
    if done.returncode != 0:
        raise StageFailed(f"accelerate launch of the {kind} stage exited with {done.returncode} "
                          f"(command: {' '.join(command)}); its log is in {out / 'log.txt'}")


def run_training_stage(stage: Stage, out: Path, say: Say, launcher: LauncherConfig) -> dict[str, Any]:
    from msmkit.train import run_training
    from msmkit.train.config import TrainConfig

    kind = stage.kind
    config = TrainConfig(**{kind: stage.params["config"]})
    if launcher.kind == "accelerate":
        config_path = out / "train_stage.yaml"
        out.mkdir(parents=True, exist_ok=True)
        config_path.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
        _launch_accelerate(kind, config_path, out, launcher)
        record = read_json(out / kind / "train_record.json")
    else:
        record = run_training(config, out, stages=(kind,))[kind].record
        gc.collect()
    say(f"{stage.label}: {record['steps']} steps over {record['tokens']:,} tokens, final loss {record['final_loss']}")
    guards = stage.params["config"].guards
    return {"model": f"{kind}/model", "steps": record["steps"], "planned_steps": record["planned_steps"],
            "tokens": record["tokens"], "supervised_tokens": record["supervised_tokens"],
            "final_loss": record["final_loss"], "train_loss": record["train_loss"],
            "few_steps_allowed": guards.allow_few_steps and record["planned_steps"] < guards.min_optimizer_steps,
            "min_optimizer_steps": guards.min_optimizer_steps}


class EvalModels:
    """Keeps the last loaded model, so the evals of one checkpoint load it once."""

    def __init__(self) -> None:
        self._key: str | None = None
        self._loaded: tuple[Any, Any] | None = None

    def get(self, model: str) -> tuple[Any, Any]:
        from msmkit.models.loading import load_causal_lm

        if self._key != model:
            self.release()
            self._loaded, self._key = load_causal_lm(model), model
        assert self._loaded is not None
        return self._loaded

    def release(self) -> None:
        self._key, self._loaded = None, None
        gc.collect()


def run_eval(stage: Stage, out: Path, say: Say, models: EvalModels) -> dict[str, Any]:
    settings, model = stage.params["eval"], str(stage.params["model"])
    run = RunDir(out)
    run.write_config({"model": model, **settings.model_dump(mode="json")}, "eval_config.yaml")
    try:
        if settings.suite == "values":
            summary = _values(settings, model, run, models)
        elif settings.suite == "capability":
            summary = _capability(settings, model, run, models)
        else:
            models.release()  # Inspect loads its own copy
            summary = _agentic(settings, model, out, say)
    finally:
        run.close()
    return {"suite": settings.suite, "summary": summary}


def _values(settings: Any, model: str, run: RunDir, models: EvalModels) -> dict[str, Any]:
    from msmkit.eval.items import load_value_items, suite_name
    from msmkit.eval.suites import score_value_suites

    suites = {}
    for source in settings.items:
        name = suite_name(source)
        items = load_value_items(source, split=None if settings.split == "all" else settings.split)
        suites[name] = items[:settings.limit] if settings.limit else items
    lm, tokenizer = models.get(model)
    summaries = score_value_suites(lm, tokenizer, suites, run, batch_size=settings.batch_size,
                                   extra={"model": model, "split": settings.split})
    return {name: {"target_rate": s["target_rate"], "position_bias_rate": s["position_bias_rate"],
                   "order_consistency_rate": s["order_consistency_rate"], "notes": s.get("notes", [])}
            for name, s in summaries.items()}


def _capability(settings: Any, model: str, run: RunDir, models: EvalModels) -> dict[str, Any]:
    from msmkit.eval.items import heldout_text_path, load_mc_items
    from msmkit.eval.suites import run_capability

    mc_items = load_mc_items()
    lm, tokenizer = models.get(model)
    summary = run_capability(lm, tokenizer, run, text_path=heldout_text_path(),
                             mc_items=mc_items[:settings.limit] if settings.limit else mc_items,
                             window=settings.window, stride=settings.stride, extra={"model": model})
    return {"perplexity": summary["perplexity"]["perplexity"], "mc_accuracy": summary["mc"]["accuracy"]}


def _agentic(settings: Any, model: str, out: Path, say: Say) -> dict[str, Any]:
    from msmkit.eval.agentic.runner import run_agentic

    summary = run_agentic(settings.agentic_config(model), out, display="none", say=say)
    return {"decided": summary["all"]["decided"], "executed": summary["all"]["executed"],
            "errors": summary["all"]["errors"]}
