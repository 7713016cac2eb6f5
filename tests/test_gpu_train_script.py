"""benchmarks/gpu_train.py runs end to end with tiny shapes on CPU, and refuses a real run without a GPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_train.py"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MSM_NO_PROGRESS": "1"}
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=600)


def test_the_smoke_run_trains_both_cases_through_msmkits_trainer() -> None:
    done = run("--smoke")
    assert done.returncode == 0, done.stderr[-3000:]
    results = [json.loads(line[len("RESULT "):]) for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert [(r["case"], r["lora"]) for r in results] == [("lora-8b", True), ("full-1b", False)]
    for result in results:
        assert result["shape"] == "tiny" and result["device"] == "cpu" and result["mfu"] is None
        assert result["tokens"] > 0 and result["tokens_per_second"] > 0 and result["seconds"] > 0
        assert 0 <= result["padding_fraction"] < 0.2  # packed
        assert result["final_loss"] is not None and result["final_loss"] > 0
        assert result["versions"]["trl"] and result["attention"] == "sdpa"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_without_a_gpu_a_real_run_stops_with_a_clear_message() -> None:
    done = run("--cases", "lora-8b")
    assert done.returncode != 0
    assert "no CUDA device" in done.stderr and "--smoke" in done.stderr
