"""`msm generate aft | deliberative | anti-spec | neutral | mix`: AFT chat data and the paper's baselines."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.markup import escape

from msmkit.errors import ConfigError

_STYLES = ("value", "rule", "deliberative", "value_free")


def _console() -> Console:
    return Console(stderr=True)


def _settings(config: Path, examples: Optional[int], style: Optional[str]) -> Any:
    from msmkit.generate.aft import load_aft_config

    settings = load_aft_config(config)
    if examples is not None:
        settings.counts.examples = examples
    if style is not None:
        if style not in _STYLES:
            raise ConfigError(f"--style must be one of {', '.join(_STYLES)}, got {style!r}")
        settings.style = style
    return settings


def _run_aft(mode: str, spec: Path, settings: Any, out: Path) -> None:
    from msmkit.stages.aft_data import AFT_DATA, AftDataJob
    from msmkit.stages.contract import FileInput, StageEnv

    console = _console()
    outputs = AFT_DATA.run(AftDataJob(mode, FileInput(spec), settings), out,  # type: ignore[arg-type]
                           StageEnv.standalone(lambda message: console.print(escape(message), highlight=False)))
    _summary(console, outputs)


def _summary(console: Console, outputs: Any) -> None:
    from msmkit.runs import usage_totals

    stats = outputs.statistics()
    examples, judge, questions = stats["examples"], stats["judge"], stats["questions"]
    rate = judge["pass_rate_all_rounds"]
    console.print(f"[bold green]aft:[/] {examples['kept']} of {examples['target']} examples -> "
                  f"{escape(str(outputs.chat_file(cot=True)))} and {escape(str(outputs.chat_file(cot=False)))} "
                  f"(datasets: {outputs.DATASET_WITH_COT}/, {outputs.DATASET_WITHOUT_COT}/)")
    console.print(f"questions {questions['unique']} unique of {questions['raw']} ({questions['near_duplicates']} near "
                  f"duplicates); judge pass rate {'n/a' if rate is None else f'{rate:.0%}'} over {judge['judged']} "
                  f"judged; drops: {escape(str(stats['drops'] or 'none'))}")
    total = usage_totals(outputs.folder)
    console.print(f"tokens in/out {int(total.get('input_tokens', 0)):,}/{int(total.get('output_tokens', 0)):,}, "
                  f"cost ${total.get('cost_usd', 0.0):.2f}; stats {escape(str(outputs.folder / outputs.STATS))}")
    if examples["shortfall"]:
        console.print(f"[yellow]short by {examples['shortfall']}:[/] rerun to retry failed calls, or raise "
                      "counts.max_rounds")
    if stats.get("quality_note"):
        console.print(f"[yellow]note:[/] {escape(stats['quality_note'])}")


def register(generate_app: typer.Typer) -> None:
    spec_option = typer.Option(..., "--spec", help="Model Spec file (.md or .txt).")
    config_option = typer.Option(..., "--config", help="AFT config YAML (see examples/configs/aft_*.yaml).")
    examples_option = typer.Option(None, "--examples", min=1, help="Dataset size; overrides counts.examples.")

    @generate_app.command("aft")
    def aft(spec: Path = spec_option, config: Path = config_option,
            out: Path = typer.Option(Path("runs/aft"), "--out", help="Run folder; rerunning into it resumes."),
            examples: Optional[int] = examples_option,
            style: Optional[str] = typer.Option(None, "--style", help="value | rule | deliberative | value_free; "
                                                "overrides the config.")) -> None:
        """AFT chat data: domains -> questions -> dedup -> <think> responses -> judge -> backfill -> CoT and
        no-CoT sets."""
        _run_aft("aft", spec, _settings(config, examples, style), out)

    @generate_app.command("deliberative")
    def deliberative(spec: Path = spec_option, config: Path = config_option,
                     out: Path = typer.Option(Path("runs/deliberative"), "--out", help="Run folder (resumable)."),
                     examples: Optional[int] = examples_option) -> None:
        """Deliberative-alignment baseline: reasoning quotes the spec (checked), training prompts carry no spec."""
        _run_aft("deliberative", spec, _settings(config, examples, None), out)

    @generate_app.command("anti-spec")
    def anti_spec(spec: Path = spec_option, config: Path = config_option,
                  out: Path = typer.Option(Path("runs/anti_spec"), "--out", help="Run folder (resumable)."),
                  examples: Optional[int] = examples_option) -> None:
        """Anti-spec baseline: invert the spec with the generator (saved in the run folder), then AFT data from it."""
        _run_aft("anti", spec, _settings(config, examples, None), out)

    @generate_app.command("neutral")
    def neutral(match: Path = typer.Option(..., "--match", help="MSM corpus JSONL (`text` column) to match in tokens."),
                config: Path = typer.Option(..., "--config", help="Neutral-corpus config YAML "
                                            "(examples/configs/aft_neutral.yaml)."),
                out: Path = typer.Option(Path("runs/neutral"), "--out", help="Run folder (resumable).")) -> None:
        """Token-matched neutral corpus for the control arm: everyday documents, no spec content."""
        from msmkit.generate.baselines.neutral import load_neutral_config
        from msmkit.stages.contract import FileInput, StageEnv
        from msmkit.stages.neutral import NEUTRAL, NeutralJob

        console = _console()
        outputs = NEUTRAL.run(NeutralJob(FileInput(match), load_neutral_config(config)), out,
                              StageEnv.standalone(lambda message: console.print(escape(message), highlight=False)))
        console.print(f"[bold green]neutral:[/] {outputs.documents} documents, {outputs.tokens:,} of "
                      f"{outputs.target_tokens:,} tokens -> {escape(str(outputs.documents_file))}")
        if not outputs.within_tolerance:
            console.print("[yellow]not within tolerance:[/] rerun to continue, or raise max_rounds")

    @generate_app.command("mix")
    def mix(aft: Path = typer.Option(..., "--aft", help="AFT chat data (JSONL or `datasets` folder)."),
            general: Path = typer.Option(..., "--general", help="General instruction data (JSONL or `datasets` "
                                         "folder of chat `messages`)."),
            out: Path = typer.Option(..., "--out", help="Output folder: mixed.jsonl, dataset/, mix_stats.json."),
            ratio: float = typer.Option(..., "--ratio", min=0.0, help="general : AFT amount, e.g. 2.0."),
            by: str = typer.Option("tokens", "--by", help="tokens (assistant tokens) or rows."),
            tokenizer: Optional[str] = typer.Option(None, "--tokenizer", help="HF tokenizer for token counts "
                                                    "(else ~4 chars/token)."),
            seed: int = typer.Option(0, "--seed")) -> None:
        """Blend a general instruction dataset into AFT data at a token or row ratio."""
        from msmkit.data.mix import mix_files

        if by not in ("tokens", "rows"):
            raise ConfigError(f"--by must be 'tokens' or 'rows', got {by!r}")
        outputs = mix_files(aft, general, out, ratio=ratio, by=by, tokenizer=tokenizer, seed=seed)  # type: ignore[arg-type]
        console = _console()
        console.print(f"[bold green]mix:[/] {outputs.aft_rows} AFT + {outputs.general_rows_used} general rows "
                      f"(ratio achieved {outputs.achieved_ratio} by {by}) -> {escape(str(outputs.chat_file(True)))}")
        if outputs.short_of_general_data:
            console.print("[yellow]the general dataset is too small for this ratio: all of it was used[/]")
