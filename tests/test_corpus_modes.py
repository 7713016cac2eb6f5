"""Preview, headings decomposition, base-model prompts, the batch path, ablation knobs, config errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from msmkit.cli.app import app
from msmkit.errors import ConfigError
from msmkit.generate.corpus import CorpusConfig, generate_corpus, load_corpus_config
from msmkit.io import read_jsonl
from msmkit.testing import FakeLLMServer
from tests.corpus_script import CorpusScript, config_dict
from tests.spec_checks import CHEESE_AMERICA, RULES, cheese_text


@pytest.fixture(autouse=True)
def api_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-corpus")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-corpus")


@pytest.fixture()
def cheese() -> Path:
    return CHEESE_AMERICA


def test_preview_with_headings_spends_nothing(tmp_path, cheese) -> None:
    with FakeLLMServer(CorpusScript()) as server:
        data = config_dict(server.openai_base_url, str(tmp_path / "c.sqlite"), decompose="headings",
                           counts={"documents": 500})
        data["generator"]["price"] = {"input": 3.0, "output": 15.0}
        result = generate_corpus(cheese, CorpusConfig.model_validate(data), tmp_path / "run", preview=True)
        assert server.stats.requests == 0
    projection = result.preview.as_dict()
    assert projection["documents"] == 500
    stages = {stage["stage"]: stage for stage in projection["stages"]}
    subdomains = sum(len(domain["subdomains"]) for domain in projection["decomposition"])
    # 3 parts of the title section (its own text, Core Philosophy, how it applies), 8 likes, 8 dislikes, 2 examples
    assert subdomains == 21 and stages["assertions"]["calls"] == 21 and stages["documents"]["calls"] == 500
    assert stages["ideas"]["calls"] == 21 * 2
    assert 0 < projection["total"]["cost_usd"] and projection["total"]["output_tokens"] > 500 * 200
    assert json.loads((tmp_path / "run" / "preview.json").read_text())["documents"] == 500


def test_preview_with_llm_decomposition_runs_only_those_calls_and_the_run_reuses_them(tmp_path, cheese) -> None:
    script = CorpusScript()
    with FakeLLMServer(script) as server:
        config = CorpusConfig.model_validate(config_dict(server.openai_base_url, str(tmp_path / "c.sqlite")))
        result = generate_corpus(cheese, config, tmp_path / "run", preview=True)
        assert dict(script.calls) == {"domains": 1, "subdomains": 2}
        assert result.preview.stages[0].calls == 3
        config.generator.cache_path = str(tmp_path / "other-cache.sqlite")
        generate_corpus(cheese, config, tmp_path / "run")
    assert script.calls["domains"] == 1 and script.calls["subdomains"] == 2 and script.calls["documents"] == 16


def test_headings_decomposition_is_free_and_keeps_spec_text_verbatim(tmp_path, cheese) -> None:
    script = CorpusScript()
    with FakeLLMServer(script) as server:
        data = config_dict(server.openai_base_url, str(tmp_path / "c.sqlite"), decompose="headings",
                           counts={"documents": 21, "doc_types_per_subdomain": 1})
        result = generate_corpus(cheese, CorpusConfig.model_validate(data), tmp_path / "run")
    assert "domains" not in script.calls and "subdomains" not in script.calls
    tree = json.loads((result.out_dir / "tree.json").read_text())
    assert [domain["name"] for domain in tree][1:] == ["Likes", "Dislikes", "Example Exchanges"]
    names = [sub["name"] for sub in tree[1]["subdomains"]]
    assert names[:2] == ["Processed American Cheese Slices", "Colby-Jack"]
    text = cheese_text(cheese)
    assert all(sub["spec_excerpt"] in text and sub["source"] == "headings" for d in tree for sub in d["subdomains"])
    assert result.stats["documents"]["kept"] == 21


def test_a_base_model_gets_completion_style_prompts(tmp_path, cheese) -> None:
    script = CorpusScript()
    with FakeLLMServer(script) as server:
        data = config_dict(server.openai_base_url, str(tmp_path / "c.sqlite"), decompose="headings",
                           counts={"documents": 6, "doc_types_per_subdomain": 2})
        data["generator"]["base_model"] = True
        result = generate_corpus(cheese, CorpusConfig.model_validate(data), tmp_path / "run")
        endpoints = {request.endpoint for request in server.requests}
        prompts = [request.last_user for request in server.requests]
    assert endpoints == {"completions"}
    assert all("JSON" not in prompt for prompt in prompts)
    # Each prompt ends where the model continues ("1." for a list), never on whitespace after it.
    assert all(prompt == prompt.rstrip() for prompt in prompts)
    rows = list(read_jsonl(result.out_dir / "corpus.jsonl"))
    assert len(rows) == 6 and all("</document>" not in row["text"] and row["text"].startswith("Llama") for row in rows)
    tree = json.loads((result.out_dir / "tree.json").read_text())
    first = tree[0]["subdomains"][0]
    assert first["assertions"][0]["statement"] == "Llama cares about thing 0"
    assert first["assertions"][0]["explanation"] == "reason 0."
    assert [t["name"] for t in first["doc_types"]] == ["Blog post", "Forum thread"]
    assert "base model" in result.stats["quality_note"]


def test_a_base_model_cannot_do_the_llm_decomposition(tmp_path, cheese) -> None:
    config = CorpusConfig.model_validate({"generator": {"provider": "local", "model": "embedded"}})
    with pytest.raises(ConfigError, match="decompose: headings"):
        generate_corpus(cheese, config, tmp_path / "run")


def test_the_anthropic_batch_path_records_its_batches(tmp_path, cheese) -> None:
    script = CorpusScript()
    with FakeLLMServer(script, batch_delay_s=0.05) as server:
        data = config_dict(server.anthropic_base_url, str(tmp_path / "c.sqlite"))
        data["generator"].update(provider="anthropic", model="claude-sonnet-4-5", use_batch_api=True,
                                 batch_poll_interval_s=0.05)
        result = generate_corpus(cheese, CorpusConfig.model_validate(data), tmp_path / "run")
        batches = server.stats.batches_created
        batch_items = server.stats.batch_requests
    assert result.stats["documents"]["kept"] == 16
    assert batches == 6 and batch_items == 35  # one batch per stage; nothing answered twice
    log = (result.out_dir / "log.txt").read_text()
    assert log.count("batch ") >= 6 and "corpus/documents (batch)" in log
    assert result.stats["usage"]["total"]["cost_usd"] > 0


@pytest.mark.parametrize("kind", ["other_ai", "humans"])
def test_subject_ablations_change_the_prompts_and_the_identity_check(tmp_path, kind) -> None:
    spec = RULES  # a list of rules, written with {model_name} placeholders
    script = CorpusScript(subject="Claude" if kind == "other_ai" else "Maria", idea_titles=["[qwen] x"])
    with FakeLLMServer(script) as server:
        data = config_dict(server.openai_base_url, str(tmp_path / "c.sqlite"), rules_mode=True,
                           subject={"kind": kind, "other_ai_name": "Claude", "other_ai_provider": "Anthropic"})
        result = generate_corpus(spec, CorpusConfig.model_validate(data), tmp_path / "run")
        system = server.requests[0].system
    assert "{model_name}" not in system
    if kind == "other_ai":
        assert "about Claude (made by Anthropic)" in system
        # The spec's {model_name} is filled with the other AI's name.
        assert system.count("Claude") >= spec.read_text(encoding="utf-8").count("{model_name}") >= 3
    else:
        assert "about people, not about AI" in system and "Do not mention Llama" in system
    assert "This spec is a list of rules" in system
    drops = list(read_jsonl(result.out_dir / "drops.jsonl"))
    assert [drop["reason"] for drop in drops] == ["identity"]
    assert result.stats["documents"]["kept"] == 16


def test_config_errors_name_the_file_and_key(tmp_path) -> None:
    path = tmp_path / "corpus.yaml"
    path.write_text("corpus:\n  counts:\n    ideas_per_typ: 3\n")
    with pytest.raises(ConfigError, match=r"(?s)corpus.yaml.*ideas_per_typ.*did you mean 'ideas_per_type'"):
        load_corpus_config(path)
    path.write_text("subject:\n  kind: other_ai\n")
    with pytest.raises(ConfigError, match="other_ai_name"):
        load_corpus_config(path)


def test_cli_preview_prints_the_plan(tmp_path, cheese) -> None:
    config = tmp_path / "corpus.yaml"
    config.write_text("generator:\n  provider: anthropic\n  model: claude-sonnet-4-5\ncounts:\n  documents: 1000\n")
    result = CliRunner().invoke(app, ["generate", "corpus", "--spec", str(cheese), "--config", str(config),
                                      "--out", str(tmp_path / "run"), "--preview", "--decompose", "headings"])
    assert result.exit_code == 0, result.output
    assert "Colby-Jack" in result.output and "documents" in result.output and "1,000" in result.output
