"""`msm generate ...`: the MSM corpus here; AFT commands register from msmkit.cli.generate_aft when present."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from msmkit.errors import ConfigError

generate_app = typer.Typer(help="Generate training data: the MSM corpus, AFT chat data.", no_args_is_help=True)


def _print_preview(projection: object, console: Console) -> None:
    data = projection.as_dict()  # type: ignore[attr-defined]
    for domain in data["decomposition"]:
        console.print(f"[bold]{escape(domain['domain'])}[/]")
        for sub in domain["subdomains"]:
            mark = "" if sub["excerpt_verified"] else f"  [red](excerpt unverified, {sub['excerpt_similarity']:.2f})[/]"
            console.print(f"  - {escape(sub['name'])}{mark}")
    table = Table(title=f"Projected cost for {data['documents']} documents")
    for column in ("stage", "calls", "input tokens", "output tokens", "cost (US$)"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for stage in data["stages"] + [data["total"]]:
        cost = "unknown" if stage["cost_usd"] is None else f"{stage['cost_usd']:.2f}"
        table.add_row(stage["stage"], f"{stage['calls']:,}", f"{stage['input_tokens']:,}",
                      f"{stage['output_tokens']:,}", cost)
    console.print(table)
    for note in data["notes"]:
        console.print(f"[dim]{escape(note)}[/]")


@generate_app.command("corpus")
def corpus(
    spec: Path = typer.Option(..., "--spec", help="Model Spec file (.md or .txt)."),
    config: Path = typer.Option(..., "--config", help="Corpus config YAML (see examples/configs/corpus_*.yaml)."),
    out: Path = typer.Option(Path("runs/corpus"), "--out", help="Run folder; rerunning into it resumes."),
    preview: bool = typer.Option(False, "--preview", help="Show the decomposition and projected calls, tokens and "
                                 "cost; spend nothing else (with LLM decomposition, runs only those few calls)."),
    decompose: Optional[str] = typer.Option(None, "--decompose", help="'headings' (free, from the spec's sections) "
                                            "or 'llm'; overrides the config."),
    documents: Optional[int] = typer.Option(None, "--documents", min=1, help="Total documents; overrides the config."),
) -> None:
    """Build the midtraining corpus: spec -> domains -> subdomains -> assertions -> types -> ideas -> documents."""
    from msmkit.generate.corpus import generate_corpus, load_corpus_config
    from msmkit.stages.contract import FileInput, StageEnv
    from msmkit.stages.corpus import CORPUS, CorpusJob

    console = Console(stderr=True)
    settings = load_corpus_config(config)
    if decompose is not None:
        if decompose not in ("headings", "llm"):
            raise ConfigError(f"--decompose must be 'headings' or 'llm', got {decompose!r}")
        settings.decompose = decompose  # type: ignore[assignment]
    if documents is not None:
        settings.counts.documents = documents
    say = lambda message: console.print(escape(message), highlight=False)  # noqa: E731
    if preview:
        result = generate_corpus(spec, settings, out, preview=True, report=say)
        _print_preview(result.preview, Console())
        return
    outputs = CORPUS.run(CorpusJob(FileInput(spec), settings), out, StageEnv.standalone(say))
    kept = outputs.documents
    console.print(f"[bold green]corpus:[/] {kept.get('kept')} of {kept.get('target')} documents -> "
                  f"{escape(str(outputs.documents_file))} (HF dataset: {escape(str(out / outputs.DATASET))})")
    _print_usage(console, out)
    console.print(f"stats {escape(str(out / outputs.STATS))}, plot {escape(str(out / outputs.PLOT))}")
    if outputs.quality_note:
        console.print(f"[yellow]note:[/] {escape(outputs.quality_note)}")


def _print_usage(console: Console, out: Path) -> None:
    from msmkit.runs import usage_totals

    total = usage_totals(out)
    console.print(f"tokens in/out {int(total.get('input_tokens', 0)):,}/{int(total.get('output_tokens', 0)):,}, "
                  f"cost ${total.get('cost_usd', 0.0):.2f}")


def register(app: typer.Typer) -> None:
    from msmkit.cli.generate_aft import register as register_aft

    register_aft(generate_app)
    app.add_typer(generate_app, name="generate")
