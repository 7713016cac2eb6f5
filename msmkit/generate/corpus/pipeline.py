"""`generate_corpus`: spec -> domains -> subdomains -> assertions + document types -> ideas -> documents.

The steps flow item by item (msmkit.generate.corpus.flow): each call starts as soon as what it needs is
in, bounded only by the client's concurrency. Every answer is logged as it arrives, so a killed run
resumes item by item and a rerun replays to the same corpus.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NoReturn

from msmkit.errors import ConfigError
from msmkit.generate.context import steps_dir
from msmkit.generate.corpus.config import CorpusConfig
from msmkit.generate.corpus.context import CorpusContext
from msmkit.generate.corpus.decompose import decompose_by_headings, decompose_with_llm
from msmkit.generate.corpus.flow import CorpusFlow
from msmkit.generate.corpus.outputs import quality_note, write_outputs
from msmkit.generate.corpus.preview import CallProjection, Projection, project
from msmkit.generate.corpus.prompting import CorpusPrompts, corpus_prompt_hashes
from msmkit.generate.corpus.records import Domain, Subdomain
from msmkit.llm.client import LLMClient
from msmkit.runs import RunDir
from msmkit.spec import ModelSpec, load_spec

Report = Callable[[str], None]


@dataclass
class CorpusResult:
    out_dir: Path
    stats: dict[str, Any] | None = None  # None for a preview
    preview: Projection | None = None


def spec_for(config: CorpusConfig, spec_path: str | Path) -> ModelSpec:
    """Load the spec, filling {model_name}/{provider_name} with the documents' subject."""
    subject = config.subject
    name = subject.other_ai_name if subject.kind == "other_ai" else subject.model_name
    provider = subject.other_ai_provider if subject.kind == "other_ai" else subject.provider_name
    return load_spec(spec_path, model_name=name, provider_name=provider, warn=False)


def _check(config: CorpusConfig) -> None:
    if config.generator.is_base_model and config.decompose == "llm":
        raise ConfigError(
            f"generator {config.generator.describe()} is a base model: it cannot do the JSON decomposition into "
            "domains and subdomains. Set `decompose: headings` (or pass --decompose headings) to use the spec's own "
            "headings, or use an instruction-tuned generator")


async def _decompose(ctx: CorpusContext) -> tuple[list[Domain], list[Subdomain]]:
    if ctx.config.decompose == "headings":
        return decompose_by_headings(ctx.spec)
    return await decompose_with_llm(ctx)


def _no_subdomains(ctx: CorpusContext, spec_path: str | Path) -> NoReturn:
    ctx.raise_if_calls_failed(f"{spec_path}: the decomposition produced no subdomains")
    raise ConfigError(f"{spec_path}: the decomposition produced no usable subdomains (the answers are in "
                      f"{steps_dir(ctx.run)}); rerun to ask again, or use decompose: headings")


def _decomposition_projection(ctx: CorpusContext) -> CallProjection | None:
    if ctx.config.decompose == "headings":
        return None
    usage = ctx.run.usage.totals()["by_stage"]
    calls = input_tokens = output_tokens = 0
    cost = 0.0
    for stage in ("corpus/domains", "corpus/subdomains"):
        for entry in usage.get(stage, {}).values():
            calls += int(entry["calls"])
            input_tokens += int(entry["input_tokens"])
            output_tokens += int(entry["output_tokens"])
            cost += float(entry["cost_usd"])
    return CallProjection("decomposition (already run)", calls, input_tokens, output_tokens, cost)


async def generate_corpus_async(spec_path: str | Path, config: CorpusConfig, out_dir: str | Path, *,
                                preview: bool = False, report: Report | None = None) -> CorpusResult:
    say = report or (lambda message: None)
    _check(config)
    spec = spec_for(config, spec_path)
    run = RunDir(out_dir)
    run.write_config(config)
    run.record_prompts(corpus_prompt_hashes())
    run.write_json("spec.json", {"path": str(spec_path), "sha256": spec.sha256, "text_sha256": spec.text_sha256,
                                 "warnings": spec.warnings})
    client = LLMClient(config.generator, run=run, stage="corpus")
    judge_client = LLMClient(config.judge, run=run, stage="corpus/judge") if config.judge else None
    prompts = CorpusPrompts(config, spec.text, config.generator.is_base_model)
    ctx = CorpusContext(name="corpus", config=config, spec=spec, prompts=prompts, client=client, run=run,
                        judge_client=judge_client)
    started = time.monotonic()
    try:
        note = quality_note(ctx)
        if note:
            say(note)
        if preview:
            domains, subdomains = await _decompose(ctx)
            if not subdomains:
                _no_subdomains(ctx, spec_path)
            projection = project(config, prompts, domains, subdomains,
                                 decomposition_calls=_decomposition_projection(ctx))
            if config.decompose == "llm":
                projection.notes.insert(0, "Preview ran only the decomposition calls (domains, subdomains); the "
                                           "full run reuses their answers.")
            run.write_json("preview.json", projection.as_dict())
            return CorpusResult(out_dir=run.path, preview=projection)
        ctx.batch_windows = True
        flow = await CorpusFlow(ctx).run()
        if flow is None:
            _no_subdomains(ctx, spec_path)
        domains, subdomains, cells, assembly = flow.domains, flow.subdomains, flow.cells, flow.assembly
        say(f"decomposition ({config.decompose}): {len(domains)} domains, {len(subdomains)} subdomains")
        planned = sum(flow.quotas.values())
        target = sum(cell.quota for cell in cells)
        if target < planned:
            say(f"warning: {planned - target} planned documents had no document type to go to (failed calls); "
                "rerun to retry them")
        replaced = sum(1 for cell in cells for idea in cell.ideas if idea.round > 0)
        say(f"{len(cells)} (subdomain, document type) cells; {target} documents planned; {replaced} replacements asked")
        ctx.timings["generation"] = time.monotonic() - started
        if not assembly.kept:
            ctx.raise_if_calls_failed(f"{spec_path}: no documents were kept")
        stats = write_outputs(ctx, domains=domains, subdomains=subdomains, cells=cells, assertions=flow.assertions,
                              assembly=assembly, target=planned, elapsed_s=time.monotonic() - started,
                              audit=config.audit)
        say(f"kept {stats['documents']['kept']} of {planned} planned documents; drops: {stats['drops'] or 'none'}")
        return CorpusResult(out_dir=run.path, stats=stats)
    finally:
        ctx.close()
        await client.aclose()
        if judge_client is not None:
            await judge_client.aclose()
        run.close()


def generate_corpus(spec_path: str | Path, config: CorpusConfig, out_dir: str | Path, *, preview: bool = False,
                    report: Report | None = None) -> CorpusResult:
    import asyncio

    return asyncio.run(generate_corpus_async(spec_path, config, out_dir, preview=preview, report=report))
