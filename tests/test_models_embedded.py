"""The embedded Gemma 3 270M: converted once, reused from its safetensors folder, never trusted half-built.

Slow: the first conversion takes about a minute on 2 cores, loading and generating a few seconds.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from msmkit.llm.local import LocalBackend
from msmkit.llm.types import LLMConfig, LLMRequest, StopReason
from msmkit.models import embedded
from msmkit.models.embedded import EMBEDDED_DIR_NAME, embedded_model_dir, is_converted
from msmkit.models.loading import load_causal_lm

pytestmark = pytest.mark.slow

CONVERT = "from msmkit.models.embedded import embedded_model_dir; print(embedded_model_dir())"


def test_embedded_gemma_loads_from_its_cache_and_writes_text(monkeypatch: pytest.MonkeyPatch) -> None:
    folder = embedded_model_dir()  # converts here if no earlier run has
    assert is_converted(folder) and (folder / "model.safetensors").is_file()
    before = (folder / "model.safetensors").stat()

    def refuse(target: Path) -> None:
        raise AssertionError(f"converted {target} again although a finished conversion exists")

    monkeypatch.setattr(embedded, "_convert", refuse)
    model, tokenizer = load_causal_lm("embedded")
    assert model.config.model_type == "gemma3_text" and model.dtype == torch.float32
    assert len(tokenizer) == 262144 and tokenizer.pad_token == "<pad>"
    after = (folder / "model.safetensors").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    del model

    async def generate() -> list:
        backend = LocalBackend(LLMConfig())  # the default: local, "embedded", a base model
        try:
            prompts = ["Monday, Tuesday, Wednesday,", "The capital of France is the city of"]
            return await asyncio.gather(*(backend.complete(LLMRequest.of(p, max_tokens=6, temperature=0))
                                          for p in prompts))
        finally:
            await backend.aclose()

    days, capital = asyncio.run(generate())
    assert days.text.startswith(" Thursday") and "Paris" in capital.text
    assert days.stop_reason == StopReason.MAX_TOKENS and days.usage.output_tokens == 6


def test_killed_conversion_leaves_nothing_trusted_and_concurrent_ones_convert_once(tmp_path: Path) -> None:
    env = {**os.environ, "MSM_CACHE_DIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    models = tmp_path / "models"
    target = models / EMBEDDED_DIR_NAME

    victim = subprocess.Popen([sys.executable, "-c", CONVERT], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(models.glob(f".{EMBEDDED_DIR_NAME}.tmp-*/gguf/*.gguf")):  # mid-conversion
        assert victim.poll() is None and time.monotonic() < deadline, "conversion never started"
        time.sleep(0.2)
    time.sleep(3)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert not is_converted(target)
    assert list(models.glob(f".{EMBEDDED_DIR_NAME}.tmp-*"))  # the killed run's leftovers, never used

    runs = [subprocess.Popen([sys.executable, "-c", CONVERT], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=600) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert {out.strip() for out, _ in outputs} == {str(target)}
    assert sum("Converting the embedded" in err for _, err in outputs) == 1  # the other waited, then reused it
    assert is_converted(target)
    assert not list(models.glob(f".{EMBEDDED_DIR_NAME}.tmp-*"))
