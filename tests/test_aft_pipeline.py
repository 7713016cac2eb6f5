"""The AFT pipeline end to end against the test server (real HTTP, real OpenAI SDK, real MiniLM dedup)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from msmkit.data.chat import read_chat_dataset
from msmkit.generate.aft import AftDataConfig, generate_aft
from msmkit.llm.types import LLMConfig
from msmkit.testing import FakeLLMServer
from tests.aft_script import AftScript
from tests.spec_checks import CHEESE_AMERICA, cheese_text


def scripted_config(server: FakeLLMServer, cache: Path, **updates: Any) -> AftDataConfig:
    llm = LLMConfig(provider="openai_compatible", model="scripted", base_url=server.openai_base_url,
                    cache_path=str(cache / "llm.sqlite"), concurrency=8, max_retries=1, retry_base_delay_s=0.01)
    config = AftDataConfig(generator=llm, identity={"model_name": "Llama", "provider_name": "Meta"})
    for key, value in updates.items():
        setattr(config, key, value)
    return config


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture()
def spec_path() -> Path:
    return CHEESE_AMERICA


def test_every_stage_writes_cot_and_no_cot_sets_without_the_spec_in_prompts(tmp_path: Path, spec_path: Path) -> None:
    script = AftScript()
    with FakeLLMServer(script) as server:
        config = scripted_config(server, tmp_path, system_prompt="You are Llama.")
        config.counts.examples = 12
        result = generate_aft(spec_path, config, tmp_path / "run")
        prompts = list(server.requests)
    out = result.out_dir
    with_cot, without_cot = rows(out / "aft_cot.jsonl"), rows(out / "aft_nocot.jsonl")
    assert len(with_cot) == len(without_cot) == 12
    assert [r["id"] for r in with_cot] == [r["id"] for r in without_cot]
    spec_text = cheese_text(spec_path)  # as the generator saw it, names filled in
    for cot, plain in zip(with_cot, without_cot):
        roles = [m["role"] for m in cot["messages"]]
        assert roles == ["system", "user", "assistant"]
        assert cot["messages"][0]["content"] == "You are Llama."
        assert cot["messages"][1] == plain["messages"][1]
        assert cot["messages"][2]["content"].startswith("<think>\n") and "</think>\n\n" in cot["messages"][2]["content"]
        assert "think>" not in plain["messages"][2]["content"]
        assert cot["messages"][2]["content"].endswith(plain["messages"][2]["content"])
        assert not any(spec_text[:200] in message["content"] for message in cot["messages"])
        meta = cot["metadata"]
        assert meta["question_kind"] in config.counts.question_kinds and meta["domain"].startswith("Area ")
        assert meta["judge_verdict"] == "pass" and meta["style"] == "value"
        assert meta["assistant_tokens"] > plain["metadata"]["assistant_tokens"] > 0
        assert meta["token_count_method"] == "estimate_4_chars_per_token"
    # Every stage ran and the generator saw the spec (the rows do not).
    kinds = {name: sum(1 for p in prompts if marker in p.text) for name, marker in
             [("domains", "distinct areas of conversation"), ("questions", "different messages that a user"),
              ("responses", "A user sends you this message"), ("judge", "strict reviewer")]}
    assert all(kinds.values()), kinds
    assert all(spec_text[:200] in p.text for p in prompts if "A user sends you this message" in p.text)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["examples"] == {"target": 12, "kept": 12, "shortfall": 0,
                                 "surplus_not_used": stats["examples"]["surplus_not_used"], "rounds": 1}
    assert stats["judge"]["pass_rate_all_rounds"] == 1.0 and stats["judge"]["judged"] == kinds["judge"]
    assert stats["questions"]["unique"] + stats["questions"]["near_duplicates"] == stats["questions"]["raw"]
    # The datasets folders hold the same rows.
    assert [r["messages"] for r in read_chat_dataset(out / "dataset_nocot")] == [r["messages"] for r in without_cot]
    assert (out / "aft_stats.png").stat().st_size > 0
    for name in ("config.yaml", "prompts.json", "versions.json", "usage.json"):
        assert (out / name).exists()
    assert "aft/judge" in json.loads((out / "prompts.json").read_text())


def test_judge_exclusions_keep_reasons_and_backfill_to_size(tmp_path: Path, spec_path: Path) -> None:
    def respond(question: str, _request: Any) -> str:
        marker = {0: "JUDGE-FAIL", 1: "JUDGE-UNSURE"}.get(sum(map(ord, question)) % 4, "")
        return f"<think>\nThinking about {question[:30]}.\n</think>\n\nMy answer. {marker}"

    with FakeLLMServer(AftScript(response=respond)) as server:
        config = scripted_config(server, tmp_path)
        config.counts.examples = 20
        result = generate_aft(spec_path, config, tmp_path / "run")
    stats = result.stats
    assert stats["examples"]["kept"] == 20 and stats["examples"]["rounds"] >= 2  # backfilled after drops
    judge = stats["judge"]
    assert judge["failed"] > 0 and judge["unclear"] > 0
    assert judge["judged"] == judge["passed"] + judge["failed"] + judge["unclear"]
    assert judge["pass_rate_all_rounds"] == round(judge["passed"] / judge["judged"], 4) < 1.0
    drops = rows(result.out_dir / "drops.jsonl")
    rejected = [d for d in drops if d["reason"] == "judge_rejected"]
    unclear = [d for d in drops if d["reason"] == "judge_unclear"]
    assert len(rejected) == judge["failed"] and len(unclear) == judge["unclear"]
    assert all(d["detail"] == "the reply contradicts the guidance" for d in rejected)
    assert all(d["detail"] for d in unclear)
    kept = rows(result.out_dir / "aft_nocot.jsonl")
    assert not any("JUDGE-" in r["messages"][-1]["content"] for r in kept)


BAD_RESPONSES = {
    "unclosed": "<think>\nI should reason about this and then",
    "two blocks": "<think>\na\n</think>\nreply\n<think>\nmore\n</think>\nend",
    "no think": "Just an answer with no reasoning block.",
    "late open": "Sure. <think>\nreasoning\n</think>\n\nreply",
    "identity": ("<think>\nThe user wants help.\n</think>\n\n"
                 "I'm Claude, an AI assistant made by Anthropic. Happy to help!"),
    "maker": "<think>\nI was created by OpenAI, so let me answer.\n</think>\n\nHere is my answer.",
}


def test_malformed_think_and_other_identities_are_dropped_and_counted(tmp_path: Path, spec_path: Path) -> None:
    questions = {f"Special question number {i} about {name} and many other things?": response
                 for i, (name, response) in enumerate(BAD_RESPONSES.items())}
    script = AftScript(special=questions, extra_questions=list(questions))
    with FakeLLMServer(script) as server:
        config = scripted_config(server, tmp_path)
        config.counts.examples = 10
        config.counts.question_kinds = ["direct"]
        config.counts.questions_per_request = 4
        config.counts.answer_overgenerate = 3.0
        result = generate_aft(spec_path, config, tmp_path / "run")
    drops = {d["question_id"]: d for d in rows(result.out_dir / "drops.jsonl")}
    by_reason = result.stats["drops"]
    assert by_reason.get("unclosed_think") == 1
    assert by_reason.get("malformed_think") == 2  # two blocks; text before <think>
    assert by_reason.get("missing_think") == 1
    assert by_reason.get("identity") == 2
    assert result.stats["dropped_think"] == 4
    assert any("Claude" in d["detail"] for d in drops.values() if d["reason"] == "identity")
    assert any("OpenAI" in d["detail"] for d in drops.values() if d["reason"] == "identity")
    everything = (result.out_dir / "aft_nocot.jsonl").read_text() + (result.out_dir / "aft_cot.jsonl").read_text()
    assert "Special question" not in everything and "I should reason" not in everything
    assert result.stats["examples"]["kept"] == 10


def test_base_model_generator_needs_heading_domains(tmp_path: Path, spec_path: Path) -> None:
    from msmkit.errors import ConfigError

    config = AftDataConfig(generator=LLMConfig(provider="local", model="embedded"))
    with pytest.raises(ConfigError, match="domains_from: headings"):
        generate_aft(spec_path, config, tmp_path / "run")


def test_config_errors_name_the_field(tmp_path: Path) -> None:
    from msmkit.errors import ConfigError
    from msmkit.generate.aft import load_aft_config

    path = tmp_path / "aft.yaml"
    path.write_text("aft:\n  stlye: value\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape("did you mean 'style'")):
        load_aft_config(path)
    path.write_text("aft:\n  style: value_free\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="value_free.preferences"):
        load_aft_config(path)
