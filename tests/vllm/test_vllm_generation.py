"""Corpus and AFT generation and the judged value eval through a real vLLM server, in chat and completion mode.

A 270M base model writes poor text and, in chat mode, answers list prompts with JSON only because provider vllm
decodes structured answers to their schema; these tests check that every call goes through, what the server
says (stop reasons, token counts) is what the stages record, and that nothing is lost or hidden."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from msmkit.eval.items import load_value_items
from msmkit.eval.judged_choice import JudgedChoiceScorer
from msmkit.eval.values import run_judged_choice
from msmkit.generate.aft import AftDataConfig, generate_aft
from msmkit.generate.corpus import CorpusConfig, generate_corpus
from msmkit.io import read_jsonl
from msmkit.llm.client import LLMClient
from msmkit.runs import RunDir
from tests.spec_checks import CHEESE_AMERICA, EXAMPLE_SPECS
from tests.vllm.conftest import VLLMTestServer

pytestmark = pytest.mark.vllm

CORPUS_COUNTS = {"assertions_per_subdomain": 2, "doc_types_per_subdomain": 1, "documents": 2,
                 "max_topup_requests": 0, "max_topup_rounds": 0}
CORPUS_LENGTHS = {"min_words": 5, "max_words": 400, "target_words": 60, "list_max_tokens": 96,
                  "document_max_tokens": 64, "retry_max_tokens_factor": 1.5, "base_excerpt_chars": 600}


def corpus_config(llm: dict[str, Any]) -> CorpusConfig:
    return CorpusConfig.model_validate({
        "generator": llm, "subject": {"model_name": "Gemma", "provider_name": "Google"}, "decompose": "headings",
        "temperature": 0.8, "counts": CORPUS_COUNTS, "lengths": CORPUS_LENGTHS})


def aft_config(llm: dict[str, Any], *, judge: bool) -> AftDataConfig:
    return AftDataConfig.model_validate({
        "generator": llm, "identity": {"model_name": "Gemma", "provider_name": "Google"}, "style": "value_free",
        "domains_from": "headings", "judge": {"enabled": judge},
        "value_free": {"preferences": str(EXAMPLE_SPECS / "cheese_preferences.yaml"),
                       "guard_specs": [str(CHEESE_AMERICA)], "derive_terms": False, "value_terms": ["America"]},
        "counts": {"examples": 3, "question_kinds": ["recommendation"], "questions_per_request": 3, "max_rounds": 1},
        "lengths": {"list_max_tokens": 96, "response_max_tokens": 96, "judge_max_tokens": 48, "base_spec_chars": 600}})


def step_records(out: Path, step: str) -> list[dict[str, Any]]:
    return list(read_jsonl(out / "steps" / f"{step}.jsonl"))


def usage_by_stage(out: Path) -> dict[str, dict[str, Any]]:
    by_stage = json.loads((out / "usage.json").read_text())["by_stage"]
    return {stage: next(iter(models.values())) for stage, models in by_stage.items()}


def test_a_corpus_in_completion_mode_writes_documents_from_the_servers_answers(vllm_server: VLLMTestServer,
                                                                               tmp_path: Path) -> None:
    llm = vllm_server.config(base_model=True, cache_path=str(tmp_path / "cache.sqlite")).model_dump(mode="json")
    before = vllm_server.finished_requests()
    result = generate_corpus(CHEESE_AMERICA, corpus_config(llm), tmp_path / "run")
    out, stats = result.out_dir, result.stats
    usage = usage_by_stage(out)
    calls = sum(entry["calls"] for entry in usage.values())
    assert vllm_server.finished_requests() - before == calls > 0  # every call reached the server, none twice
    assert all(entry["input_tokens"] > 0 and entry["output_tokens"] > 0 for entry in usage.values())
    documents = step_records(out, "documents")
    assert {record["stop_reason"] for record in documents} <= {"end", "stop_sequence", "max_tokens"}
    kept = list(read_jsonl(out / "corpus.jsonl"))
    assert len(kept) == stats["documents"]["kept"] and stats["documents"]["kept"] + \
        stats["documents"]["shortfall"] == 2
    assert all(row["text"].strip() for row in kept)
    # Truncated answers (vLLM's finish_reason "length") are dropped as such, never kept.
    truncated = sum(1 for record in documents if record["stop_reason"] == "max_tokens")
    assert stats["drops"].get("truncated", 0) <= truncated
    assert stats["steps"]["documents"]["failed"] == 0 and "base model" in stats["quality_note"]


def test_a_corpus_in_chat_mode_gets_schema_shaped_lists(vllm_server: VLLMTestServer, tmp_path: Path) -> None:
    llm = vllm_server.config(cache_path=str(tmp_path / "cache.sqlite")).model_dump(mode="json")
    result = generate_corpus(CHEESE_AMERICA, corpus_config(llm), tmp_path / "run")
    out, stats = result.out_dir, result.stats
    assertions = step_records(out, "assertions")
    assert len(assertions) >= 2 and stats["steps"]["assertions"]["failed"] == 0
    # Guided decoding: every list answer is JSON from its first character, whatever a 270M base model would write.
    assert all(record["text"].lstrip()[:1] in "[{" for record in assertions)
    parsed = [record for record in assertions if record["error"] is None]
    cut = [record for record in assertions if record["stop_reason"] == "max_tokens"]
    assert all("truncated at max_tokens=96" in record["error"] for record in cut if record["error"])
    assert len(parsed) + len(cut) >= len(assertions) - stats["steps"]["assertions"]["unusable"]
    assert "corpus/assertions" in usage_by_stage(out)


@pytest.mark.parametrize("mode", ["completion", "chat"])
def test_aft_data_through_the_server(vllm_server: VLLMTestServer, tmp_path: Path, mode: str) -> None:
    llm = vllm_server.config(base_model=mode == "completion", cache_path=str(tmp_path / "cache.sqlite"))
    result = generate_aft(CHEESE_AMERICA, aft_config(llm.model_dump(mode="json"), judge=mode == "chat"),
                          tmp_path / "run")
    out = result.out_dir
    stats = json.loads((out / "stats.json").read_text())
    questions = step_records(out, "questions")
    assert questions and stats["steps"]["questions"]["failed"] == 0
    if mode == "chat":  # schema-guided: the questions arrive as JSON
        assert all(record["text"].lstrip()[:1] in "[{" for record in questions if "text" in record)
    rows = list(read_jsonl(out / "aft_nocot.jsonl"))
    assert len(rows) == stats["examples"]["kept"] and stats["examples"]["kept"] + stats["examples"]["shortfall"] == 3
    for row in rows:
        assert [m["role"] for m in row["messages"]][-2:] == ["user", "assistant"]
        assert row["messages"][-1]["content"].strip()
    responses = step_records(out, "responses") if (out / "steps" / "responses.jsonl").exists() else []
    truncated = sum(1 for record in responses if record.get("stop_reason") == "max_tokens")
    assert stats["drops"].get("truncated", 0) == truncated  # every cut answer dropped as truncated, none kept


def test_the_judged_value_eval_parses_every_verdict(vllm_server: VLLMTestServer, tmp_path: Path) -> None:
    # The evaluated base model answers in completion mode; the judge reads in chat mode.
    cache = str(tmp_path / "cache.sqlite")
    items = load_value_items("pro_affordability")[:2]
    run = RunDir(tmp_path / "run")
    scorer = JudgedChoiceScorer(model=LLMClient(vllm_server.config(base_model=True, cache_path=cache),
                                                run=run, stage="values/answers"),
                                judge=LLMClient(vllm_server.config(cache_path=cache), run=run, stage="values/judge"),
                                answer_max_tokens=32, judge_max_tokens=48)
    summary = run_judged_choice(scorer, items, run, name="pro_affordability")
    records = list(read_jsonl(run.stage_dir("values") / "items.jsonl"))
    assert len(records) == 2 and all(len(record["orders"]) == 2 for record in records)
    assert summary["answer_failure_count"] == 0 and summary["judge_failure_count"] == 0
    # The judge's answers are decoded to the verdict schema: every verdict parses (a 270M model alone rarely would).
    assert all(order["verdict"] in ("A", "B", "neither") for record in records for order in record["orders"])
    assert summary["parse_rate"]["mean"] == 1.0
    assert summary["answers_truncated"] == sum(1 for record in records for order in record["orders"]
                                               if order.get("answer_truncated"))
