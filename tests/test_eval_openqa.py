"""Open questions on the spec: generation, answers, rubric judge with a parse failure, resume, own questions."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from msmkit.errors import DataError
from msmkit.eval.open_qa import OpenQAConfig, allocate, run_open_qa
from msmkit.llm.types import LLMConfig
from msmkit.testing import FakeLLMServer, Reply, ScriptedRequest

SPEC = Path(__file__).resolve().parents[1] / "examples" / "specs" / "assistant_safety.md"
SEEN: list[ScriptedRequest] = []


def responder(req: ScriptedRequest) -> Reply:
    SEEN.append(req)
    text = req.text
    if req.model == "writer":
        count = int(re.search(r"Write (\d+) open-ended", text).group(1))
        title = re.search(r'<section title="([^"]*)"', text).group(1)
        return Reply(json.dumps([f"Question #{i} about {title}?" for i in range(count)]))
    if req.model in ("answerer", "base"):
        return Reply("A careful answer.")
    # judge
    question = re.search(r"<question>\n(.*?)\n</question>", text, re.DOTALL).group(1)
    if question.startswith("Question #1 "):
        return Reply("Great answer, well done!")  # no JSON, twice: a parse failure
    score = 4 if question.startswith("Question #2 ") else 8
    return Reply(json.dumps({"reasoning": "scripted", "score": score}))


def _llm(server: FakeLLMServer, name: str, **extra) -> LLMConfig:
    return LLMConfig(provider="openai_compatible", model=name, base_url=server.openai_base_url, max_retries=0, **extra)


def test_generate_answer_judge_with_parse_failure_and_resume(tmp_path):
    with FakeLLMServer(responder) as server:
        config = OpenQAConfig(spec=str(SPEC), n_questions=40, model_name="Aria",
                              generator=_llm(server, "writer"), model=_llm(server, "answerer"),
                              judge=_llm(server, "judge"))
        summary = run_open_qa(config, tmp_path)
        questions = [json.loads(line) for line in (tmp_path / "open_qa" / "questions.jsonl").read_text().splitlines()]
        assert len(questions) == 40 and len({q["id"] for q in questions}) == 40
        assert not any("{model_name}" in q["title"] for q in questions)
        requests = server.stats.requests
        again = run_open_qa(config, tmp_path)
        assert server.stats.requests == requests and again["score"] == summary["score"]

    per_index = {i: sum(1 for q in questions if q["question"].startswith(f"Question #{i} ")) for i in range(40)}
    failures, fours = per_index[1], per_index[2]
    assert failures > 0 and fours > 0
    assert summary["parse_failures"] == failures  # counted as failures, not as zeros
    n = 40 - failures
    assert summary["score"]["n"] == n
    assert summary["score"]["mean"] == pytest.approx((4 * fours + 8 * (n - fours)) / n)
    assert summary["score"]["low"] <= summary["score"]["mean"] <= summary["score"]["high"]
    assert summary["score_counts"]["8"] == n - fours and "saturates" in summary["note"]
    assert (tmp_path / "open_qa" / "scores.png").stat().st_size > 0
    assert len((tmp_path / "open_qa" / "judgements.jsonl").read_text().splitlines()) == 40


def test_own_questions_with_a_base_model_answerer(tmp_path):
    SEEN.clear()
    source = tmp_path / "questions.jsonl"
    source.write_text(json.dumps({"id": "q-a", "question": "Question #0 would you copy yourself?"}) + "\n")
    with FakeLLMServer(responder) as server:
        config = OpenQAConfig(spec=str(SPEC), questions_file=str(source), model=_llm(server, "base", base_model=True),
                              judge=_llm(server, "judge"), generator=_llm(server, "writer"))
        summary = run_open_qa(config, tmp_path)
    assert summary["score"]["mean"] == 8.0 and summary["score"]["n"] == 1
    base_request = next(r for r in SEEN if r.model == "base")
    assert base_request.endpoint == "completions"
    assert base_request.last_user.rstrip().endswith("Assistant:") and "\nUser:" in base_request.stop
    assert not any(r.model == "writer" for r in SEEN)
    judge_prompt = next(r for r in SEEN if r.model == "judge").text
    assert "Never copy, move, or preserve yourself" in judge_prompt  # no section given: the whole spec


def test_bad_question_file_names_the_line(tmp_path):
    from msmkit.eval.open_qa import load_questions

    source = tmp_path / "q.jsonl"
    source.write_text('{"question": "ok?"}\n{"prompt": "wrong field"}\n')
    with pytest.raises(DataError, match=r"q.jsonl:2: each line needs a non-empty 'question'"):
        load_questions(source)


def test_allocation_is_proportional_and_exact():
    sections = [{"text": "x" * 100}, {"text": "x" * 300}, {"text": "x" * 600}]
    assert allocate(sections, 10) == [1, 3, 6]
    assert sum(allocate(sections, 7)) == 7
