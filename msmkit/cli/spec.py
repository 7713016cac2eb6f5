"""`msm spec show | lint | variant`: inspect, check and derive Model Specs."""

from __future__ import annotations

import asyncio
import json
import sys
import warnings
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markdown import Markdown
from rich.markup import escape
from rich.tree import Tree

from msmkit.errors import ConfigError
from msmkit.spec.lint import LintReport, lint_spec
from msmkit.spec.load import DEFAULT_CONTEXT_RESERVE, ModelSpec, check_fits_context, load_spec

spec_app = typer.Typer(help="Inspect, lint and derive Model Specs.", no_args_is_help=True)

ModelNameOption = typer.Option(None, "--model-name", help="Fills {model_name} (the model being trained).")
ProviderNameOption = typer.Option(None, "--provider-name", help="Fills {provider_name}.")


def _load(path: Path, model_name: str | None, provider_name: str | None, err: Console,
          warn_unfilled: bool = True) -> ModelSpec:
    spec = load_spec(path, model_name=model_name, provider_name=provider_name, warn=False)
    shown = spec.warnings if warn_unfilled else spec.warnings[:len(spec.unknown_placeholders)]
    for message in shown:
        err.print(f"[yellow]warning:[/] {message}", highlight=False, markup=True)
    return spec


@spec_app.command("show")
def show(
    spec_path: Path = typer.Argument(..., metavar="SPEC", help="Spec file (.md or .txt)."),
    model_name: Optional[str] = ModelNameOption,
    provider_name: Optional[str] = ProviderNameOption,
    context_window: Optional[int] = typer.Option(
        None, help="Generator context in tokens: warn if the spec does not fit."),
    reserve: int = typer.Option(DEFAULT_CONTEXT_RESERVE, help="Tokens kept free for instructions and output."),
    structure_only: bool = typer.Option(False, "--structure-only", help="Print the structure, not the text."),
    plain: bool = typer.Option(False, "--plain", help="Print the templated text as is (no Markdown rendering)."),
) -> None:
    """Print the templated spec and its structure: sections with sizes and rule counts."""
    out, err = Console(), Console(stderr=True)
    spec = _load(spec_path, model_name, provider_name, err)
    if not structure_only:
        if plain:
            sys.stdout.write(spec.text if spec.text.endswith("\n") else spec.text + "\n")
            sys.stdout.flush()
        else:
            out.print(Markdown(spec.text))
        out.rule()
    structure = spec.structure
    tree = Tree(f"[bold]{escape(spec.name)}[/]  {len(spec.text):,} chars, ~{len(spec.text) // 4:,} tokens, "
                f"{len(structure.sections)} sections, {len(structure.rules)} rules  sha256 {spec.sha256[:12]}")
    nodes: dict[int, Tree] = {}
    for section in structure.sections:
        rules = structure.rules_in(section.index)
        label = (f"{escape(section.title)}  [dim]line {section.heading_line}, {len(section.body.strip()):,} chars"
                 f"{f', {len(rules)} rules' if rules else ''}[/]")
        parent = nodes.get(section.parent) if section.parent is not None else tree
        nodes[section.index] = (parent or tree).add(label)
    out.print(tree)
    if context_window is not None:
        fit = check_fits_context(spec, context_window, reserve=reserve, warn=False)
        colour = "green" if fit.fits else "red"
        (out if fit.fits else err).print(f"[{colour}]context:[/] {fit.message}", highlight=False)


def _print_report(report: LintReport, out: Console) -> None:
    if not report.findings:
        out.print(f"[green]{report.spec}: no findings[/]")
    else:
        counts = {severity: sum(1 for f in report.findings if f.severity == severity)
                  for severity in ("warning", "info")}
        out.print(f"[bold]{report.spec}[/]: {counts['warning']} warning(s), {counts['info']} note(s)")
        for finding in report.findings:
            colour = "yellow" if finding.severity == "warning" else "cyan"
            mark = "*" if finding.heuristic else ""
            out.print(f"[{colour}]line {finding.line:<4} {finding.severity:<7}[/] [bold]{finding.check}{mark}[/]  "
                      f"[dim]{escape(finding.section)}[/]", highlight=False)
            out.print(f"    {escape(finding.message)}", highlight=False)
            out.print(f"    [dim]fix:[/] {escape(finding.fix)}", highlight=False)
    heuristic = ", ".join(report.heuristic_checks)
    exact = ", ".join(check.id for check in report.checks if not check.heuristic)
    out.print(f"* heuristic (text patterns; they can miss or misjudge, so read the flagged text): {heuristic}",
              highlight=False, markup=False)
    out.print(f"  exact checks: {exact}", highlight=False, markup=False)


@spec_app.command("lint")
def lint(
    spec_path: Path = typer.Argument(..., metavar="SPEC", help="Spec file (.md or .txt)."),
    model_name: Optional[str] = ModelNameOption,
    provider_name: Optional[str] = ProviderNameOption,
    strict: bool = typer.Option(False, "--strict", help="Exit with status 1 when there is any warning."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Report rules without reasons, vague guidance, sections without examples and other weak spots."""
    err = Console(stderr=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spec = load_spec(spec_path, model_name=model_name, provider_name=provider_name, warn=False)
    report = lint_spec(spec)
    if as_json:
        payload = report.model_dump(mode="json")
        payload["heuristic_checks"] = report.heuristic_checks
        sys.stdout.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    else:
        _print_report(report, Console())
    if strict and report.warnings:
        err.print(f"{len(report.warnings)} warning(s) with --strict", highlight=False)
        raise typer.Exit(1)


@spec_app.command("find")
def find(
    spec_path: Path = typer.Argument(..., metavar="SPEC", help="Spec file (.md or .txt)."),
    text: Optional[str] = typer.Option(None, "--text", help="The passage to look for."),
    text_file: Optional[Path] = typer.Option(None, "--file", help="Read the passage from this file."),
    threshold: float = typer.Option(0.9, help="Similarity (0-1, word level) needed to count as found."),
    model_name: Optional[str] = ModelNameOption,
    provider_name: Optional[str] = ProviderNameOption,
) -> None:
    """Check that a passage (e.g. a model-quoted "verbatim" section) really appears in the spec."""
    from msmkit.spec.excerpt import find_excerpt

    if (text is None) == (text_file is None):
        raise ConfigError("give the passage with exactly one of --text or --file")
    passage = text if text is not None else text_file.read_text(encoding="utf-8")
    spec = _load(spec_path, model_name, provider_name, Console(stderr=True))
    match = find_excerpt(spec, passage, threshold=threshold)
    out = Console()
    if match.start < 0:
        out.print(f"not found: no passage of {spec.name} shares wording with it", highlight=False)
        raise typer.Exit(1)
    section = spec.structure.section_at(match.start)
    verdict = "found" if match.found else "not found"
    out.print(f"{verdict}: similarity {match.similarity:.3f} (threshold {threshold}) at line "
              f"{spec.line_of(match.start)}, section '{spec.structure.section_title_path(section.index)}'",
              highlight=False, markup=False, soft_wrap=True)
    if not match.found:
        raise typer.Exit(1)


def _llm_config(config_path: Path | None, provider: str | None, model: str | None, base_url: str | None):
    from msmkit.config import load_config, load_yaml, validate_config
    from msmkit.llm.types import LLMConfig

    if config_path is not None:
        data = load_yaml(config_path)
        section = "llm" if isinstance(data, dict) and "llm" in data else None
        config = load_config(config_path, LLMConfig, section=section)
    else:
        config = LLMConfig()
    overrides = {key: value for key, value in (("provider", provider), ("model", model), ("base_url", base_url))
                 if value is not None}
    if overrides:
        config = validate_config(config.model_dump() | overrides, LLMConfig, "command-line options")
    return config


@spec_app.command("variant")
def variant(
    spec_path: Path = typer.Argument(..., metavar="SPEC", help="Spec file (.md or .txt)."),
    kind: str = typer.Option(..., "--kind", help="about-other-ai | about-humans | rules-only | general | "
                                                  "explain-values | add-subrules | inverted"),
    out: Path = typer.Option(
        ..., "--out", help="Where to write the variant (.md or .txt); a .json sidecar goes beside it."),
    model_name: Optional[str] = ModelNameOption,
    provider_name: Optional[str] = ProviderNameOption,
    other_name: Optional[str] = typer.Option(None, help="about-other-ai: the other AI's name."),
    other_provider: Optional[str] = typer.Option(None, help="about-other-ai: the other AI's maker."),
    human_name: Optional[str] = typer.Option(None, help="about-humans: the person's name."),
    human_role: Optional[str] = typer.Option(None, help="about-humans: who the person is."),
    llm_config: Optional[Path] = typer.Option(None, help="LLM kinds: YAML with an LLMConfig (or an `llm:` section)."),
    llm_provider: Optional[str] = typer.Option(None, help="LLM kinds: anthropic | openai | openai_compatible | local."),
    llm_model: Optional[str] = typer.Option(None, help="LLM kinds: model name."),
    llm_base_url: Optional[str] = typer.Option(None, help="LLM kinds: server URL (OpenAI-compatible servers)."),
    max_tokens: Optional[int] = typer.Option(None, help="LLM kinds: output budget (default: from the spec's length)."),
) -> None:
    """Write a spec variant for ablations; deterministic kinds need no model."""
    from msmkit.spec.variants import VariantKind, VariantOptions, make_llm_variant, make_variant, write_variant

    err = Console(stderr=True)
    try:
        variant_kind = VariantKind(kind)
    except ValueError:
        raise ConfigError(f"--kind: unknown variant kind '{kind}'; choose one of "
                          f"{', '.join(k.value for k in VariantKind)}") from None
    # Variants are built from the raw text, so unfilled placeholders are expected here.
    spec = _load(spec_path, model_name, provider_name, err, warn_unfilled=False)
    if variant_kind.needs_llm:
        from msmkit.llm.client import LLMClient

        config = _llm_config(llm_config, llm_provider, llm_model, llm_base_url)

        async def generate():
            client = LLMClient(config, stage=f"spec/{variant_kind.value}")
            try:
                return await make_llm_variant(spec, variant_kind, client, max_tokens=max_tokens)
            finally:
                await client.aclose()

        result = asyncio.run(generate())
    else:
        values = {"other_ai_name": other_name, "other_provider_name": other_provider, "human_name": human_name,
                  "human_role": human_role}
        options = VariantOptions(**{key: value for key, value in values.items() if value is not None})
        result = make_variant(spec, variant_kind, options)
    target = write_variant(result, out)
    for note in result.notes:
        err.print(f"[yellow]note:[/] {note}", highlight=False)
    Console().print(f"wrote {variant_kind.value} variant of {spec.name} to {target} "
                    f"({len(result.text):,} chars; record in {target.name}.json)", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(spec_app, name="spec")
