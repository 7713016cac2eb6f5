"""`msm run --preview`: what an experiment will cost before it runs: LLM calls, tokens and US$ per generation
stage, and GPU hours for training and evaluation, from the plan and a few stated assumptions. Runs nothing.

Compute: a LoRA step costs ~4N FLOPs per token (forward 2N, backward through the activations 2N; the frozen
weights get no gradient), full fine-tuning ~6N; evaluation forward passes 2N. GPU hours divide FLOPs by
`compute.peak_tflops` x `compute.mfu`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from msmkit.data.filters import estimate_tokens
from msmkit.eval.items import BUILTIN_VALUE_SETS, heldout_text_path, load_mc_items, load_value_items
from msmkit.experiment.plan import Plan, Stage
from msmkit.experiment.runner import plan_for
from msmkit.generate.corpus.decompose import decompose_by_headings
from msmkit.generate.corpus.pipeline import spec_for
from msmkit.generate.corpus.preview import StageProjection, project, stage_projection
from msmkit.generate.corpus.prompting import CorpusPrompts
from msmkit.generate.corpus.records import Domain, Subdomain
from msmkit.llm.types import LLMConfig
from msmkit.spec.variants import VariantKind

# Known base-model sizes (billions of parameters), for configs naming a hub model that is not cached here.
KNOWN_PARAMS_B = {"embedded": 0.268, "google/gemma-3-270m": 0.268, "meta-llama/Llama-3.1-8B": 8.03,
                  "meta-llama/Llama-3.1-8B-Instruct": 8.03, "Qwen/Qwen3-32B": 32.8, "Qwen/Qwen3-32B-Base": 32.8,
                  "Qwen/Qwen2.5-32B": 32.8, "Qwen/Qwen3-8B": 8.19, "Qwen/Qwen3-4B": 4.02}
_AFT_PROMPT_TOKENS = 60  # a user question (+ chat markup) per AFT example
_VALUE_ITEM_TOKENS = 120  # prompt + option, per scoring pass
_AGENTIC_SAMPLE = (7000, 1500)  # model input, output tokens per agentic sample (emails + scratchpad + answer)
_GRADER_CALL = (7500, 600)  # grader input, output tokens per agentic sample


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


def _from_projection(stage: Stage, projections: list[StageProjection]) -> StagePreview:
    costs = [p.cost_usd for p in projections]
    return StagePreview(stage.kind, stage.label, sum(p.calls for p in projections),
                        sum(p.input_tokens for p in projections), sum(p.output_tokens for p in projections),
                        None if any(c is None for c in costs) else sum(c for c in costs if c is not None))


def _spec_text(path: Path, unbuilt: dict[Path, str]) -> str:
    """A spec's text, or for a variant not built yet, an estimate of it."""
    return path.read_text(encoding="utf-8") if path.exists() else unbuilt.get(path, "")


def _corpus(stage: Stage, unbuilt: dict[Path, str]) -> tuple[StagePreview, int]:
    """(calls and cost, projected corpus tokens)."""
    config, path = stage.params["config"], Path(stage.params["spec"])
    spec = spec_for(config, path) if path.exists() else None
    text = spec.text if spec else _spec_text(path, unbuilt)
    prompts = CorpusPrompts(config, text, config.generator.is_base_model)
    decomposition = None
    if config.decompose == "headings" and spec is not None:
        domains, subdomains = decompose_by_headings(spec)
    else:  # placeholders of the configured shape; the real decomposition is a few calls at run time
        counts = config.counts
        domains = [Domain(id=f"d{d}", name=f"domain {d}") for d in range(counts.domains)]
        share = text[:max(400, len(text) // max(1, counts.domains * counts.subdomains_per_domain))]
        subdomains = [Subdomain(id=f"d{d}s{s}", domain_id=f"d{d}", name=f"subdomain {s}", spec_excerpt=share)
                      for d in range(counts.domains) for s in range(counts.subdomains_per_domain)]
        spec_tokens = estimate_tokens(text)
        decomposition = stage_projection("decomposition", 1 + counts.domains, spec_tokens + 500,
                                         150 * counts.subdomains_per_domain, config.generator)
    projection = project(config, prompts, domains, subdomains, decomposition_calls=decomposition)
    tokens = int(projection.documents * config.lengths.target_words * 1.35)
    return _from_projection(stage, projection.stages), tokens


def _aft_data(stage: Stage, unbuilt: dict[Path, str]) -> tuple[StagePreview, int]:
    config, mode = stage.params["config"], stage.params["mode"]
    spec_tokens = estimate_tokens(_spec_text(Path(stage.params["spec"]), unbuilt))
    counts, lengths, llm = config.counts, config.lengths, config.generator
    examples = counts.examples
    answers = math.ceil(examples * counts.answer_overgenerate)
    questions = math.ceil(answers * counts.question_overgenerate / counts.questions_per_request)
    response = lengths.response_max_tokens * 0.6
    projections = [
        stage_projection("questions", questions, spec_tokens + 400, counts.questions_per_request * 35, llm),
        stage_projection("responses", answers, spec_tokens + 400, response, llm),
    ]
    if config.domains_from == "llm":
        projections.append(stage_projection("domains", 1, spec_tokens + 300, counts.domains * 40, llm))
    if config.judge.enabled:
        projections.append(stage_projection("judge", answers, spec_tokens + response + 500, 80, config.judge_llm))
    if config.style == "value_free" and config.value_free.derive_terms:
        guards = 1 + len(config.value_free.guard_specs)
        projections.append(stage_projection("value terms", guards, spec_tokens + 300, 200, llm))
    if mode == "anti":
        projections.append(stage_projection("inversion", 1, spec_tokens + 300, spec_tokens * 1.5, llm))
    return _from_projection(stage, projections), int(examples * (_AFT_PROMPT_TOKENS + response))


def _neutral(stage: Stage, matched_tokens: int) -> StagePreview:
    config = stage.params["config"]
    per_document = config.target_words * 1.35
    calls = math.ceil(matched_tokens / per_document * 1.15)
    return _from_projection(stage, [stage_projection("neutral", calls, 150, per_document, config.generator)])


def _variant(stage: Stage, out: Path, unbuilt: dict[Path, str]) -> StagePreview:
    generator: LLMConfig | None = stage.params["generator"]
    source = _spec_text(Path(stage.params["source"]), unbuilt)
    kind = stage.params["variant"].variant
    growth = {VariantKind.EXPLAIN_VALUES: 3, VariantKind.ADD_SUBRULES: 3, VariantKind.RULES_ONLY: 0.3}.get(kind, 1)
    unbuilt[out] = source[:int(len(source) * growth)] if growth <= 1 else source * int(growth)
    if generator is None:
        return StagePreview(stage.kind, stage.label)
    tokens = estimate_tokens(source)
    return _from_projection(stage, [stage_projection("variant", 1, tokens + 400, tokens * growth, generator)])


def _params_billion(plan: Plan) -> tuple[float, str]:
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


def _eval_flops(stage: Stage, params: float) -> tuple[float, list[StageProjection]]:
    settings = stage.params["eval"]
    if settings.suite == "values":
        split = None if settings.split == "all" else settings.split
        items = sum(min(len(load_value_items(s, split=split)), settings.limit or 10**9) for s in settings.items
                    if s in BUILTIN_VALUE_SETS or Path(s).exists())
        return 2 * params * items * 4 * _VALUE_ITEM_TOKENS, []
    if settings.suite == "capability":
        mc = min(len(load_mc_items()), settings.limit or 10**9)
        text = estimate_tokens(heldout_text_path().read_text(encoding="utf-8")) * settings.window / settings.stride
        return 2 * params * (text + mc * 4 * 80), []
    config = settings.agentic_config("preview")
    samples = len(config.conditions()) * config.epochs
    grader = LLMConfig(provider="anthropic", model=config.grader.model.split("/", 1)[-1]) \
        if config.grader.model.startswith("anthropic/") else LLMConfig(provider="local", model=config.grader.model)
    return (2 * params * samples * sum(_AGENTIC_SAMPLE),
            [stage_projection("grader", samples, _GRADER_CALL[0], _GRADER_CALL[1], grader)])


def preview_experiment(config_path: str | Path, out: str | Path) -> ExperimentPreview:
    plan = plan_for(Path(config_path), Path(out))
    params_b, params_source = _params_billion(plan)
    params = params_b * 1e9
    previews: list[StagePreview] = []
    corpus_tokens: dict[str, int] = {}
    aft_tokens: dict[str, int] = {}
    aft_examples: dict[str, int] = {}
    unbuilt: dict[Path, str] = {}  # variant spec file -> estimated text
    for stage in plan.ordered():
        if stage.kind == "variant":
            previews.append(_variant(stage, plan.dir(stage.key) / "spec.md", unbuilt))
        elif stage.kind == "corpus":
            preview, corpus_tokens[stage.key] = _corpus(stage, unbuilt)
            previews.append(preview)
        elif stage.kind == "neutral":
            corpus_tokens[stage.key] = corpus_tokens[stage.deps[0]]
            previews.append(_neutral(stage, corpus_tokens[stage.key]))
        elif stage.kind == "aftdata":
            preview, aft_tokens[stage.key] = _aft_data(stage, unbuilt)
            aft_examples[stage.key] = stage.params["config"].counts.examples
            previews.append(preview)
        elif stage.kind == "mix":
            aft_tokens[stage.key] = int(aft_tokens[stage.deps[0]] * (1 + stage.params["mix"].ratio))
            aft_examples[stage.key] = aft_examples[stage.deps[0]]
            previews.append(StagePreview(stage.kind, stage.label))
        elif stage.kind in ("midtrain", "aft"):
            config = stage.params["config"]
            data = next(d for d in stage.deps if d in corpus_tokens or d in aft_tokens)
            tokens = corpus_tokens.get(data) or aft_tokens[data]
            if stage.kind == "aft" and config.data.max_rows:
                tokens = int(tokens * min(1.0, config.data.max_rows / aft_examples[data]))
            tokens = int(tokens * config.optim.epochs)
            per_token = 4 if config.lora.enabled else 6
            previews.append(StagePreview(stage.kind, stage.label, train_tokens=tokens, flops=per_token * params * tokens))
        else:
            flops, grader = _eval_flops(stage, params)
            preview = _from_projection(stage, grader) if grader else StagePreview(stage.kind, stage.label)
            preview.flops = flops
            previews.append(preview)
    compute = plan.config.compute
    notes = [f"Base model: {params_b:.2f}B parameters ({params_source}). GPU hours assume {compute.peak_tflops:.0f} "
             f"TFLOP/s per GPU at {compute.mfu:.0%} MFU (LoRA ~4N FLOPs per token, full fine-tuning ~6N, eval 2N).",
             "API estimates: ~4 characters per token and typical answer sizes; top-ups, retries and replacement "
             "rounds add typically 5-20%. Cached answers from earlier runs cost nothing."]
    if any(s.cost_usd is None for s in previews):
        notes.append("No price is known for some model here; set `price:` in its LLM config to see its cost.")
    return ExperimentPreview(plan.config.name, previews, params_b, compute.peak_tflops, compute.mfu, compute.gpus, notes)


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


def headline(preview: ExperimentPreview) -> tuple[str, str]:
    """(API cost, GPU hours with wall-clock hours) as the README's "Reproducing the paper" table shows them."""
    cost = "unknown" if preview.cost_usd is None else f"US${preview.cost_usd:,.0f}"
    return cost, f"{preview.gpu_hours:,.0f} ({preview.gpu_hours / preview.gpus:,.1f} h)"
