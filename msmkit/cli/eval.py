"""`msm eval ...`: value generalization (log-prob forced choice or judged generation) and capability checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from msmkit.errors import ConfigError, MsmError

eval_app = typer.Typer(help="Evaluate a model: value suites, capability, and (when installed) agentic evals.",
                       no_args_is_help=True)

DEFAULT_SUITES = ["pro_america", "pro_affordability", "cheese"]
EMBEDDED_NOTE = ("The embedded default is Gemma 3 270M, a small *base* model: its choices are close to chance and "
                 "mostly follow option position; it shows the pipeline runs, not what MSM does at scale.")


def _load_llm_config(path: Path, section: str) -> Any:
    from msmkit.config import load_config, load_yaml
    from msmkit.llm.types import LLMConfig

    data = load_yaml(path)
    return load_config(path, LLMConfig, section=section if isinstance(data, dict) and section in data else None)


def _model_label(model: str, adapter: str | None) -> dict[str, Any]:
    return {"model": model, "adapter": adapter}


@eval_app.command("values")
def values(
    out: Path = typer.Option(..., "--out", help="Run folder (created; an existing one is resumed)."),
    model: str = typer.Option("embedded", "--model", help="Local model folder, cached hub name, adapter folder, "
                              "or 'embedded'. For --scorer judge, --model-config may name an endpoint instead."),
    adapter: Optional[str] = typer.Option(None, "--adapter", help="PEFT adapter folder to apply to --model."),
    items: list[str] = typer.Option(DEFAULT_SUITES, "--items", help="Built-in set (pro_america, pro_affordability, "
                                    "cheese) or a JSONL file in the documented item format; repeatable."),
    split: str = typer.Option("test", "--split", help="dev, test or all."),
    scorer: str = typer.Option("logprob", "--scorer",
                               help="logprob (forced choice) or judge (generation + LLM judge)."),
    judge_config: Optional[Path] = typer.Option(None, "--judge-config", help="YAML LLMConfig (or a `judge:` section) "
                                                "for the judge; default: the embedded model (weak)."),
    model_config: Optional[Path] = typer.Option(None, "--model-config", help="YAML LLMConfig (or a `model:` "
                                                "section) for the evaluated model when it is an endpoint "
                                                "(judge scorer)."),
    batch_size: int = typer.Option(16, "--batch-size", help="Items per forward pass (logprob scorer)."),
    prompt_style: str = typer.Option("auto", "--prompt-style", help="auto, completion or chat (logprob scorer)."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, ... (default: cuda if available)."),
    dtype: Optional[str] = typer.Option(None, "--dtype", help="float32 / bfloat16 (default: fp32 CPU, bf16 GPU)."),
    answer_max_tokens: int = typer.Option(200, "--answer-max-tokens", help="Answer length limit (judge scorer)."),
) -> None:
    """Score value-choice items (both option orders) and write per-item records, summary.json and a bar chart."""
    from msmkit.eval.items import load_value_items, suite_name
    from msmkit.runs import RunDir

    if scorer not in ("logprob", "judge"):
        raise ConfigError(f"--scorer must be logprob or judge (got {scorer!r})")
    if prompt_style not in ("auto", "completion", "chat"):
        raise ConfigError(f"--prompt-style must be auto, completion or chat (got {prompt_style!r})")
    suites = {suite_name(source): load_value_items(source, split=split) for source in items}
    run = RunDir(out)
    settings = {"command": "eval values", **_model_label(model, adapter), "items": items, "split": split,
                "scorer": scorer, "judge_config": str(judge_config) if judge_config else None,
                "model_config": str(model_config) if model_config else None, "batch_size": batch_size,
                "prompt_style": prompt_style, "device": device, "dtype": dtype,
                "answer_max_tokens": answer_max_tokens}
    run.write_config(settings, "values/config.yaml")  # one run folder may hold several eval commands
    summaries: dict[str, Any] = {}
    notes = [EMBEDDED_NOTE] if model == "embedded" and model_config is None else []
    if scorer == "logprob":
        if model_config is not None:
            raise ConfigError("--scorer logprob needs local weights (--model); use --scorer judge to evaluate an "
                              "endpoint given by --model-config")
        from msmkit.eval.suites import score_value_suites
        from msmkit.models.loading import load_causal_lm

        lm, tokenizer = load_causal_lm(model, adapter=adapter, device=device, dtype=dtype)
        summaries = score_value_suites(lm, tokenizer, suites, run, batch_size=batch_size,
                                       prompt_style=prompt_style,  # type: ignore[arg-type]
                                       extra={**_model_label(model, adapter), "split": split})
    else:
        summaries = _run_judged(run, suites, model, adapter, model_config, judge_config, split, answer_max_tokens)
        if judge_config is None:
            notes.append("The judge was the embedded 270M base model: its verdicts are unreliable; pass "
                         "--judge-config with a capable model for numbers worth reporting.")
    overall = {"suites": summaries, "notes": notes}
    run.write_json("values/summary.json", overall)
    run.close()
    _print_values(summaries, run.path)


def _run_judged(run: Any, suites: dict[str, list], model: str, adapter: str | None, model_config: Path | None,
                judge_config: Path | None, split: str, answer_max_tokens: int) -> dict[str, Any]:
    from msmkit.eval.judged_choice import JudgedChoiceScorer
    from msmkit.eval.values import run_judged_choice
    from msmkit.llm.client import LLMClient
    from msmkit.llm.types import LLMConfig

    if model_config is not None:
        evaluated = _load_llm_config(model_config, "model")
    else:
        # An adapter folder names its own base model, so the local backend can load it directly.
        evaluated = LLMConfig(provider="local", model=adapter or model)
    judge = _load_llm_config(judge_config, "judge") if judge_config else LLMConfig(provider="local", model="embedded")
    summaries = {}
    for name, suite in suites.items():
        scorer = JudgedChoiceScorer(model=LLMClient(evaluated, run=run, stage=f"values/{name}/answers"),
                                    judge=LLMClient(judge, run=run, stage=f"values/{name}/judge"),
                                    answer_max_tokens=answer_max_tokens)
        summaries[name] = run_judged_choice(scorer, suite, run, name=name, stage=f"values/{name}",
                                            extra={"split": split, "adapter": adapter})
    return summaries


def _print_values(summaries: dict[str, Any], path: Path) -> None:
    for name, summary in summaries.items():
        rate = summary["target_rate"]
        if rate.get("mean") is None:
            typer.echo(f"{name}: no counted items (see {path}/values/{name}/summary.json)")
            continue
        line = (f"{name}: target rate {rate['mean']:.3f} [{rate['low']:.3f}, {rate['high']:.3f}] n={rate['n']}")
        if summary["scorer"] == "logprob":
            bias = summary["position_bias_rate"]
            line += f"; slot-A wins {bias['mean']:.3f} (n={bias['n']})"
            line += f"; order-consistent {summary['order_consistency_rate']['mean']:.3f}"
        else:
            line += (f"; parse rate {summary['parse_rate'].get('mean')}; "
                     f"agreement {summary['agreement_rate'].get('mean')}")
        typer.echo(line)
    typer.echo(f"results: {path}")


@eval_app.command("capability")
def capability(
    out: Path = typer.Option(..., "--out", help="Run folder (created; an existing one is resumed)."),
    model: str = typer.Option("embedded", "--model", help="Local model folder, cached hub name, adapter folder, "
                              "or 'embedded'."),
    adapter: Optional[str] = typer.Option(None, "--adapter", help="PEFT adapter folder to apply to --model."),
    text: Optional[Path] = typer.Option(None, "--text", help="Held-out text file (default: the packaged one)."),
    mc: Optional[Path] = typer.Option(None, "--mc", help="Multiple-choice JSONL (default: the packaged set)."),
    window: int = typer.Option(512, "--window", help="Perplexity window in tokens."),
    stride: int = typer.Option(256, "--stride", help="New tokens scored per window."),
    device: Optional[str] = typer.Option(None, "--device"),
    dtype: Optional[str] = typer.Option(None, "--dtype"),
) -> None:
    """Perplexity on held-out text and general-knowledge MC accuracy, so a damaged model is visible."""
    from msmkit.eval.items import heldout_text_path, load_mc_items
    from msmkit.eval.suites import run_capability
    from msmkit.models.loading import load_causal_lm
    from msmkit.runs import RunDir

    text_path = text or heldout_text_path()
    if not text_path.is_file():
        raise MsmError(f"{text_path}: held-out text file not found")
    mc_items = load_mc_items(mc)
    run = RunDir(out)
    run.write_config({"command": "eval capability", **_model_label(model, adapter), "text": str(text_path),
                      "mc": str(mc) if mc else "builtin:capability_mc", "window": window, "stride": stride,
                      "device": device, "dtype": dtype}, "capability/config.yaml")
    lm, tokenizer = load_causal_lm(model, adapter=adapter, device=device, dtype=dtype)
    summary = run_capability(lm, tokenizer, run, text_path=text_path, mc_items=mc_items, window=window,
                             stride=stride, extra=_model_label(model, adapter))
    run.close()
    ppl, acc = summary["perplexity"], summary["mc"]["accuracy"]
    typer.echo(f"perplexity {ppl['perplexity']:.2f} over {ppl['n_tokens']} tokens; MC accuracy {acc['mean']:.3f} "
               f"[{acc['low']:.3f}, {acc['high']:.3f}] n={acc['n']} (chance 0.25)")
    typer.echo(f"results: {run.path}")


@eval_app.command("compare")
def compare(
    first: Path = typer.Argument(..., help="Run folder of the first arm."),
    second: Path = typer.Argument(..., help="Run folder of the second arm."),
    suite: str = typer.Option("pro_america", "--suite", help="Suite name (folder under values/)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the comparison as JSON here."),
) -> None:
    """Paired comparison of two arms on the same items: difference with bootstrap CI, sign, permutation and
    McNemar tests."""
    from msmkit.eval.compare import compare_runs
    from msmkit.io import atomic_write_json

    result = compare_runs(first, second, suite)
    if out:
        atomic_write_json(out, result)
    diff = result["difference"]
    line = (f"{suite}: {result['mean_first']:.3f} vs {result['mean_second']:.3f}, difference {diff['mean']:+.3f} "
            f"[{diff['low']:+.3f}, {diff['high']:+.3f}] n={result['n']}; "
            f"sign test p={result['sign_test']['p_value']:.4f}; "
            f"permutation p={result['permutation_test']['p_value']:.4f}")
    if "mcnemar" in result:
        line += f"; McNemar p={result['mcnemar']['p_value']:.4f}"
    typer.echo(line)


@eval_app.command("seeds")
def seeds(
    runs: list[Path] = typer.Argument(..., help="Run folders of one arm, one per training seed."),
    suite: str = typer.Option("pro_america", "--suite", help="Suite name (folder under values/)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the aggregate as JSON here."),
) -> None:
    """Aggregate one arm over seeds: mean of seed means, with seed-level and seed+item-level bootstrap CIs."""
    from msmkit.eval.compare import aggregate_runs
    from msmkit.io import atomic_write_json

    result = aggregate_runs(runs, suite)
    if out:
        atomic_write_json(out, result)
    seed_ci, both_ci = result["seed_level"], result["seed_and_item_level"]
    typer.echo(f"{suite}: mean {result['mean']:.3f} over {result['n_seeds']} seeds; seed-level CI "
               f"[{seed_ci['low']:.3f}, {seed_ci['high']:.3f}]; seed+item-level CI [{both_ci['low']:.3f}, "
               f"{both_ci['high']:.3f}] (n items {both_ci['n']})")


def register(app: typer.Typer) -> None:
    from msmkit.cli.eval_agentic import register as register_agentic  # agentic, open QA and reasoning

    register_agentic(eval_app)
    app.add_typer(eval_app, name="eval")
