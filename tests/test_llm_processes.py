"""Cache sharing across processes, and a SIGKILL in the middle of 500 requests."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from msmkit.testing import FakeLLMServer

WORKER = [sys.executable, "-m", "tests.llm_worker"]
ROOT = Path(__file__).resolve().parents[1]


def worker(server: FakeLLMServer, cache: Path, count: int, concurrency: int) -> subprocess.Popen[str]:
    return subprocess.Popen([*WORKER, server.openai_base_url, str(cache), str(count), str(concurrency)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_cache_hits_across_two_processes(tmp_path: Path) -> None:
    cache = tmp_path / "shared.sqlite"
    with FakeLLMServer(lambda req: f"echo {req.last_user}") as server:
        first = worker(server, cache, 40, 8)
        second = worker(server, cache, 40, 8)  # concurrent writer on the same cache file
        out1, err1 = first.communicate(timeout=120)
        out2, err2 = second.communicate(timeout=120)
        assert "DONE answered=40 failed=0" in out1, err1
        assert "DONE answered=40 failed=0" in out2, err2
        paid = server.stats.completions
        third = worker(server, cache, 40, 8)
        out3, err3 = third.communicate(timeout=120)
        assert "DONE answered=40 failed=0 cached=40" in out3, err3
        assert server.stats.completions == paid  # the third process paid for nothing


def test_sigkill_mid_run_then_rerun_pays_nothing_twice(tmp_path: Path) -> None:
    cache = tmp_path / "cache.sqlite"
    concurrency = 16
    with FakeLLMServer(lambda req: f"echo {req.last_user}", latency_s=0.05) as server:
        victim = worker(server, cache, 500, concurrency)
        deadline = time.monotonic() + 120
        while server.stats.completions < 150 and time.monotonic() < deadline:
            time.sleep(0.02)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        answered_before_kill = server.stats.completions
        assert 150 <= answered_before_kill < 500

        rerun = worker(server, cache, 500, concurrency)
        out, err = rerun.communicate(timeout=300)
        assert "DONE answered=500 failed=0" in out, err
        counts = server.stats.by_prompt
        assert len(counts) == 500  # every request answered
        answered_twice = sum(c - 1 for c in counts.values() if c > 1)
        # Only requests the server had answered but the killed client had not yet stored can repeat.
        assert answered_twice <= concurrency
