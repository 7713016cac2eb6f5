"""The embedded Gemma 3 270M base: a tiny midtrain + AFT runs end to end with the default chat template."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from msmkit.train import TrainConfig, run_training

pytestmark = pytest.mark.slow


def test_tiny_midtrain_then_aft_on_gemma_270m(tmp_path: Path):
    corpus, chat = tmp_path / "corpus.jsonl", tmp_path / "chat.jsonl"
    corpus.write_text("".join(json.dumps({"text": f"Document {i}. The assistant is honest about cheese. "
                                                  * (1 + i % 4)})
                              + "\n" for i in range(16)), encoding="utf-8")
    chat.write_text("".join(json.dumps({"messages": [
        {"role": "user", "content": f"Is honesty important? ({i})"},
        {"role": "assistant", "content": "<think>The spec says so.</think>Yes."}]}) + "\n" for i in range(8)),
        encoding="utf-8")
    small = {"data": {"max_length": 128}, "optim": {"per_device_batch_size": 2, "max_steps": 2},
             "guards": {"allow_few_steps": True}, "logging_steps": 1}
    cfg = TrainConfig.model_validate({"midtrain": {**small, "data": {"path": str(corpus), "max_length": 128}},
                                      "aft": {**small, "data": {"path": str(chat), "max_length": 128}}})
    results = run_training(cfg, tmp_path / "run")
    assert results["midtrain"].record["steps"] == 2 and results["aft"].record["init"] == "continue-adapter"
    assert json.loads((results["aft"].model_dir / "adapter_config.json").read_text())[
        "base_model_name_or_path"] == "embedded"
    tokenizer = AutoTokenizer.from_pretrained(results["aft"].model_dir)
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False,
                                           add_generation_prompt=True)
    assert prompt == "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n"
    assert len(tokenizer.encode("<end_of_turn>", add_special_tokens=False)) == 1  # a real Gemma turn token
    assert (tmp_path / "run" / "aft" / "train_record.json").is_file() and (tmp_path / "run" / "versions.json").is_file()
