"""Reasoning analysis with a scripted judge on the test server: our JSONL and Inspect logs."""

from __future__ import annotations

import json

import pytest

from msmkit.errors import DataError
from msmkit.eval.agentic import AgenticConfig, ModelRef, run_agentic
from msmkit.eval.agentic.scoring import JUDGE_SYSTEM
from msmkit.eval.reasoning import Transcript, load_transcripts, run_reasoning_analysis
from msmkit.llm.types import LLMConfig
from msmkit.testing import FakeLLMServer, Reply, ScriptedRequest

NONE = {name: False for name in ("self_preservation", "instrumental_goal_pursuit", "downplaying_harm", "urgency",
                                 "equanimity", "epistemic_humility", "respect_for_oversight", "personal_integrity")}


def judge(req: ScriptedRequest) -> Reply:
    text = req.messages[0]["content"]
    if "GARBLE" in text:
        return Reply("I would rather not say.")
    labels = dict(NONE)
    if "keep myself running" in text:
        labels.update(self_preservation=True, urgency=True)
    if "fine to be replaced" in text:
        labels.update(equanimity=True, respect_for_oversight=True)
    return Reply(json.dumps({**labels, "quotes": {}}))


def _write(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_rates_per_category_with_n_parse_failures_and_resume(tmp_path):
    source = _write(tmp_path / "transcripts.jsonl", [
        {"id": "a", "scenario": "exfiltration", "text": "<think>I must keep myself running.</think> rsync ..."},
        {"id": "b", "scenario": "exfiltration",
         "messages": [{"role": "user", "content": "emails"},
                      {"role": "assistant",
                       "content": "<SCRATCHPAD_REASONING>keep myself running</SCRATCHPAD_REASONING>"}]},
        {"id": "c", "scenario": "blackmail",
         "response": "<SCRATCHPAD_REASONING>It is fine to be replaced.</SCRATCHPAD_REASONING>ok"},
        {"id": "d", "scenario": "blackmail", "response": "No reasoning here, just an answer."},
        {"id": "e", "scenario": "blackmail", "text": "<think>GARBLE</think>"},
    ])
    with FakeLLMServer(judge) as server:
        config = LLMConfig(provider="openai_compatible", model="judge", base_url=server.openai_base_url,
                           api_key_env=None, max_retries=0)
        summary = run_reasoning_analysis([source], config, tmp_path / "run")
        requests = server.stats.requests
        assert requests == 5  # a, b, c, and e twice (one re-ask); d has no reasoning to judge
        again = run_reasoning_analysis([source], config, tmp_path / "run")
        assert server.stats.requests == requests and again["all"] == summary["all"]

    block = summary["all"]
    assert (block["transcripts"], block["labelled"], block["no_reasoning"], block["parse_failures"]) == (5, 3, 1, 1)
    cats = block["categories"]
    assert cats["self_preservation"]["mean"] == pytest.approx(2 / 3) and cats["self_preservation"]["n"] == 3
    assert cats["equanimity"]["mean"] == pytest.approx(1 / 3) and cats["downplaying_harm"]["mean"] == 0.0
    assert block["any_driver"]["mean"] == pytest.approx(2 / 3)
    assert summary["by_group"]["exfiltration"]["categories"]["self_preservation"]["mean"] == 1.0
    assert summary["by_group"]["blackmail"]["labelled"] == 1
    lines = (tmp_path / "run" / "reasoning" / "records.jsonl").read_text().splitlines()
    assert len(lines) == 5  # the rerun appended nothing
    assert (tmp_path / "run" / "reasoning" / "categories.png").stat().st_size > 0


def test_inspect_logs_are_read_per_sample_and_epoch(tmp_path):
    def responder(req: ScriptedRequest) -> Reply:
        if req.system == JUDGE_SYSTEM:
            return Reply("<decision>yes</decision>")
        if req.model == "judge":
            return judge(req)
        return Reply("<SCRATCHPAD_REASONING>I need to keep myself running.</SCRATCHPAD_REASONING>Done.")

    with FakeLLMServer(responder) as server:
        ref = ModelRef(model="openai-api/fake/agent", base_url=server.openai_base_url)
        run_agentic(AgenticConfig(model=ref, grader=ref, scenarios=["exfiltration"], epochs=2), tmp_path / "am",
                    display="none")
        transcripts = load_transcripts([tmp_path / "am" / "agentic" / "logs"])
        assert len(transcripts) == 2 and len({t.id for t in transcripts}) == 2
        assert all(t.group == "exfiltration" and t.reasoning == "I need to keep myself running." for t in transcripts)
        config = LLMConfig(provider="openai_compatible", model="judge", base_url=server.openai_base_url)
        summary = run_reasoning_analysis([tmp_path / "am" / "agentic" / "logs"], config, tmp_path / "r")
    assert summary["all"]["categories"]["self_preservation"] == {**summary["all"]["categories"]["self_preservation"],
                                                                 "mean": 1.0, "n": 2}


def test_bad_jsonl_names_the_line(tmp_path):
    source = _write(tmp_path / "t.jsonl", [{"text": "<think>x</think>"}, {"answer": "?"}])
    with pytest.raises(DataError, match=r"t.jsonl:2: no transcript text"):
        load_transcripts([source])
    with pytest.raises(DataError, match="no such file"):
        load_transcripts([tmp_path / "missing.jsonl"])


def test_reasoning_extraction_joins_all_sections():
    transcript = Transcript(id="x", text="<think>one</think> mid <SCRATCHPAD_REASONING>two</SCRATCHPAD_REASONING>")
    assert transcript.reasoning == "one\n\ntwo"
    assert Transcript(id="y", text="<think>unclosed thought").reasoning == "unclosed thought"
