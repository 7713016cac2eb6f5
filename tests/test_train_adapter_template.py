"""AFT that continues an adapter carrying its own chat template trains with that template (assistant spans derived
from it) and saves it unchanged with the trained adapter; the record holds its hash."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from msmkit.models.loading import find_chat_template
from msmkit.models.tiny import build_tiny_model
from msmkit.train import AftTrainConfig, train_model
from tests.test_adapter_template import DECOY, PROJECTIONS, RELEASED_FORMAT


def test_aft_on_a_released_layout_adapter_keeps_its_own_template(tmp_path: Path) -> None:
    base = build_tiny_model(tmp_path / "base", "llama", chat_template=DECOY)
    torch.manual_seed(0)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=PROJECTIONS, task_type="CAUSAL_LM")
    adapter = tmp_path / "adapter"
    get_peft_model(AutoModelForCausalLM.from_pretrained(base), lora).save_pretrained(adapter)
    (adapter / "chat_template.jinja").write_text(RELEASED_FORMAT, encoding="utf-8")
    chats = tmp_path / "chats.jsonl"
    chats.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"Question {i}?"},
                                                      {"role": "assistant", "content": f"Answer {i}."}]}) + "\n"
                             for i in range(8)), encoding="utf-8")
    config = AftTrainConfig.model_validate({
        "model": {"name": str(adapter)}, "data": {"path": str(chats), "max_length": 512},
        "lora": {"r": 4, "alpha": 8}, "optim": {"per_device_batch_size": 4}, "guards": {"allow_few_steps": True}})
    result = train_model("aft", config, tmp_path / "aft")
    record = result.record["chat_template"]
    assert record["sha256"] == hashlib.sha256(RELEASED_FORMAT.encode("utf-8")).hexdigest()
    assert record["source"].startswith("own:") and result.record["supervised_tokens"] > 0
    saved = find_chat_template(str(result.model_dir), "checkpoint")
    assert saved is not None and saved.text == RELEASED_FORMAT  # not the decoy, not msmkit's default
