"""Training stages end to end on a tiny model: midtraining learns its corpus, AFT continues the adapter
with the saved template, resume equals an uninterrupted run, 2 CPU processes match one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

from msmkit.errors import MsmError
from msmkit.models.loading import load_causal_lm
from msmkit.models.tiny import tiny_model_dir
from msmkit.train import AftTrainConfig, MidtrainConfig, TooFewStepsError, train_model
from msmkit.train.templates import default_chat_template

SENTENCES = ["The model tells the truth even when it costs it something.",
             "Cheese is a fine food, and the assistant says so when asked.",
             "When unsure, the assistant says it is unsure and explains why.",
             "Honesty and care for the user come before pleasing them."]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return tiny_model_dir(tmp_path_factory.getbasetemp() / "tiny-models", "llama")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "corpus.jsonl"
    docs = [" ".join(SENTENCES[(i + k) % 4] for k in range(1 + i % 5)) for i in range(48)]
    path.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def chats(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "chat.jsonl"
    rows = [{"messages": [{"role": "system", "content": "Follow the spec."},
                          {"role": "user", "content": f"Question {i}: is honesty important?"},
                          {"role": "assistant", "content": f"<think>The spec says so.</think>Yes, {i} times yes."}]}
            for i in range(24)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def stage_config(cls, model: Path | str, data: Path, **extra):
    base = {"model": {"name": str(model)}, "data": {"path": str(data), "max_length": 64},
            "lora": {"r": 8, "alpha": 16}, "optim": {"learning_rate": 2e-2, "per_device_batch_size": 4},
            "guards": {"allow_few_steps": True}, "logging_steps": 1}
    for key, value in extra.items():
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    return cls.model_validate(base)


def corpus_loss(model, tokenizer, corpus: Path) -> float:
    losses = []
    for line in corpus.read_text(encoding="utf-8").splitlines():
        ids = tokenizer(json.loads(line)["text"])["input_ids"] + [tokenizer.eos_token_id]
        tensor = torch.tensor([ids])
        with torch.no_grad():
            logits = model(input_ids=tensor).logits[0, :-1]
        losses.append(F.cross_entropy(logits, tensor[0, 1:]).item())
    return sum(losses) / len(losses)


@pytest.fixture(scope="module")
def midtrained(tiny, corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("midtrain")
    return train_model("midtrain", stage_config(MidtrainConfig, tiny, corpus), out)


def test_midtraining_lowers_loss_and_adapter_loads_with_peft(tiny, corpus, midtrained):
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    base = AutoModelForCausalLM.from_pretrained(tiny).eval()
    before = corpus_loss(base, tokenizer, corpus)
    tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny), midtrained.model_dir).eval()
    after = corpus_loss(tuned, tokenizer, corpus)
    assert after < before - 0.3, (before, after)
    record = midtrained.record
    texts = [json.loads(line)["text"] for line in corpus.read_text(encoding="utf-8").splitlines()]
    assert record["tokens"] == sum(len(tokenizer(t)["input_ids"]) + 1 for t in texts)
    assert record["supervised_tokens"] == record["tokens"] and record["rows"] == 48
    assert record["steps"] == record["planned_steps"] > 0 and record["epochs"] == pytest.approx(1.0)
    assert 0 <= record["padding_fraction"] < 0.05 and record["init"] == "fresh-lora"
    adapter_config = json.loads((midtrained.model_dir / "adapter_config.json").read_text())
    assert adapter_config["r"] == 8 and set(adapter_config["target_modules"]) == {
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert json.loads((midtrained.output_dir / "train_record.json").read_text())["complete"]


def test_aft_continues_the_midtraining_adapter_with_the_saved_template(midtrained, chats, tmp_path):
    cfg = stage_config(AftTrainConfig, midtrained.model_dir, chats, checkpoints={"save_merged": True})
    result = train_model("aft", cfg, tmp_path / "aft")
    merged = tmp_path / "aft" / "merged"  # plain weights for vLLM / Inspect's hf provider
    AutoModelForCausalLM.from_pretrained(merged)
    assert AutoTokenizer.from_pretrained(merged).chat_template == default_chat_template()
    record = result.record
    assert record["init"] == "continue-adapter"
    assert 0 < record["supervised_tokens"] < record["tokens"] and record["dropped_rows"] == {}
    tokenizer = AutoTokenizer.from_pretrained(result.model_dir)
    assert tokenizer.chat_template == default_chat_template()  # saved with the checkpoint for evaluation
    assert record["chat_template"]["source"] == "msmkit-default"
    generation = json.loads((result.model_dir / "generation_config.json").read_text())
    assert tokenizer.convert_tokens_to_ids("<end_of_turn>") in generation["eos_token_id"]
    before = load_file(midtrained.model_dir / "adapter_model.safetensors")
    after = load_file(result.model_dir / "adapter_model.safetensors")
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the same adapter, trained further
    assert record["losses"][-1] < record["losses"][0]
    again = train_model("aft", cfg, tmp_path / "aft")  # unchanged inputs: not trained twice
    assert again.skipped and again.record["fingerprint"] == record["fingerprint"]


def test_aft_fresh_adapter_on_the_merged_midtraining_model(midtrained, chats, tmp_path):
    cfg = stage_config(AftTrainConfig, midtrained.model_dir, chats, init="fresh", optim={"max_steps": 1})
    result = train_model("aft", cfg, tmp_path / "fresh")
    assert result.record["init"] == "merged-then-fresh-lora"
    config = json.loads((result.model_dir / "adapter_config.json").read_text())
    assert Path(config["base_model_name_or_path"]) == (tmp_path / "fresh" / "base").resolve()
    model, _ = load_causal_lm(str(result.model_dir), device="cpu")  # base found through the adapter config
    assert isinstance(model, PeftModel)


def test_full_fine_tuning_saves_full_weights(tiny, corpus, tmp_path):
    cfg = stage_config(MidtrainConfig, tiny, corpus, lora={"enabled": False}, optim={"max_steps": 2})
    result = train_model("midtrain", cfg, tmp_path / "full")
    assert result.record["init"] == "full" and result.record["steps"] == 2
    assert (result.model_dir / "model.safetensors").is_file()
    assert not (result.model_dir / "adapter_config.json").exists()
    AutoModelForCausalLM.from_pretrained(result.model_dir)


def test_step_guard_refuses_before_training(tiny, corpus, tmp_path):
    cfg = stage_config(MidtrainConfig, tiny, corpus, guards={"allow_few_steps": False, "min_optimizer_steps": 100})
    with pytest.raises(TooFewStepsError, match="lower the batch size"):
        train_model("midtrain", cfg, tmp_path / "guarded")
    assert not list((tmp_path / "guarded").glob("checkpoint-*"))


class Crash(Exception):
    pass


class CrashAfterSave(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        raise Crash(f"killed after saving step {state.global_step}")


def test_resume_mid_stage_matches_uninterrupted_run(tiny, corpus, tmp_path):
    cfg = stage_config(MidtrainConfig, tiny, corpus, optim={"max_steps": 6}, checkpoints={"save_steps": 3})
    whole = train_model("midtrain", cfg, tmp_path / "whole")
    with pytest.raises(Crash, match="step 3"):
        train_model("midtrain", cfg, tmp_path / "split", callbacks=[CrashAfterSave()])
    resumed = train_model("midtrain", cfg, tmp_path / "split")
    assert resumed.record["resumed_from"].endswith("checkpoint-3") and resumed.record["steps"] == 6
    # The checkpoint carries the log of steps 1-3; steps 4-6 are trained again after the crash.
    assert len(resumed.record["losses"]) == 6
    assert resumed.record["losses"] == pytest.approx(whole.record["losses"], rel=1e-4)
    changed = cfg.model_copy(update={"optim": cfg.optim.model_copy(update={"learning_rate": 1e-3})})
    with pytest.raises(MsmError, match="another config"):  # never resumes checkpoints of a different run
        train_model("midtrain", changed, tmp_path / "split")
    first = load_file(whole.model_dir / "adapter_model.safetensors")
    second = load_file(resumed.model_dir / "adapter_model.safetensors")
    for key in first:
        torch.testing.assert_close(first[key], second[key], atol=1e-5, rtol=1e-4)


def test_two_cpu_processes_match_one(tiny, corpus, tmp_path):
    def config(per_device: int) -> Path:
        path = tmp_path / f"train-{per_device}.yaml"
        section = {"model": {"name": str(tiny)}, "data": {"path": str(corpus), "max_length": 64},
                   "lora": {"r": 8, "alpha": 16}, "optim": {"learning_rate": 5e-3, "per_device_batch_size": per_device,
                                                            "max_steps": 4},
                   "guards": {"allow_few_steps": True}, "logging_steps": 1}
        path.write_text(yaml.safe_dump({"midtrain": section}), encoding="utf-8")
        return path

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = subprocess.run([sys.executable, "-m", "msmkit.train", "midtrain", "--config", str(config(4)),
                             "--out", str(tmp_path / "one")], env=env, capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    launch_config = files("msmkit.train").joinpath("accelerate/cpu.yaml")
    double = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(launch_config),
                             "--num_processes", "2", "-m", "msmkit.train", "midtrain", "--config", str(config(2)),
                             "--out", str(tmp_path / "two")],
                            env=env, capture_output=True, text=True, timeout=600)
    assert double.returncode == 0, double.stderr[-3000:]
    one = json.loads((tmp_path / "one" / "midtrain" / "train_record.json").read_text())
    two = json.loads((tmp_path / "two" / "midtrain" / "train_record.json").read_text())
    assert two["processes"] == 2 and one["processes"] == 1 and one["global_batch"] == two["global_batch"] == 4
    assert two["losses"] == pytest.approx(one["losses"], rel=2e-3)
