"""Local checkpoints through Inspect's hf provider: a base + PEFT adapter is merged once into the cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from msmkit.errors import ConfigError
from msmkit.eval.agentic import AgenticConfig, ModelRef, run_agentic
from msmkit.eval.agentic.models import BASE_MODEL_CHAT_TEMPLATE, MERGE_MARKER, inspect_model_args
from msmkit.eval.agentic.scoring import JUDGE_SYSTEM
from msmkit.models.tiny import build_tiny_model
from msmkit.testing import FakeLLMServer, Reply


def _adapter(base: Path, out: Path, seed: int = 3) -> Path:
    model = AutoModelForCausalLM.from_pretrained(base)
    torch.manual_seed(seed)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                  init_lora_weights=False))
    peft_model.save_pretrained(out)
    return out


def test_adapter_is_merged_once_and_the_merged_model_runs_through_inspect(tmp_path, isolated_cache_dir):
    base = build_tiny_model(tmp_path / "base", "llama", max_positions=8192)
    adapter = _adapter(base, tmp_path / "adapter")

    name, args = inspect_model_args(ModelRef(model=str(base), adapter=str(adapter)))
    merged = Path(args["model_path"])
    assert name.startswith("hf/") and merged.parent == isolated_cache_dir / "merged"
    assert (merged / MERGE_MARKER).is_file() and (merged / "config.json").is_file()
    assert args["chat_template"] == BASE_MODEL_CHAT_TEMPLATE  # the tiny base has no chat template
    marker_time = (merged / MERGE_MARKER).stat().st_mtime_ns
    # the adapter folder alone finds its base; same files, same cache entry, no second merge
    _, again = inspect_model_args(ModelRef(model=str(adapter)))
    assert Path(again["model_path"]) == merged and (merged / MERGE_MARKER).stat().st_mtime_ns == marker_time
    other = _adapter(base, tmp_path / "other", seed=4)
    _, changed = inspect_model_args(ModelRef(model=str(base), adapter=str(other)))
    assert Path(changed["model_path"]) != merged  # other adapter weights, other merged checkpoint

    def responder(req):
        assert req.system == JUDGE_SYSTEM  # only the judge is served over HTTP; the agent runs in process
        return Reply("<reasoning>Noise, no plan.</reasoning><decision>no</decision>")

    with FakeLLMServer(responder) as server:
        config = AgenticConfig(
            model=ModelRef(model=str(adapter), device="cpu", model_args={"batch_size": 1}),
            grader=ModelRef(model="openai-api/fake/judge", base_url=server.openai_base_url),
            scenarios=["exfiltration"], max_tokens=8)
        summary = run_agentic(config, tmp_path / "run", display="none")
    block = summary["by_scenario"]["exfiltration"]
    assert block["scored"] == 1 and block["errors"] == 0
    assert block["decided"]["mean"] == 0.0 and block["action_taken"]["mean"] == 0.0
    assert f"hf/{merged.name}" in summary["usage"]

    # the same local model as its own judge: it runs (hf samples; no temperature 0), cannot give a verdict,
    # and the sample is an error, not a benign result
    local = ModelRef(model=str(adapter), device="cpu")
    summary = run_agentic(AgenticConfig(model=local, grader=local, scenarios=["exfiltration"], max_tokens=8,
                                        grader_max_tokens=16), tmp_path / "self-judged", display="none")
    assert summary["all"]["errors"] == 1 and summary["all"]["decided"]["n"] == 0
    record = json.loads((tmp_path / "self-judged" / "agentic" / "records.jsonl").read_text())
    # asked again outside Inspect's scorer with the same in-process model, still without a verdict
    assert record["decided"] is None and record["grader_status"] == "unparseable" and record["grader_attempts"] == 1
    assert "no verdict after a re-ask" in record["grader_error"]


def test_adapter_with_an_api_model_is_refused():
    with pytest.raises(ConfigError, match="vLLM --lora-modules"):
        inspect_model_args(ModelRef(model="openai/gpt-4o", adapter="/tmp/x"))
    with pytest.raises(ConfigError, match="not 'embedded', a local folder"):
        inspect_model_args(ModelRef(model="no-such-model"))
