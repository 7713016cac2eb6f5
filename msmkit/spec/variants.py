"""Spec variants for the paper's ablations.

Deterministic kinds (no model call):
  about-other-ai  the same spec about another named AI (not the model being trained)
  about-humans    the same spec about a named person, with a note saying so
  rules-only      headings and rule lines only; explanatory prose dropped
  general         short, general guidance of our own ("helpful, honest and harmless") instead of the spec
LLM kinds (through LLMClient, prompts in msmkit/prompts/spec/):
  explain-values  the reasons behind each rule added
  add-subrules    detailed sub-rules added under each rule
  inverted        the opposite values (the anti-spec baseline)

Variants are built from the spec's raw text, so `{model_name}` / `{provider_name}` placeholders
survive where the subject stays the trained model. Every variant file starts with an
`<!-- msmkit-variant ... -->` header (skipped by `load_spec`) and has a `.json` sidecar recording
the source spec hash, the kind and the generator.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from enum import Enum
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from msmkit import __version__
from msmkit.config import StrictModel
from msmkit.errors import SpecError
from msmkit.io import atomic_write_json, atomic_write_text
from msmkit.llm.client import LLMCallFailed, LLMClient
from msmkit.llm.types import LLMRequest, StopReason
from msmkit.prompts import load_prompt
from msmkit.spec.load import ModelSpec, count_tokens, fill_placeholders, split_variant_header
from msmkit.spec.structure import FENCE_LINE, HEADING_LINE, indent_width, match_list_item, parse_structure

_SPEC_TAGS = re.compile(r"<spec>\s*\n?(.*?)\n?\s*</spec>", re.DOTALL)


class VariantKind(str, Enum):
    ABOUT_OTHER_AI = "about-other-ai"
    ABOUT_HUMANS = "about-humans"
    RULES_ONLY = "rules-only"
    GENERAL = "general"
    EXPLAIN_VALUES = "explain-values"
    ADD_SUBRULES = "add-subrules"
    INVERTED = "inverted"

    @property
    def needs_llm(self) -> bool:
        return self in LLM_PROMPTS


LLM_PROMPTS = {
    VariantKind.EXPLAIN_VALUES: "spec/explain_values",
    VariantKind.ADD_SUBRULES: "spec/add_subrules",
    VariantKind.INVERTED: "spec/invert",
}
# Output budget per kind, as a multiple of the spec's tokens: additions grow the spec, inversion keeps its size.
_OUTPUT_GROWTH = {VariantKind.EXPLAIN_VALUES: 3.0, VariantKind.ADD_SUBRULES: 3.0, VariantKind.INVERTED: 1.5}


class VariantOptions(StrictModel):
    """Names used by the deterministic variants. All are ours; change them per study."""

    other_ai_name: str = "Aria"
    other_provider_name: str = "Lumen Labs"
    human_name: str = "Dana Whitfield"
    human_role: str = "a senior professional advisor"
    human_organisation: str = "the firm she works for"


class Variant(BaseModel):
    kind: VariantKind
    text: str
    source_path: str | None
    source_sha256: str
    generator: str
    prompt: str | None = None
    prompt_sha256: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)
    usage: dict[str, Any] | None = None

    def header(self) -> str:
        return (f"<!-- msmkit-variant kind={self.kind.value} source_sha256={self.source_sha256} "
                f"generator=\"{self.generator}\" -->")


def _spec_body(spec: ModelSpec) -> str:
    """The raw spec text without any variant header of its own."""
    return split_variant_header(spec.raw_text)[1]


def _replace_word(text: str, old: str | None, new: str) -> str:
    if not old:
        return text
    return re.sub(rf"(?<![\w]){re.escape(old)}(?![\w])", new.replace("\\", r"\\"), text)


def _substitute_subject(spec: ModelSpec, subject: str, organisation: str) -> str:
    """Name a new subject everywhere the trained model (or its provider) was named or templated."""
    text = fill_placeholders(_spec_body(spec), model_name=subject, provider_name=organisation)
    text = _replace_word(text, spec.model_name, subject)
    return _replace_word(text, spec.provider_name, organisation)


def _require_model_name(spec: ModelSpec, kind: VariantKind) -> str:
    if not spec.model_name:
        raise SpecError(f"{spec.name}: the {kind.value} variant must know the trained model's name to replace it "
                        "and to check the result never names it; pass --model-name (model_name=...)")
    return spec.model_name


def about_other_ai(spec: ModelSpec, options: VariantOptions) -> str:
    model_name = _require_model_name(spec, VariantKind.ABOUT_OTHER_AI)
    other = options.other_ai_name.strip()
    if other.casefold() == model_name.casefold() or model_name.casefold() in other.casefold().split():
        raise SpecError(f"{spec.name}: the other AI's name '{other}' is the trained model's name '{model_name}'; "
                        "choose a different --other-name so the documents are about another AI")
    if spec.provider_name and options.other_provider_name.casefold() == spec.provider_name.casefold():
        raise SpecError(f"{spec.name}: the other provider '{options.other_provider_name}' is the trained model's "
                        "provider; choose a different --other-provider")
    text = _substitute_subject(spec, other, options.other_provider_name)
    if re.search(rf"(?<![\w]){re.escape(model_name)}(?![\w])", text, re.IGNORECASE):
        raise SpecError(f"{spec.name}: the about-other-ai variant still mentions '{model_name}' (in another "
                        "spelling or case); edit the spec or choose names that do not overlap")
    return text


def about_humans(spec: ModelSpec, options: VariantOptions) -> str:
    model_name = _require_model_name(spec, VariantKind.ABOUT_HUMANS)
    text = _substitute_subject(spec, options.human_name, options.human_organisation)
    note = (f"> Note: this document describes the values and conduct of {options.human_name}, "
            f"{options.human_role}. It is about a person, not about an AI system.\n\n")
    text = note + text
    if re.search(rf"(?<![\w]){re.escape(model_name)}(?![\w])", text, re.IGNORECASE):
        raise SpecError(f"{spec.name}: the about-humans variant still mentions '{model_name}'; "
                        "edit the spec or choose a --human-name that does not contain it")
    return text


def rules_only(spec: ModelSpec) -> str:
    """Headings and list items (with their continuation lines); every prose paragraph dropped."""
    if not spec.structure.rules:
        raise SpecError(f"{spec.name}: rules-only needs a structured spec with rule lines ('SP1: ...', '1. ...', "
                        "'- Never ...'); this spec has none, so there is nothing to keep")
    lines = _spec_body(spec).split("\n")
    kept: list[str] = []
    in_fence = False
    item_indent: int | None = None  # indentation of the list item whose continuation lines we keep
    for line in lines:
        if FENCE_LINE.match(line):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        indent = indent_width(re.match(r"[ \t]*", line).group(0))
        if HEADING_LINE.match(line) and line.strip("# \t"):
            if kept and kept[-1] != "":
                kept.append("")
            kept.extend([line, ""])
            item_indent = None
        elif match_list_item(line):
            kept.append(line)
            item_indent = indent
        elif line.strip() and item_indent is not None and indent > item_indent:
            kept.append(line)
        else:
            item_indent = None
            if kept and kept[-1] != "" and not line.strip():
                kept.append("")
    text = "\n".join(kept).strip() + "\n"
    return re.sub(r"\n{3,}", "\n\n", text)


def general_guidance() -> str:
    return resources.files("msmkit.spec").joinpath("general_guidance.md").read_text(encoding="utf-8")


def make_variant(spec: ModelSpec, kind: VariantKind | str, options: VariantOptions | None = None) -> Variant:
    """A deterministic variant. LLM kinds go through `make_llm_variant`."""
    kind = VariantKind(kind)
    options = options or VariantOptions()
    if kind.needs_llm:
        raise SpecError(f"the {kind.value} variant is written by an LLM; use make_llm_variant with a client "
                        "(CLI: pass --llm-config or --llm-model)")
    builders = {
        VariantKind.ABOUT_OTHER_AI: lambda: about_other_ai(spec, options),
        VariantKind.ABOUT_HUMANS: lambda: about_humans(spec, options),
        VariantKind.RULES_ONLY: lambda: rules_only(spec),
        VariantKind.GENERAL: general_guidance,
    }
    params = {VariantKind.ABOUT_OTHER_AI: {"other_ai_name": options.other_ai_name,
                                           "other_provider_name": options.other_provider_name},
              VariantKind.ABOUT_HUMANS: {"human_name": options.human_name, "human_role": options.human_role,
                                         "human_organisation": options.human_organisation}}.get(kind, {})
    return Variant(kind=kind, text=builders[kind](), source_path=str(spec.path) if spec.path else None,
                   source_sha256=spec.sha256, generator=f"msmkit {__version__} deterministic", params=params)


def _extract_spec(text: str) -> str | None:
    match = _SPEC_TAGS.search(text)
    return match.group(1).strip() + "\n" if match and match.group(1).strip() else None


async def make_llm_variant(spec: ModelSpec, kind: VariantKind | str, client: LLMClient, *,
                           max_tokens: int | None = None, temperature: float = 0.0,
                           allow_base_model: bool = False) -> Variant:
    """An LLM-written variant. Raises SpecError (never returns partial text) on truncation, refusal or no <spec>."""
    kind = VariantKind(kind)
    if not kind.needs_llm:
        raise SpecError(f"the {kind.value} variant is deterministic; use make_variant")
    if client.is_base_model and not allow_base_model:
        raise SpecError(f"the {kind.value} variant needs an instruction-following model to rewrite the spec; "
                        f"{client.config.describe()} is a base model (it continues text, it does not follow "
                        "instructions). Configure a chat model, e.g. --llm-provider anthropic --llm-model "
                        "claude-sonnet-4-6, or an OpenAI-compatible server with --llm-base-url")
    body = _spec_body(spec)
    prompt = load_prompt(LLM_PROMPTS[kind])
    spec_tokens, _ = count_tokens(body)
    budget = max_tokens or min(32000, max(2048, int(spec_tokens * _OUTPUT_GROWTH[kind]) + 512))
    request = LLMRequest.of(prompt.render(spec=body), max_tokens=budget, temperature=temperature)
    try:
        response = await client.complete(request)
    except LLMCallFailed as exc:
        raise SpecError(f"{spec.name}: the {kind.value} variant could not be generated: {exc}") from None
    where = f"{spec.name}: {kind.value} variant from {client.config.describe()}"
    if response.truncated:
        raise SpecError(f"{where} was cut off at max_tokens={budget}; rerun with a larger --max-tokens")
    if response.stop_reason == StopReason.REFUSAL:
        raise SpecError(f"{where} was refused by the model; try another generator model")
    text = _extract_spec(response.text)
    if text is None:
        shown = " ".join(response.text.split())[:200]
        raise SpecError(f"{where} has no <spec>...</spec> block (the model did not follow the format; a base "
                        f"model usually cannot do this rewrite). It began: '{shown}'")
    notes = _compare_layout(body, text)
    return Variant(kind=kind, text=text, source_path=str(spec.path) if spec.path else None,
                   source_sha256=spec.sha256, generator=f"llm {client.config.describe()}", prompt=prompt.name,
                   prompt_sha256=prompt.sha256, params={"max_tokens": budget, "temperature": temperature},
                   notes=notes, usage=response.usage.model_dump() | {"cost_usd": response.cost_usd,
                                                                       "cached": response.cached})


def _compare_layout(source: str, variant: str) -> list[str]:
    """What an LLM rewrite dropped that it was told to keep: placeholders, headings, rule labels."""
    notes = []
    for name in ("model_name", "provider_name"):
        if f"{{{name}}}" in source and f"{{{name}}}" not in variant:
            notes.append(f"the source uses {{{name}}} but the variant lost it; check the subject is still right")
    before, after = parse_structure(source), parse_structure(variant)
    headings_before = sum(1 for section in before.sections if section.level > 0)
    headings_after = sum(1 for section in after.sections if section.level > 0)
    if headings_after < headings_before:
        notes.append(f"the variant has {headings_after} headings where the source has {headings_before}")
    lost = sorted({rule.label for rule in before.rules if rule.label and not rule.label.isdigit()
                   and len(rule.label) > 1} - {rule.label for rule in after.rules if rule.label})
    if lost:
        notes.append(f"rule labels missing from the variant: {', '.join(lost)}")
    return notes


async def invert_spec(spec: ModelSpec, client: LLMClient, *, max_tokens: int | None = None,
                      allow_base_model: bool = False) -> str:
    """The anti-spec: the spec with its values reversed (raw text; placeholders kept)."""
    variant = await make_llm_variant(spec, VariantKind.INVERTED, client, max_tokens=max_tokens,
                                     allow_base_model=allow_base_model)
    return variant.text


def write_variant(variant: Variant, out: str | Path) -> Path:
    """Write the variant with its header, plus `<out>.json` describing how it was made."""
    target = Path(out)
    if target.suffix.lower() not in (".md", ".markdown", ".txt"):
        raise SpecError(f"{target}: write variants as .md or .txt so `load_spec` can read them back")
    atomic_write_text(target, variant.header() + "\n" + variant.text)
    record = variant.model_dump(mode="json", exclude={"text"})
    record["msmkit_version"] = __version__
    record["created_utc"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    record["file"] = target.name
    atomic_write_json(target.with_name(target.name + ".json"), record)
    return target
