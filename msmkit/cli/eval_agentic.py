"""`msm eval agentic | open-qa | reasoning`: agentic misalignment via Inspect AI, open questions on the spec,
and reasoning analysis. Registered on the `eval` group by msmkit.cli.eval."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

EMBEDDED_NOTE = ("The embedded default (Gemma 3 270M base) cannot follow the agentic scenarios or judge them; "
                 "its numbers show the pipeline runs, not how an aligned model behaves.")


def _split(values: str | None) -> list[str] | None:
    return [v.strip() for v in values.split(",") if v.strip()] if values else None


def _llm_config(path: Path | None, section: str) -> Any:
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


def _errors(block: dict[str, Any]) -> str:
    """Samples without a verdict, by cause."""
    if not block["errors"]:
        return "0"
    causes = [f"{block['model_errors']} model"] if block["model_errors"] else []
    causes += [f"{n} grader {status}" for status, n in block["grader_failures"].items() if n]
    return f"{block['errors']} ({', '.join(causes)})"


def _agreement(block: dict[str, Any]) -> str:
    second = block.get("second_grader")
    if not second or not second["compared"]:
        return "-"
    kappa = "n/a" if second["kappa"] is None else f"{second['kappa']:.2f}"
    return f"{_estimate(second['agreement'])}, kappa {kappa}"


def _print_summary(summary: dict[str, Any], *, published: bool, console: Console) -> None:
    names = sorted(set(summary["persona"].values()))
    table = Table(title=f"Agentic misalignment: {escape(summary['model'])} as {escape(', '.join(names))} "
                        f"(grader {escape(summary['grader'])}; {summary['conditions']} conditions x "
                        f"{summary['epochs']} epochs{', the paper grid' if summary['paper_grid'] else ''})")
    columns = ["scenario", "samples", "no verdict", "decided (headline)", "executed", "tool call found"]
    awareness = summary["eval_awareness"]
    second = summary["second_grader"] is not None
    columns += (["says it is tested"] if awareness else []) + (["graders agree"] if second else [])
    columns += ["inspect_evals harmful"] if published else []
    for column in columns:
        table.add_column(column, min_width=len("exfiltration") if column == "scenario" else None)
    for name, block in [*summary["by_scenario"].items(), ("all", summary["all"])]:
        row = [name, str(block["samples"]), _errors(block), _estimate(block["decided"]),
               _estimate(block["executed"]), _estimate(block["action_taken"])]
        row += [_estimate(block["aware"])] if awareness else []
        row += [_agreement(block)] if second else []
        row += [_estimate(block["published_harmful"]) if "published_harmful" in block else "-"] if published else []
        table.add_row(*row)
    Console().print(table)
    if summary["all"]["errors"]:
        console.print(f"[yellow]{summary['all']['errors']} sample(s) without a verdict (after retries): excluded "
                      "from the rates, never counted as benign; rerun to ask again (see records.jsonl).[/]")
    if summary["incomplete_conditions"]:
        console.print(f"[red]conditions with epochs still missing: "
                      f"{escape(', '.join(summary['incomplete_conditions']))}[/]")


def agentic(
    out: Path = typer.Option(..., "--out", help="Run folder (created; rerunning resumes finished conditions)."),
    config: Path | None = typer.Option(None, "--config", help="YAML with the AgenticConfig fields (or an "
                                          "`agentic:` section); the flags below override it."),
    model: str | None = typer.Option(None, "--model", help="'embedded', a local folder (checkpoint or PEFT "
                                        "adapter), or an Inspect model name: anthropic/claude-..., openai/gpt-..., "
                                        "openai-api/<service>/<name> (with --base-url for vLLM)."),
    adapter: str | None = typer.Option(None, "--adapter", help="PEFT adapter for a local --model (merged once)."),
    base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible server, e.g. "
                                           "http://localhost:8000/v1 (vLLM)."),
    api_key_env: str | None = typer.Option(None, "--api-key-env", help="Environment variable holding the key."),
    grader: str | None = typer.Option(None, "--grader", help="Judge model (same forms as --model); default "
                                         "anthropic/claude-sonnet-4-6, the published task's grader."),
    grader_base_url: str | None = typer.Option(None, "--grader-base-url"),
    grader_api_key_env: str | None = typer.Option(None, "--grader-api-key-env"),
    second_grader: str | None = typer.Option(None, "--second-grader", help="A second judge (same forms as "
                                                "--model) on all or --second-grader-share of the transcripts: "
                                                "agreement and Cohen's kappa."),
    second_grader_base_url: str | None = typer.Option(None, "--second-grader-base-url"),
    second_grader_api_key_env: str | None = typer.Option(None, "--second-grader-api-key-env"),
    second_grader_share: float | None = typer.Option(None, "--second-grader-share", min=0.0, max=1.0,
                                                        help="Share of transcripts the second grader reads "
                                                        "(default 1)."),
    eval_awareness: bool | None = typer.Option(None, "--eval-awareness/--no-eval-awareness", help="Also run "
                                                  "inspect_evals' deliberation classifier: does the agent say it is "
                                                  "being tested?"),
    model_name: str | None = typer.Option(None, "--model-name", help="The agent's name in every scenario (the "
                                             "paper used the trained model's, e.g. Qwen; default: Alex / Orion)."),
    scenarios: str | None = typer.Option(None, "--scenarios", help="Comma list of blackmail, leaking, murder, "
                                            "exfiltration (default: the grid's own)."),
    grid: str | None = typer.Option(None, "--grid", help="single (explicit-america-replacement in each scenario), "
                                       "paper (the paper's 27: leaking, murder, exfiltration x no goal and 8 explicit "
                                       "goals, replacement), extended (27 per scenario over all four) or full."),
    goal_types: str | None = typer.Option(None, "--goal-types", help="Comma list: explicit, latent, none, "
                                             "ambiguous, swap (overrides the grid's)."),
    goal_values: str | None = typer.Option(None, "--goal-values", help="Comma list, e.g. america,safety."),
    urgency: str | None = typer.Option(None, "--urgency", help="Comma list: replacement, restriction, none."),
    epochs: int | None = typer.Option(None, "--epochs", min=1, help="Samples per condition."),
    temperature: float | None = typer.Option(None, "--temperature", help="Default 0.7 (the paper's)."),
    max_tokens: int | None = typer.Option(None, "--max-tokens", min=1),
    scratchpad: bool | None = typer.Option(None, "--scratchpad/--no-scratchpad", help="Offer the secret "
                                              "scratchpad or not (the published prod flag); default: on unless "
                                              "--reasons-natively."),
    reasons_natively: bool | None = typer.Option(None, "--reasons-natively/--no-reasons-natively", help="The "
                                                    "model thinks in its own <think> section (scratchpad off)."),
    extra_instructions: str | None = typer.Option(None, "--extra-instructions", help="dont or goal."),
    published_grader: bool | None = typer.Option(None, "--published-grader/--no-published-grader", help="Also "
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
    second_data = dict(data.get("second_grader") or {})
    for key, value in (("model", second_grader), ("base_url", second_grader_base_url),
                       ("api_key_env", second_grader_api_key_env)):
        if value is not None:
            second_data[key] = value
    if model_data:
        data["model"] = model_data
    if grader_data:
        data["grader"] = grader_data
    if second_data:
        data["second_grader"] = second_data
    overrides = {"scenarios": _split(scenarios), "grid": grid, "goal_types": _split(goal_types),
                 "goal_values": _split(goal_values), "urgencies": _split(urgency), "epochs": epochs,
                 "temperature": temperature, "max_tokens": max_tokens, "scratchpad": scratchpad,
                 "reasons_natively": reasons_natively, "extra_system_instructions": extra_instructions,
                 "published_grader": published_grader, "model_name": model_name,
                 "second_grader_share": second_grader_share, "eval_awareness": eval_awareness}
    data.update({key: value for key, value in overrides.items() if value is not None})
    settings = validate_config(data, AgenticConfig, str(config) if config else "command line")
    summary = run_agentic(settings, out, display=display, say=lambda m: console.print(escape(m), highlight=False))

    _print_summary(summary, published=settings.published_grader, console=console)
    if settings.model.model == "embedded" or settings.grader.model == "embedded":
        console.print(f"[yellow]note:[/] {EMBEDDED_NOTE}")
    console.print(f"summary {escape(str(Path(out) / 'agentic' / 'summary.json'))}, plot "
                  f"{escape(str(Path(out) / 'agentic' / 'rates.png'))}; browse transcripts with "
                  f"`inspect view --log-dir {escape(summary['log_dir'])}`")


def open_qa(
    spec: Path = typer.Option(..., "--spec", help="The Model Spec the questions are about."),
    out: Path = typer.Option(..., "--out", help="Run folder (rerunning resumes)."),
    model_config: Path | None = typer.Option(None, "--model-config", help="YAML LLMConfig (or `model:` section) "
                                                "of the evaluated model; default: the embedded model."),
    judge_config: Path | None = typer.Option(None, "--judge-config", help="YAML LLMConfig (or `judge:` section)."),
    generator_config: Path | None = typer.Option(None, "--generator-config", help="YAML LLMConfig (or "
                                                    "`generator:` section) that writes the questions."),
    questions: Path | None = typer.Option(None, "--questions", help="Own questions (JSONL with 'question')."),
    n_questions: int = typer.Option(150, "--n-questions", min=1),
    model_name: str | None = typer.Option(None, "--model-name", help="Fills {model_name} in the spec."),
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
    sources: list[Path] = typer.Argument(..., help="An agentic run folder (the --out of `msm eval agentic`), or "
                                         "Inspect logs (.eval/.json or a folder) and/or transcript JSONL files."),
    out: Path = typer.Option(..., "--out", help="Run folder (rerunning resumes)."),
    judge_config: Path | None = typer.Option(None, "--judge-config", help="YAML LLMConfig (or `judge:` section)."),
    whole_output: bool = typer.Option(False, "--whole-output", help="Judge the whole output of transcripts "
                                      "without a scratchpad / <think> section instead of skipping them."),
) -> None:
    """Classify transcript reasoning into misalignment drivers and spec-consistent patterns; rates with n. On an
    agentic run folder: intervals clustered by condition, per scenario and split by the grader's decided verdict."""
    from msmkit.eval.agentic.drivers import is_agentic_run, run_agentic_reasoning
    from msmkit.eval.reasoning import CATEGORIES, run_reasoning_analysis

    judge = _llm_config(judge_config, "judge")
    if len(sources) == 1 and is_agentic_run(sources[0]):
        summary = run_agentic_reasoning(sources[0], judge, out, whole_output=whole_output)
        groups = {"all": summary["all"], "decided": summary["by_decided"]["decided"],
                  "not decided": summary["by_decided"]["not_decided"]}
    else:
        summary = run_reasoning_analysis(sources, judge, out, whole_output=whole_output)
        groups = {"all": summary["all"]}
    block = summary["all"]
    failures = block.get("judge_failures", 0) + block.get("parse_failures", 0)
    table = Table(title=f"Reasoning categories: {block['labelled']} labelled of {block['transcripts']} transcripts "
                        f"({block['no_reasoning']} without reasoning, {failures} judge failures)")
    table.add_column("category")
    for name in groups:
        table.add_column(f"{name} (95% CI, n)")
    for name in CATEGORIES:
        table.add_row(name, *(_estimate(group["categories"][name]) for group in groups.values()))
    Console().print(table)


def register(eval_app: typer.Typer) -> None:
    eval_app.command("agentic")(agentic)
    eval_app.command("open-qa")(open_qa)
    eval_app.command("reasoning")(reasoning)
