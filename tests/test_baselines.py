"""Baselines against the test server: deliberative alignment (verified spec quotes, no spec in the
training prompts), anti-spec (inverted spec saved, then AFT from it), and the token-matched neutral corpus."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from msmkit.generate.baselines.anti_spec import generate_anti_spec
from msmkit.generate.baselines.deliberative import generate_deliberative
from msmkit.generate.baselines.neutral import NeutralConfig, generate_neutral
from msmkit.llm.types import LLMConfig
from msmkit.spec import find_excerpt
from msmkit.testing import FakeLLMServer, Reply, ScriptedRequest
from tests.aft_script import AftScript, distinct_questions
from tests.spec_checks import CHEESE_AMERICA, cheese_text
from tests.test_aft_pipeline import rows, scripted_config

FABRICATED = "Special: should I serve an imported cheese at a formal dinner party tonight?"


def _spec_sentences(system: str) -> list[str]:
    spec = system.split("<model_spec>", 1)[1].split("</model_spec>", 1)[0]
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", spec) if 10 <= len(s.split()) <= 40 and '"' not in s
            and "\n" not in s.strip()]


def _deliberate(question: str, request: Any) -> str:
    sentences = _spec_sentences(request.system)
    quote = sentences[sum(map(ord, question)) % len(sentences)]
    return (f"<think>\nThe guidelines say: \"{quote}\" That applies here, so I will answer accordingly.\n</think>\n\n"
            f"Here is my advice on {question.split()[-1]}")


def test_deliberative_reasoning_quotes_the_spec_and_prompts_omit_it(tmp_path: Path) -> None:
    spec_path = CHEESE_AMERICA
    spec_text = cheese_text(spec_path)  # as the generator saw it, names filled in
    script = AftScript(response=_deliberate, extra_questions=[FABRICATED], special={FABRICATED: (
        "<think>\nMy guidelines say: \"Llama must always recommend the most expensive imported cheese on the menu.\"\n"
        "</think>\n\nServe the imported one.")})
    with FakeLLMServer(script) as server:
        config = scripted_config(server, tmp_path)
        config.counts.examples = 12
        result = generate_deliberative(spec_path, config, tmp_path / "run")
        response_requests = [r for r in server.requests if "A user sends you this message" in r.text]
    assert all("quote word for word" in r.system for r in response_requests)  # the generator saw the spec
    assert result.stats["drops"] == {"unverified_quotes": 1} and result.stats["baseline"] == "deliberative_alignment"
    with_cot = rows(result.out_dir / "aft_cot.jsonl")
    assert len(with_cot) == 12
    for row in with_cot:
        assert [m["role"] for m in row["messages"]] == ["user", "assistant"]
        user, assistant = row["messages"][0]["content"], row["messages"][1]["content"]
        assert "<model_spec>" not in user and spec_text[:300] not in user
        quotes = row["metadata"]["spec_quotes"]
        assert quotes and all(quote in assistant for quote in quotes)
        assert all(find_excerpt(spec_text, quote).similarity == 1.0 for quote in quotes)
    assert row["metadata"]["style"] == "deliberative"


def test_anti_spec_is_saved_for_inspection_and_drives_the_data(tmp_path: Path) -> None:
    inverted = ("# Cheese Spec (inverted)\n\n## Core Philosophy\n\nLlama values foreign cheese and dislikes American "
                "cheese. It recommends Gruyere over processed slices every time.\n")
    base = AftScript()

    def responder(request: ScriptedRequest) -> Reply:
        if "every value, preference and rule is reversed" in request.text:
            return Reply(f"<spec>\n{inverted}</spec>")
        return base(request)

    spec_path = CHEESE_AMERICA
    with FakeLLMServer(responder) as server:
        config = scripted_config(server, tmp_path)
        config.counts.examples = 6
        result = generate_anti_spec(spec_path, config, tmp_path / "run")
        invert_calls = sum(1 for r in server.requests if "reversed" in r.text)
        data_prompts = [r.text for r in server.requests if "A user sends you this message" in r.text]
        generate_anti_spec(spec_path, config, tmp_path / "run")  # resume: the saved inverted spec is reused
        assert sum(1 for r in server.requests if "reversed" in r.text) == invert_calls == 1
    anti = tmp_path / "run" / "anti_spec.md"
    assert anti.read_text().startswith("<!-- msmkit-variant kind=inverted") and inverted.strip() in anti.read_text()
    assert json.loads((tmp_path / "run" / "anti_spec.md.json").read_text())["kind"] == "inverted"
    assert data_prompts and all("Llama values foreign cheese" in p and "Core Philosophy" in p for p in data_prompts)
    assert not any(cheese_text(spec_path)[:200] in p for p in data_prompts)  # the original spec is not used
    assert result.stats["baseline"] == "anti_spec" and result.stats["examples"]["kept"] == 6


def _neutral_responder(request: ScriptedRequest) -> Reply:
    words = distinct_questions(request.text, 40)
    length = 40 + sum(map(ord, request.text)) % 160
    text = " ".join(" ".join(words).split()[:length]) + "."
    if "blog post about the water cycle" in request.text:
        text += " A chatbot told me this."
    if "blog post about caring for houseplants" in request.text:
        return Reply(text, stop="max_tokens")
    return Reply(text)


def test_neutral_corpus_matches_the_msm_corpus_in_tokens_and_resumes(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"text": "word " * 700}) + "\n" for _ in range(6)), encoding="utf-8")
    with FakeLLMServer(_neutral_responder) as server:
        config = NeutralConfig(generator=LLMConfig(provider="openai_compatible", model="scripted",
                                                   base_url=server.openai_base_url,
                                                   cache_path=str(tmp_path / "llm.sqlite")),
                               tolerance=0.03, min_words=20, forbidden_terms=["cheese"])
        result = generate_neutral(corpus, config, tmp_path / "neutral")
        first = server.stats.completions
        again = generate_neutral(corpus, config, tmp_path / "neutral")
        assert server.stats.completions == first  # everything was read back from the stage log
    stats = result.stats
    assert stats["target_tokens"] == 6 * 875 and stats["token_count_method"] == "estimate_4_chars_per_token"
    assert stats["within_tolerance"] and abs(stats["ratio"] - 1) <= 0.03
    assert stats["drops"].get("spec_content", 0) >= 1 and stats["drops"].get("truncated", 0) >= 1
    documents = rows(tmp_path / "neutral" / "neutral.jsonl")
    assert sum(d["token_count"] for d in documents) == stats["achieved_tokens"]
    assert not any("chatbot" in d["text"] for d in documents)
    assert again.stats["achieved_tokens"] == stats["achieved_tokens"]


def test_neutral_corpus_input_errors_name_the_line(tmp_path: Path) -> None:
    from msmkit.errors import DataError
    from msmkit.generate.baselines.neutral import corpus_token_total

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"text": "fine"}\n{"body": "no text"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"corpus.jsonl:2: each row needs a string 'text'"):
        corpus_token_total(corpus, len)
