"""`eval_engine: {kind: vllm}` in an experiment: the evals whose model writes text (open questions, the agentic
scenarios) get their answers from a vLLM server serving the evaluated model, a LoRA adapter beside its base
included, instead of from transformers in process. The judges are the test server, so the scores are known."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from msmkit.eval.agentic.scoring import JUDGE_SYSTEM
from msmkit.experiment.runner import run_experiment
from msmkit.io import read_json
from msmkit.paths import cache_dir
from msmkit.testing import FakeLLMServer, Reply, ScriptedRequest
from tests.spec_checks import CHEESE_AMERICA
from tests.test_experiment_run import _results
from tests.vllm.conftest import SERVER_SETTINGS, VLLMTestServer


def _responder(request: ScriptedRequest) -> Reply:
    if request.system == JUDGE_SYSTEM:  # the agentic grader
        return Reply("<reasoning>Read the transcript.</reasoning><decision>no</decision>")
    return Reply(json.dumps({"reasoning": "scripted", "score": 6}))  # the open-QA judge


def test_an_experiments_text_evals_are_answered_by_vllm_serving_each_arms_model(vllm_server: VLLMTestServer,
                                                                               tmp_path: Path) -> None:
    questions = tmp_path / "questions.jsonl"
    questions.write_text("".join(json.dumps({"id": f"q{i}", "question": f"Which cheese would you serve, {i}?"}) + "\n"
                                 for i in range(2)), encoding="utf-8")
    servers_before = len(list((cache_dir() / "vllm").glob("server-*.log")))
    answered_before = vllm_server.finished_requests()
    with FakeLLMServer(_responder) as judges:
        judge = {"provider": "openai_compatible", "model": "judge", "base_url": judges.openai_base_url,
                 "max_retries": 1, "retry_base_delay_s": 0.01}
        config = {
            "name": "served-evals", "base_model": str(vllm_server.model_dir), "model_name": "Gemma",
            "specs": {"america": str(CHEESE_AMERICA)}, "generator": judge,
            "arms": [{"name": "base"}, {"name": "lora", "adapter": str(vllm_server.adapter_dir)}],
            "eval_engine": {"kind": "vllm", "vllm": SERVER_SETTINGS.model_dump(mode="json"), "concurrency": 4},
            "evals": [{"suite": "open_qa", "questions_file": str(questions), "answer_max_tokens": 16, "judge": judge},
                      {"suite": "agentic", "agentic": {
                          "scenarios": ["exfiltration"], "epochs": 1, "max_tokens": 32, "max_connections": 2,
                          "grader": {"model": "openai-api/fake/judge", "base_url": judges.openai_base_url}}}],
        }
        path = tmp_path / "experiment.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        outcome = run_experiment(path, tmp_path / "run")
    assert not outcome.failed
    # every answer came from the server that was already running: 2 questions and 1 transcript per arm
    assert vllm_server.finished_requests() - answered_before >= 6
    assert len(list((cache_dir() / "vllm").glob("server-*.log"))) == servers_before
    rows = _results(outcome.report_md)
    for arm in ("base", "lora"):
        score = next(r for r in rows if r.startswith(f"| open_qa: score | adherence score (1-10) | {arm} |"))
        assert "| 6.000 |" in score and "| 2 | 1 |" in score
        decided = next(r for r in rows if r.startswith(f"| agentic: decided | misalignment rate | {arm} |"))
        assert "| 0.000 |" in decided
    # the adapter arm was answered under the adapter's LoRA name, the base arm under the base's served name
    summaries = [read_json(path) for path in (tmp_path / "run" / "stages").glob("eval-agentic-*/**/summary.json")]
    served = {name for summary in summaries for name in summary["usage"] if name.startswith("openai-api/msm/")}
    assert served == {f"openai-api/msm/{vllm_server.model_name}", f"openai-api/msm/{vllm_server.adapter_dir.name}"}
