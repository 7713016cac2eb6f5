"""A corpus run killed (SIGKILL) in the middle of its documents stage resumes without asking again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from msmkit.io import read_jsonl
from msmkit.testing import FakeLLMServer
from tests.corpus_script import CorpusScript
from tests.spec_checks import CHEESE_AMERICA

ROOT = Path(__file__).resolve().parents[1]


def worker(server: FakeLLMServer, cache: Path, spec: Path, out: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "OPENAI_API_KEY": "sk-test-corpus", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "tests.corpus_worker", server.openai_base_url, str(cache),
                             str(spec), str(out)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_a_killed_run_resumes_and_re_requests_nothing_already_answered(tmp_path) -> None:
    spec = CHEESE_AMERICA
    out = tmp_path / "run"
    documents_log = out / "steps" / "documents.jsonl"
    script = CorpusScript()
    with FakeLLMServer(script, latency_s=0.1) as server:
        first = worker(server, tmp_path / "cache-1.sqlite", spec, out)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and first.poll() is None:
            if documents_log.exists() and len(documents_log.read_text().splitlines()) >= 6:
                break
            time.sleep(0.02)
        assert first.poll() is None, f"the worker ended before the kill: {first.communicate()}"
        first.send_signal(signal.SIGKILL)
        first.wait()
        logged = {stage.stem: list(read_jsonl(stage)) for stage in (out / "steps").glob("*.jsonl")}
        documents_before = len(logged["documents"])
        assert 6 <= documents_before < 40, documents_before  # killed mid-stage: 40 documents planned
        before = server.stats.completions

        # A fresh response cache: resuming must come from the stage logs, not from the cache.
        second = worker(server, tmp_path / "cache-2.sqlite", spec, out)
        stdout, stderr = second.communicate(timeout=300)
        assert second.returncode == 0, stderr[-3000:]
        assert "DONE kept=40" in stdout
        by_prompt = server.stats.by_prompt
        for stage, records in logged.items():
            for record in records:
                prompt = script.hash_of_answer[record["text"]]
                assert by_prompt[prompt] == 1, f"{stage} {record['task']} was asked again"
        # The rerun asked only for the documents not yet logged (plus any in flight at the kill).
        rerun_calls = server.stats.completions - before
        assert rerun_calls <= 40 - documents_before + 2
    rows = list(read_jsonl(out / "corpus.jsonl"))
    assert len(rows) == 40 and len({row["id"] for row in rows}) == 40
