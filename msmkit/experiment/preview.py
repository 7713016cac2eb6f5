"""`msm run --preview`: what an experiment will cost before it runs: LLM calls, tokens and US$ per generation
stage, and GPU hours for training and evaluation, from the plan and a few stated assumptions. Runs nothing.

Compute: a LoRA step costs ~4N FLOPs per token (forward 2N, backward through the activations 2N; the frozen
weights get no gradient), full fine-tuning ~6N; evaluation forward passes 2N. GPU hours divide FLOPs by
`compute.peak_tflops` x `compute.mfu`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from msmkit.experiment.plan import Plan, plan_for
from msmkit.stages.contract import PreviewContext

# Known base-model sizes (billions of parameters), for configs naming a hub model that is not cached here.
KNOWN_PARAMS_B = {"embedded": 0.268, "google/gemma-3-270m": 0.268, "meta-llama/Llama-3.1-8B": 8.03,
                  "meta-llama/Llama-3.1-8B-Instruct": 8.03, "Qwen/Qwen3-32B": 32.8, "Qwen/Qwen3-32B-Base": 32.8,
                  "Qwen/Qwen2.5-32B": 32.8, "Qwen/Qwen2.5-32B-Instruct": 32.8,
                  "Qwen/Qwen2.5-14B-Instruct": 14.77, "Qwen/Qwen3-8B": 8.19, "Qwen/Qwen3-4B": 4.02}


@dataclass
class StagePreview:
    kind: str
    label: str
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = 0.0  # None: a model with no known price
    train_tokens: int = 0
    flops: float = 0.0


@dataclass
class ExperimentPreview:
    name: str
    stages: list[StagePreview]
    params_billion: float
    peak_tflops: float
    mfu: float
    gpus: int
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # stages that cannot run as planned

    @property
    def cost_usd(self) -> float | None:
        costs = [s.cost_usd for s in self.stages]
        return None if any(c is None for c in costs) else sum(c for c in costs if c is not None)

    @property
    def gpu_hours(self) -> float:
        return sum(s.flops for s in self.stages) / (self.peak_tflops * 1e12 * self.mfu) / 3600

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "cost_usd": self.cost_usd, "gpu_hours": self.gpu_hours,
                "wall_hours": self.gpu_hours / self.gpus, "params_billion": self.params_billion,
                "stages": [vars(s) for s in self.stages], "notes": self.notes}


def params_billion(plan: Plan) -> tuple[float, str]:
    compute = plan.config.compute
    if compute.params_billion:
        return compute.params_billion, "compute.params_billion"
    name = plan.config.base_model
    if name in KNOWN_PARAMS_B:
        return KNOWN_PARAMS_B[name], "msmkit's table of known models"
    folder = Path(name) if Path(name).is_absolute() else plan.config_dir / name
    if (folder / "config.json").is_file():
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM

        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(folder))
        return sum(p.numel() for p in model.parameters()) / 1e9, f"{folder}/config.json"
    return 8.0, "a guess (set compute.params_billion)"


def estimate_plan(plan: Plan, params: float) -> tuple[list[StagePreview], list[str]]:
    """Every stage's estimate, in plan order, and the stages that cannot run as planned (with why)."""
    context = PreviewContext(params=params)
    previews: list[StagePreview] = []
    problems: list[str] = []
    for stage in plan.ordered():  # dependencies come first, so their estimates are there
        estimate = stage.kind.estimate(stage.job, context)
        context.upstream[stage.key] = estimate
        problems += [f"{stage.label}: {problem}" for problem in stage.kind.plan_problems(stage.job, context)]
        previews.append(StagePreview(stage.kind.name, stage.label, estimate.calls, estimate.input_tokens,
                                     estimate.output_tokens, estimate.cost_usd, estimate.train_tokens, estimate.flops))
    return previews, problems


def plan_problems(plan: Plan) -> list[str]:
    return estimate_plan(plan, params_billion(plan)[0] * 1e9)[1]


def preview_experiment(config_path: str | Path, out: str | Path) -> ExperimentPreview:
    plan = plan_for(Path(config_path), Path(out))
    params_b, params_source = params_billion(plan)
    previews, problems = estimate_plan(plan, params_b * 1e9)
    compute = plan.config.compute
    notes = [f"Base model: {params_b:.2f}B parameters ({params_source}). GPU hours assume {compute.peak_tflops:.0f} "
             f"TFLOP/s per GPU at {compute.mfu:.0%} MFU (LoRA ~4N FLOPs per token, full fine-tuning ~6N, eval 2N).",
             "API estimates: ~4 characters per token and typical answer sizes; top-ups, retries and replacement "
             "rounds add typically 5-20%. Cached answers from earlier runs cost nothing."]
    if any(s.cost_usd is None for s in previews):
        notes.append("No price is known for some model here; set `price:` in its LLM config to see its cost.")
    return ExperimentPreview(plan.config.name, previews, params_b, compute.peak_tflops, compute.mfu, compute.gpus,
                             notes, problems)


def grouped(preview: ExperimentPreview) -> list[StagePreview]:
    """One row per stage kind, summed (a grid has many similar training and eval stages)."""
    rows: dict[str, StagePreview] = {}
    for s in preview.stages:
        row = rows.setdefault(s.kind, StagePreview(s.kind, "", cost_usd=0.0))
        row.label = str(int(row.label or 0) + 1)
        row.calls += s.calls
        row.input_tokens += s.input_tokens
        row.output_tokens += s.output_tokens
        row.cost_usd = None if row.cost_usd is None or s.cost_usd is None else row.cost_usd + s.cost_usd
        row.train_tokens += s.train_tokens
        row.flops += s.flops
    return list(rows.values())


def print_preview(preview: ExperimentPreview, console: Console) -> None:
    table = Table(title=f"{preview.name}: projected cost and compute")
    for column in ("kind", "stages", "LLM calls", "input tokens", "output tokens", "US$", "train tokens", "GPU h"):
        table.add_column(column, justify="left" if column == "kind" else "right")
    per_gpu_hour = preview.peak_tflops * 1e12 * preview.mfu * 3600
    for s in grouped(preview):
        cost = "unknown" if s.cost_usd is None else f"{s.cost_usd:,.2f}"
        table.add_row(s.kind, s.label, f"{s.calls:,}", f"{s.input_tokens:,}", f"{s.output_tokens:,}", cost,
                      f"{s.train_tokens:,}", f"{s.flops / per_gpu_hour:,.2f}")
    console.print(table)
    total = preview.cost_usd
    console.print(f"[bold]total[/]: API US${'unknown' if total is None else f'{total:,.2f}'}; "
                  f"{preview.gpu_hours:,.1f} GPU hours ({preview.gpu_hours / preview.gpus:,.1f} h wall on "
                  f"{preview.gpus} GPU{'s' if preview.gpus > 1 else ''})")
    for note in preview.notes:
        console.print(f"[dim]{note}[/]")
    for problem in preview.problems:
        console.print(f"[bold red]cannot run:[/] {escape(problem)}", highlight=False)


def headline(preview: ExperimentPreview) -> tuple[str, str]:
    """(API cost, GPU hours with wall-clock hours) as the README's "Reproducing the paper" table shows them."""
    cost = "unknown" if preview.cost_usd is None else f"US${preview.cost_usd:,.0f}"
    return cost, f"{preview.gpu_hours:,.0f} ({preview.gpu_hours / preview.gpus:,.1f} h)"
