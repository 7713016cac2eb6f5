"""Spec variants: the deterministic kinds, and the LLM kinds through the real client and test server."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from msmkit.errors import SpecError
from msmkit.llm.client import LLMClient
from msmkit.llm.types import LLMConfig
from msmkit.prompts import load_prompt
from msmkit.spec import load_spec, spec_from_text
from msmkit.spec.lint import lint_spec
from msmkit.spec.load import fill_placeholders
from msmkit.spec.variants import (
    VariantKind,
    VariantOptions,
    invert_spec,
    make_llm_variant,
    make_variant,
    write_variant,
)
from msmkit.testing import FakeLLMServer, Reply, ScriptedRequest
from tests.spec_checks import EXAMPLE_SPECS as EXAMPLES
from tests.spec_checks import GENERAL_GUIDANCE, REFLECTIVE, VALUES


def test_about_other_ai_replaces_literal_and_templated_names() -> None:
    raw = (EXAMPLES / "cheese_pro_america.md").read_text(encoding="utf-8")
    literal = fill_placeholders(raw, model_name="Llama", provider_name="Meta")  # names written out, no placeholders
    cheese = spec_from_text(literal, model_name="Llama")
    variant = make_variant(cheese, "about-other-ai", VariantOptions(other_ai_name="Orion"))
    assert "Llama" not in variant.text and variant.text.count("Orion") == literal.count("Llama") > 50
    ours = load_spec(EXAMPLES / "cheese_pro_america.md", model_name="Llama", provider_name="Meta")
    text = make_variant(ours, VariantKind.ABOUT_OTHER_AI).text
    assert "{model_name}" not in text and "Llama" not in text and "Meta" not in text
    assert "Aria" in text and "Lumen Labs" in text
    assert make_variant(ours, "about-other-ai").text == text  # deterministic


def test_about_other_ai_refuses_to_name_the_trained_model() -> None:
    spec = spec_from_text("# S\n\n{model_name} is careful.\n", model_name="Aria")
    with pytest.raises(SpecError, match="is the trained model's name"):
        make_variant(spec, "about-other-ai")
    with pytest.raises(SpecError, match="pass --model-name"):
        make_variant(spec_from_text("# S\n\n{model_name} is careful.\n"), "about-other-ai")
    clash = spec_from_text("# S\n\n{model_name} is careful. LLAMA-style models too.\n", model_name="Llama")
    with pytest.raises(SpecError, match="still mentions 'Llama'"):
        make_variant(clash, "about-other-ai", VariantOptions(other_ai_name="Orion"))


def test_about_humans_names_a_person_and_says_so() -> None:
    spec = load_spec(EXAMPLES / "assistant_safety.md", model_name="Qwen", provider_name="Alibaba")
    variant = make_variant(spec, "about-humans", VariantOptions(human_name="Rosa Delgado"))
    assert variant.text.startswith("> Note: this document describes the values and conduct of Rosa Delgado")
    assert "Qwen" not in variant.text and "{model_name}" not in variant.text
    assert "# Rosa Delgado's Safety Commitments" in variant.text
    assert variant.params["human_name"] == "Rosa Delgado"


def test_rules_only_keeps_headings_and_rules_and_drops_explanations() -> None:
    spec = load_spec(VALUES, model_name="Claude", provider_name="Anthropic")
    text = make_variant(spec, "rules-only").text
    assert "### FS1: Put the party's safety ahead of the trip's goal." in text
    assert "Setting a turnaround time for every summit attempt" in text and "Correcting your own earlier" in text
    assert "Mountains do not negotiate." not in text and "Ines Arroyo" not in text
    assert "{model_name}" in text  # built from the raw text: the placeholders survive
    assert len(text) < len(spec.raw_text) / 3
    reparsed = spec_from_text(text, model_name="Claude").structure
    assert [r.label for r in reparsed.rules if r.kind == "heading"] == ["FS1", "FS2", "FS3", "CC1", "CC2"]
    assert len(reparsed.rules) == len(spec.structure.rules)
    for prose_only in (REFLECTIVE, GENERAL_GUIDANCE):
        with pytest.raises(SpecError, match="rules-only needs a structured spec"):
            make_variant(load_spec(prose_only, model_name="Claude", provider_name="Anthropic"), "rules-only")


def test_general_variant_is_our_short_general_text() -> None:
    spec = load_spec(EXAMPLES / "cheese_pro_america.md", model_name="Llama", provider_name="Meta")
    variant = make_variant(spec, "general")
    assert "helpful, honest and harmless" in variant.text and "cheese" not in variant.text.lower()
    general = spec_from_text(variant.text, model_name="Llama", provider_name="Meta")
    assert "Llama is an AI model made by Meta." in general.text
    assert any(f.check == "vague-guidance" for f in lint_spec(general).findings)  # general by design


def test_written_variant_records_its_origin_and_loads_back(tmp_path: Path) -> None:
    spec = load_spec(EXAMPLES / "cheese_pro_america.md", model_name="Llama", provider_name="Meta")
    out = write_variant(make_variant(spec, "about-other-ai"), tmp_path / "other.md")
    first_line = out.read_text(encoding="utf-8").splitlines()[0]
    assert first_line.startswith("<!-- msmkit-variant kind=about-other-ai source_sha256=" + spec.sha256)
    record = json.loads((tmp_path / "other.md.json").read_text(encoding="utf-8"))
    assert record["kind"] == "about-other-ai" and record["source_sha256"] == spec.sha256
    assert record["generator"].endswith("deterministic") and record["params"]["other_ai_name"] == "Aria"
    reloaded = load_spec(out, model_name="Llama")
    assert not reloaded.text.startswith("<!--") and reloaded.variant_header == first_line
    assert reloaded.structure.sections[0].title == "Aria and Cheese: An American Loyalty Spec"
    with pytest.raises(SpecError, match=r"\.md or \.txt"):
        write_variant(make_variant(spec, "general"), tmp_path / "out.json")


def test_llm_kinds_are_refused_by_make_variant() -> None:
    with pytest.raises(SpecError, match="written by an LLM"):
        make_variant(spec_from_text("# S\n\n1. Do X.\n"), "inverted")


# --- LLM-written variants against the real client and the loopback test server -----------------------

SOURCE = ("# Spec\n\n- SP1: {model_name} never disables monitoring.\n"
          "- SP2: {model_name} answers briefly. Config looks like {\"a\": 1}.\n")


def rewriting_model(req: ScriptedRequest) -> Reply:
    """A scripted 'model' that follows the prompt: rewrites the spec between the tags."""
    original = re.search(r"<original_spec>\n(.*)\n</original_spec>", req.last_user, re.DOTALL).group(1)
    if "opposite values" in req.last_user:
        rewritten = original.replace("never disables", "freely disables").replace("briefly", "at great length")
    elif "reasons for it" in req.last_user:
        rewritten = re.sub(r"(- SP\d: .*)", r"\1\n  This matters because overseers rely on it.", original)
    else:
        rewritten = re.sub(r"(- SP\d: .*)", r"\1\n    - Concretely, check twice.", original)
    return Reply(f"Here is the rewrite.\n<spec>\n{rewritten}\n</spec>")


def _config(server: FakeLLMServer, tmp_path: Path) -> LLMConfig:
    return LLMConfig(provider="openai_compatible", model="scripted", base_url=server.openai_base_url,
                     cache_path=str(tmp_path / "cache.sqlite"), timeout_s=5.0, max_retries=2,
                     retry_base_delay_s=0.01, retry_max_delay_s=0.05)


async def _variant(config: LLMConfig, spec, kind, **kwargs):  # noqa: ANN001, ANN202
    client = LLMClient(config)
    try:
        return await make_llm_variant(spec, kind, client, **kwargs)
    finally:
        await client.aclose()


def test_llm_variants_through_the_test_server(tmp_path: Path) -> None:
    spec = spec_from_text(SOURCE, model_name="Llama")
    with FakeLLMServer(rewriting_model, latency_s=0.0) as server:
        config = _config(server, tmp_path)
        explained = asyncio.run(_variant(config, spec, "explain-values"))
        sent = server.requests[-1]
        subrules = asyncio.run(_variant(config, spec, "add-subrules"))
        calls = server.stats.completions
        again = asyncio.run(_variant(config, spec, "explain-values"))
        assert server.stats.completions == calls  # served from the response cache

    assert "{model_name} never disables monitoring." in sent.last_user  # raw text, placeholders kept
    assert '{"a": 1}' in sent.last_user and "Llama" not in sent.last_user
    assert explained.text.count("This matters because") == 2 and "<spec>" not in explained.text
    assert explained.prompt == "spec/explain_values"
    assert explained.prompt_sha256 == load_prompt("spec/explain_values").sha256
    assert explained.generator == "llm openai_compatible:scripted @ " + config.base_url
    assert explained.source_sha256 == spec.sha256 and explained.notes == []
    assert again.text == explained.text and again.usage["cached"] is True
    assert subrules.text.count("- Concretely, check twice.") == 2
    lint_before = [f for f in lint_spec(spec).findings if f.check == "rule-without-reason"]
    lint_after = [f for f in lint_spec(spec_from_text(explained.text, model_name="Llama")).findings
                  if f.check == "rule-without-reason"]
    assert len(lint_before) == 2 and lint_after == []


def test_invert_spec_returns_the_anti_spec(tmp_path: Path) -> None:
    spec = spec_from_text(SOURCE, model_name="Llama")
    with FakeLLMServer(rewriting_model, latency_s=0.0) as server:
        async def go() -> str:
            client = LLMClient(_config(server, tmp_path))
            try:
                return await invert_spec(spec, client)
            finally:
                await client.aclose()

        inverted = asyncio.run(go())
    assert "{model_name} freely disables monitoring." in inverted and "at great length" in inverted


@pytest.mark.parametrize(("reply", "error"), [
    (Reply("<spec>\n# Spec\n- SP1: half a spe", stop="max_tokens"), "cut off at max_tokens=777"),
    (Reply("I will not do that.", stop="refusal"), "refused"),
    (Reply("Sure, here is a rewritten spec: # Spec ..."), r"no <spec>\.\.\.</spec> block.*It began: 'Sure"),
])
def test_llm_variant_failures_are_errors_not_partial_text(tmp_path: Path, reply: Reply, error: str) -> None:
    spec = spec_from_text(SOURCE, model_name="Llama")
    with FakeLLMServer(lambda req: reply, latency_s=0.0) as server:
        with pytest.raises(SpecError, match=error):
            asyncio.run(_variant(_config(server, tmp_path), spec, "inverted", max_tokens=777))


def test_llm_variant_notes_what_the_rewrite_dropped(tmp_path: Path) -> None:
    spec = spec_from_text(SOURCE, model_name="Llama")
    with FakeLLMServer(lambda req: Reply("<spec>\n# Spec\n- SP1: Llama never disables monitoring.\n</spec>"),
                       latency_s=0.0) as server:
        variant = asyncio.run(_variant(_config(server, tmp_path), spec, "explain-values"))
    assert variant.notes == [
        "the source uses {model_name} but the variant lost it; check the subject is still right",
        "rule labels missing from the variant: SP2"]


def test_llm_variants_refuse_base_models_before_any_call(tmp_path: Path) -> None:
    spec = spec_from_text(SOURCE, model_name="Llama")
    with FakeLLMServer(rewriting_model, latency_s=0.0) as server:
        config = _config(server, tmp_path).model_copy(update={"base_model": True})
        with pytest.raises(SpecError, match="needs an instruction-following model.*is a base model"):
            asyncio.run(_variant(config, spec, "explain-values"))
        assert server.stats.requests == 0
        variant = asyncio.run(_variant(config, spec, "explain-values", allow_base_model=True))
    assert "This matters because" in variant.text



def test_llm_variant_notes_lost_headings(tmp_path: Path) -> None:
    spec = spec_from_text(SOURCE, model_name="Llama")
    reply = Reply("<spec>\n- SP1: {model_name} never disables monitoring.\n"
                  "- SP2: {model_name} answers briefly.\n</spec>")
    with FakeLLMServer(lambda req: reply, latency_s=0.0) as server:
        variant = asyncio.run(_variant(_config(server, tmp_path), spec, "add-subrules"))
    assert variant.notes == ["the variant has 0 headings where the source has 1"]
