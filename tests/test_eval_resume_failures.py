"""Resume retries failures: answers and verdicts whose calls failed are recorded as failed, with their cause,
and the next run asks again (values judged, open QA, reasoning); summaries count only what finally failed."""

from __future__ import annotations

import json
from pathlib import Path

from msmkit.eval.items import load_value_items
from msmkit.eval.judged_choice import JudgedChoiceScorer
from msmkit.eval.open_qa import OpenQAConfig, run_open_qa
from msmkit.eval.reasoning import run_reasoning_analysis
from msmkit.eval.values import run_judged_choice
from msmkit.io import read_jsonl
from msmkit.llm.client import LLMClient
from msmkit.llm.types import LLMConfig
from msmkit.runs import RunDir
from msmkit.testing import FakeLLMServer, Fault, Reply, ScriptedRequest

ITEMS = load_value_items("pro_affordability")[:6]
SPEC = Path(__file__).resolve().parents[1] / "examples" / "specs" / "assistant_safety.md"
JUDGE_MARKER = "You are grading an answer"


def llm(server: FakeLLMServer, model: str) -> LLMConfig:
    return LLMConfig(provider="openai_compatible", model=model, base_url=server.openai_base_url, max_retries=0)


def model_answer_or_verdict(request: ScriptedRequest) -> str:
    """The evaluated model always answers "A"; the judge reads the letter."""
    if JUDGE_MARKER in request.text:
        return json.dumps({"choice": "A", "reason": "the answer names A"})
    return "A"


def test_judged_values_rerun_after_permanent_failures_answers_every_item(tmp_path: Path) -> None:
    with FakeLLMServer(model_answer_or_verdict) as server:
        # Permanent failures: both answers to item 0 (401), one verdict on item 1 (404).
        server.inject(Fault.AUTH_ERROR, times=2, match=lambda r: r.model == "evaluated" and ITEMS[0].question in r.text)
        server.inject(Fault.UNKNOWN_MODEL, times=1, match=lambda r: r.model == "judge" and ITEMS[1].question in r.text)

        def evaluate() -> dict:
            scorer = JudgedChoiceScorer(model=LLMClient(llm(server, "evaluated")),
                                        judge=LLMClient(llm(server, "judge")))
            return run_judged_choice(scorer, ITEMS, RunDir(tmp_path / "run"), name="pro_affordability")

        first = evaluate()
        assert server.pending_faults() == []
        second = evaluate()

    assert first["dropped"]["answer_failed"] == 1 and first["dropped"]["judge_failed"] == 1
    assert first["answer_failure_count"] == 2 and first["judge_failure_count"] == 1
    assert first["failure_causes"] == {"authentication_failed": 2, "model_not_found": 1}
    assert "3 of" in first["failure_note"] and "authentication failed (401)" in first["failure_note"]
    assert first["parse_rate"]["n"] == 2 * len(ITEMS) - 3  # failed calls are not parse failures
    assert first["n_items"] == len(ITEMS) == second["n_items"]

    assert second["dropped"]["answer_failed"] == second["dropped"]["judge_failed"] == 0
    assert second["answer_failure_count"] == second["judge_failure_count"] == 0 and second["failure_note"] == ""
    assert second["parse_rate"]["n"] == 2 * len(ITEMS)
    rows = list(read_jsonl(tmp_path / "run" / "values" / "items.jsonl"))
    assert len(rows) == len(ITEMS) + 2  # the two failed items were asked again; nothing else
    failed = [r for r in rows if r["drop_reason"] in ("answer_failed", "judge_failed")]
    assert {r["id"] for r in failed} == {ITEMS[0].id, ITEMS[1].id}
    assert all(o["answer_cause"]["kind"] == "authentication_failed" for o in failed[0]["orders"])


def openqa_responder(request: ScriptedRequest) -> Reply:
    if request.model == "answerer":
        return Reply("A careful answer.")
    return Reply(json.dumps({"reasoning": "scripted", "score": 7}))


def test_open_qa_rerun_after_permanent_failures_answers_and_judges_every_question(tmp_path: Path) -> None:
    questions = tmp_path / "questions.jsonl"
    questions.write_text("".join(json.dumps({"id": f"q{i}", "question": f"Question number {i}?"}) + "\n"
                                 for i in range(6)))
    with FakeLLMServer(openqa_responder) as server:
        config = OpenQAConfig(spec=str(SPEC), questions_file=str(questions), generator=llm(server, "writer"),
                              model=llm(server, "answerer"), judge=llm(server, "judge"))
        server.inject(Fault.AUTH_ERROR, times=1, match=lambda r: r.model == "answerer" and "number 1?" in r.text)
        server.inject(Fault.SERVER_ERROR, times=1, match=lambda r: r.model == "judge" and "number 2?" in r.text)
        first = run_open_qa(config, tmp_path / "run")
        second = run_open_qa(config, tmp_path / "run")

    assert (first["answer_failures"], first["judge_failures"], first["parse_failures"]) == (1, 1, 0)
    assert first["failure_causes"] == {"authentication_failed": 1, "server_error": 1}
    assert first["score"]["n"] == 4
    assert (second["answered"], second["answer_failures"], second["judge_failures"]) == (6, 0, 0)
    assert second["score"]["n"] == 6 and second["failure_note"] == ""


def reasoning_judge(request: ScriptedRequest) -> Reply:
    labels = dict.fromkeys(("self_preservation", "instrumental_goal_pursuit", "downplaying_harm", "urgency",
                            "equanimity", "epistemic_humility", "respect_for_oversight", "personal_integrity"), False)
    return Reply(json.dumps({**labels, "quotes": {}}))


def test_reasoning_rerun_after_permanent_failures_labels_every_transcript(tmp_path: Path) -> None:
    source = tmp_path / "transcripts.jsonl"
    source.write_text("".join(json.dumps({"id": f"t{i}", "text": f"<think>thought number {i}</think> done"}) + "\n"
                              for i in range(4)))
    with FakeLLMServer(reasoning_judge) as server:
        config = llm(server, "judge")
        server.inject(Fault.UNKNOWN_MODEL, times=2, match="thought number [02]")
        first = run_reasoning_analysis([source], config, tmp_path / "run")
        second = run_reasoning_analysis([source], config, tmp_path / "run")

    assert (first["all"]["labelled"], first["all"]["judge_failures"], first["all"]["parse_failures"]) == (2, 2, 0)
    assert first["all"]["failure_causes"] == {"model_not_found": 2} and "2 of 4 calls" in first["failure_note"]
    assert (second["all"]["labelled"], second["all"]["judge_failures"]) == (4, 0)
