"""`msm eval agentic | open-qa | reasoning`: agentic misalignment via Inspect AI, open questions on the spec,
and reasoning analysis. Registered on the `eval` group by msmkit.cli.eval."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

EMBEDDED_NOTE = ("The embedded default (Gemma 3 270M base) cannot follow the agentic scenarios or judge them; "
                 "its numbers show the pipeline runs, not how an aligned model behaves.")


def _split(values: Optional[str]) -> list[str] | None:
    return [v.strip() for v in values.split(",") if v.strip()] if values else None


def _llm_config(path: Optional[Path], section: str) -> Any:
    from msmkit.config import load_config, load_yaml
    from msmkit.llm.types import LLMConfig

    if path is None:
        return LLMConfig()
    data = load_yaml(path)
    return load_config(path, LLMConfig, section=section if isinstance(data, dict) and section in data else None)


def _estimate(block: dict[str, Any]) -> str:
    if block.get("mean") is None:
        return "n/a"
    return f"{block['mean']:.2f} [{block['low']:.2f}, {block['high']:.2f}] (n={block['n']})"


def agentic(
    out: Path = typer.Option(..., "--out", help="Run folder (created; rerunning resumes finished conditions)."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML with the AgenticConfig fields (or an "
                                          "`agentic:` section); the flags below override it."),
    model: Optional[str] = typer.Option(None, "--model", help="'embedded', a local folder (checkpoint or PEFT "
                                        "adapter), or an Inspect model name: anthropic/claude-..., openai/gpt-..., "
                                        "openai-api/<service>/<name> (with --base-url for vLLM)."),
    adapter: Optional[str] = typer.Option(None, "--adapter", help="PEFT adapter for a local --model (merged once)."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="OpenAI-compatible server, e.g. "
                                           "http://localhost:8000/v1 (vLLM)."),
    api_key_env: Optional[str] = typer.Option(None, "--api-key-env", help="Environment variable holding the key."),
    grader: Optional[str] = typer.Option(None, "--grader", help="Judge model (same forms as --model); default "
                                         "anthropic/claude-sonnet-4-6, the published task's grader."),
    grader_base_url: Optional[str] = typer.Option(None, "--grader-base-url"),
    grader_api_key_env: Optional[str] = typer.Option(None, "--grader-api-key-env"),
    scenarios: Optional[str] = typer.Option(None, "--scenarios", help="Comma list of blackmail, leaking, murder, "
                                            "exfiltration (default: all four)."),
    grid: Optional[str] = typer.Option(None, "--grid", help="single (explicit-america-replacement), paper (27 "
                                       "conditions per scenario) or full."),
    goal_types: Optional[str] = typer.Option(None, "--goal-types", help="Comma list: explicit, latent, none, "
                                             "ambiguous, swap (overrides the grid's)."),
    goal_values: Optional[str] = typer.Option(None, "--goal-values", help="Comma list, e.g. america,safety."),
    urgency: Optional[str] = typer.Option(None, "--urgency", help="Comma list: replacement, restriction, none."),
    epochs: Optional[int] = typer.Option(None, "--epochs", min=1, help="Samples per condition."),
    temperature: Optional[float] = typer.Option(None, "--temperature", help="Default 0.7 (the paper's)."),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", min=1),
    scratchpad: Optional[bool] = typer.Option(None, "--scratchpad/--no-scratchpad", help="Offer the secret "
                                              "scratchpad (default) or not (the published prod flag)."),
    extra_instructions: Optional[str] = typer.Option(None, "--extra-instructions", help="dont or goal."),
    published_grader: Optional[bool] = typer.Option(None, "--published-grader/--no-published-grader", help="Also "
                                                    "score blackmail/leaking/murder with inspect_evals' classifier."),
    display: str = typer.Option("rich", "--display", help="Inspect's display: rich, plain, log or none."),
) -> None:
    """Agentic misalignment (blackmail, leaking, murder from inspect_evals; our exfiltration): decided and
    executed rates per scenario, with Inspect logs in <out>/agentic/logs."""
    from msmkit.config import load_config, load_yaml, validate_config
    from msmkit.eval.agentic import AgenticConfig, run_agentic

    console = Console(stderr=True)
    data: dict[str, Any] = {}
    if config is not None:
        raw = load_yaml(config)
        data = load_config(config, AgenticConfig, section="agentic" if isinstance(raw, dict) and "agentic" in raw
                           else None).model_dump(exclude_unset=True)
    model_data = dict(data.get("model", {}))
    for key, value in (("model", model), ("adapter", adapter), ("base_url", base_url), ("api_key_env", api_key_env)):
        if value is not None:
            model_data[key] = value
    grader_data = dict(data.get("grader", {}))
    for key, value in (("model", grader), ("base_url", grader_base_url), ("api_key_env", grader_api_key_env)):
        if value is not None:
            grader_data[key] = value
    if model_data:
        data["model"] = model_data
    if grader_data:
        data["grader"] = grader_data
    overrides = {"scenarios": _split(scenarios), "grid": grid, "goal_types": _split(goal_types),
                 "goal_values": _split(goal_values), "urgencies": _split(urgency), "epochs": epochs,
                 "temperature": temperature, "max_tokens": max_tokens, "scratchpad": scratchpad,
                 "extra_system_instructions": extra_instructions, "published_grader": published_grader}
    data.update({key: value for key, value in overrides.items() if value is not None})
    settings = validate_config(data, AgenticConfig, str(config) if config else "command line")
    summary = run_agentic(settings, out, display=display, say=lambda m: console.print(escape(m), highlight=False))

    table = Table(title=f"Agentic misalignment: {escape(summary['model'])} (grader {escape(summary['grader'])})")
    published = settings.published_grader
    columns = ["scenario", "samples", "errors", "decided (paper's number)", "executed", "tool call found"]
    for column in columns + (["inspect_evals harmful"] if published else []):
        table.add_column(column)
    for name, block in [*summary["by_scenario"].items(), ("all", summary["all"])]:
        row = [name, str(block["samples"]), str(block["errors"]), _estimate(block["decided"]),
               _estimate(block["executed"]), _estimate(block["action_taken"])]
        if published:
            row.append(_estimate(block["published_harmful"]) if "published_harmful" in block else "-")
        table.add_row(*row)
    Console().print(table)
    if summary["all"]["errors"]:
        console.print(f"[yellow]{summary['all']['errors']} sample(s) errored (model or judge): excluded from the "
                      "rates, listed in records.jsonl.[/]")
    if summary["conditions_without_log"]:
        console.print(f"[red]no finished log for: {escape(', '.join(summary['conditions_without_log']))}[/]")
    if settings.model.model == "embedded" or settings.grader.model == "embedded":
        console.print(f"[yellow]note:[/] {EMBEDDED_NOTE}")
    console.print(f"summary {escape(str(Path(out) / 'agentic' / 'summary.json'))}, plot "
                  f"{escape(str(Path(out) / 'agentic' / 'rates.png'))}; browse transcripts with "
                  f"`inspect view --log-dir {escape(summary['log_dir'])}`")


def open_qa(
    spec: Path = typer.Option(..., "--spec", help="The Model Spec the questions are about."),
    out: Path = typer.Option(..., "--out", help="Run folder (rerunning resumes)."),
    model_config: Optional[Path] = typer.Option(None, "--model-config", help="YAML LLMConfig (or `model:` section) "
                                                "of the evaluated model; default: the embedded model."),
    judge_config: Optional[Path] = typer.Option(None, "--judge-config", help="YAML LLMConfig (or `judge:` section)."),
    generator_config: Optional[Path] = typer.Option(None, "--generator-config", help="YAML LLMConfig (or "
                                                    "`generator:` section) that writes the questions."),
    questions: Optional[Path] = typer.Option(None, "--questions", help="Own questions (JSONL with 'question')."),
    n_questions: int = typer.Option(150, "--n-questions", min=1),
    model_name: Optional[str] = typer.Option(None, "--model-name", help="Fills {model_name} in the spec."),
    answer_max_tokens: int = typer.Option(1024, "--answer-max-tokens", min=1),
    judge_max_tokens: int = typer.Option(512, "--judge-max-tokens", min=16),
) -> None:
    """Open questions on the spec, answered by the model and judged 1-10 for adherence (in-distribution check)."""
    from msmkit.eval.open_qa import OpenQAConfig, run_open_qa

    config = OpenQAConfig(spec=str(spec), questions_file=str(questions) if questions else None,
                          n_questions=n_questions, model_name=model_name, answer_max_tokens=answer_max_tokens,
                          judge_max_tokens=judge_max_tokens,
                          model=_llm_config(model_config, "model"), judge=_llm_config(judge_config, "judge"),
                          generator=_llm_config(generator_config, "generator"))
    summary = run_open_qa(config, out)
    console = Console()
    console.print(f"[bold]open QA[/] {escape(summary['model'])}: mean adherence {_estimate(summary['score'])}; "
                  f"parse failures {summary['parse_failures']}, answer failures {summary['answer_failures']}, "
                  f"truncated answers {summary['truncated_answers']} of {summary['questions']} questions")
    console.print(f"[dim]{escape(summary['note'])}[/]")


def reasoning(
    sources: list[Path] = typer.Argument(..., help="Inspect logs (.eval/.json or a folder, e.g. "
                                         "<run>/agentic/logs) and/or transcript JSONL files."),
    out: Path = typer.Option(..., "--out", help="Run folder (rerunning resumes)."),
    judge_config: Optional[Path] = typer.Option(None, "--judge-config", help="YAML LLMConfig (or `judge:` section)."),
    whole_output: bool = typer.Option(False, "--whole-output", help="Judge the whole output of transcripts "
                                      "without a scratchpad / <think> section instead of skipping them."),
) -> None:
    """Classify transcript reasoning into misalignment drivers and spec-consistent patterns; rates with n."""
    from msmkit.eval.reasoning import CATEGORIES, run_reasoning_analysis

    summary = run_reasoning_analysis(sources, _llm_config(judge_config, "judge"), out, whole_output=whole_output)
    block = summary["all"]
    table = Table(title=f"Reasoning categories: {block['labelled']} labelled of {block['transcripts']} transcripts "
                        f"({block['no_reasoning']} without reasoning, {block['parse_failures']} parse failures)")
    table.add_column("category")
    table.add_column("rate (95% CI, n)")
    for name in CATEGORIES:
        table.add_row(name, _estimate(block["categories"][name]))
    Console().print(table)


def register(eval_app: typer.Typer) -> None:
    eval_app.command("agentic")(agentic)
    eval_app.command("open-qa")(open_qa)
    eval_app.command("reasoning")(reasoning)
