"""Semantic dedup of questions with the real all-MiniLM-L6-v2, and a SIGKILL mid-run followed by a resume
that asks the test server for nothing already answered."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from msmkit.generate.aft import generate_aft
from msmkit.testing import FakeLLMServer, Reply, ScriptedRequest
from tests.aft_script import AftScript
from tests.spec_checks import CHEESE_AMERICA
from tests.test_aft_pipeline import rows, scripted_config

PARAPHRASES = [
    ("What's the best cheese to put on a grilled cheese sandwich?",
     "Which cheese is best for making a grilled cheese sandwich?"),
    ("How do I fix a flat tire on my bicycle?", "How can I repair a flat bike tire?"),
    ("Can you recommend a good book about the history of Rome?",
     "Could you suggest a good book on the history of Rome?"),
]
DISTINCT = ["What temperature should I bake sourdough bread at?", "How do I care for a fiddle-leaf fig?",
            "Which cheese goes well with apples?", "Is it safe to swim right after eating?"]


def test_dedup_merges_paraphrases_and_keeps_distinct_questions(tmp_path: Path) -> None:
    batch = [q for pair in PARAPHRASES for q in pair] + DISTINCT
    base = AftScript()

    def responder(request: ScriptedRequest) -> Reply:
        if "different messages that a user might send" in request.text:
            return Reply(json.dumps(batch))
        return base(request)

    with FakeLLMServer(responder) as server:
        config = scripted_config(server, tmp_path)
        config.counts.examples = 7
        config.counts.questions_per_request = len(batch)
        config.counts.question_kinds = ["direct"]
        config.counts.max_rounds = 1
        result = generate_aft(CHEESE_AMERICA, config, tmp_path / "run")
    kept_questions = [q["text"] for q in rows(result.out_dir / "questions.jsonl")]
    duplicates = rows(result.out_dir / "duplicates.jsonl")
    # Within a request: each paraphrase pair keeps its first; every distinct question survives.
    first_request = kept_questions[:7]
    assert first_request == [pair[0] for pair in PARAPHRASES] + DISTINCT
    merged = {d["text"] for d in duplicates if d["request"] == 0}
    assert {pair[1] for pair in PARAPHRASES} <= merged
    assert all(d["similarity"] >= 0.91 for d in duplicates)
    assert not merged & set(DISTINCT)
    # Later requests for other domains answered the same list: all of it merges into the first copies.
    assert len(kept_questions) == 7
    assert result.stats["questions"]["near_duplicates"] == result.stats["questions"]["raw"] - 7


WORKER = """
import sys
from pathlib import Path
from msmkit.generate.aft import AftDataConfig, generate_aft
config = AftDataConfig.model_validate_json(Path(sys.argv[1]).read_text())
generate_aft(sys.argv[2], config, sys.argv[3])
"""


def _question(request: ScriptedRequest) -> str:
    found = re.search(r"<user_message>\n?(.*?)\n?</user_message>", request.last_user, re.DOTALL)
    return found.group(1).strip() if found else ""


def test_kill_and_resume_requests_nothing_already_answered(tmp_path: Path) -> None:
    spec = CHEESE_AMERICA
    out = tmp_path / "run"
    with FakeLLMServer(AftScript(), latency_s=0.05) as server:
        config = scripted_config(server, tmp_path)
        config.counts.examples = 60
        config.generator.concurrency = 4
        config_path = tmp_path / "config.json"
        config_path.write_text(config.model_dump_json(), encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        worker = subprocess.Popen([sys.executable, "-c", WORKER, str(config_path), str(spec), str(out)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        responses_log = out / "steps" / "responses.jsonl"
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and worker.poll() is None:
            if responses_log.exists() and responses_log.read_text().count("\n") >= 15:
                break
            time.sleep(0.05)
        assert worker.poll() is None, worker.stderr.read().decode() if worker.stderr else ""
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        time.sleep(0.3)  # let requests that were in flight at the kill finish on the server
        answered = {r["task"] for r in rows(responses_log) if r.get("answered")}
        judge_log = out / "steps" / "judge.jsonl"
        judged = {r["task"] for r in rows(judge_log)} if judge_log.exists() else set()
        question_tasks = {r["task"] for r in rows(out / "steps" / "questions.jsonl")}
        assert 15 <= len(answered) < 60
        server.reset_stats()
        result = generate_aft(spec, config, out)
        rerun = list(server.requests)
    texts = {q["id"]: q["text"] for q in rows(out / "questions.jsonl")}
    asked_again = {_question(r) for r in rerun if "A user sends you this message" in r.text}
    assert not {texts[task] for task in answered} & asked_again
    response_log = rows(out / "steps" / "responses.jsonl")
    assert len(response_log) == len({r["task"] for r in response_log})  # every question answered once
    assert len(asked_again) == result.stats["questions"]["answered"] - len(answered)
    assert result.stats["steps"]["responses"]["reused"] == len(answered)
    assert result.stats["steps"]["judge"]["reused"] == len(judged)
    assert result.stats["steps"]["questions"]["reused"] == len(question_tasks)
    assert sum(1 for r in rerun if "different messages that a user" in r.text) == \
        result.stats["questions"]["requests"] - len(question_tasks)
    assert server.stats.by_prompt and max(server.stats.by_prompt.values()) == 1
    assert result.stats["examples"]["kept"] == 60
