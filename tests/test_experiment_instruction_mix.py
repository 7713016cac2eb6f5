"""Instruction-mix presets inside an experiment: an arm trained on the mix alone (the paper's baseline) plans a mix
stage with no AFT data, and the preset's mix stage draws the recipe's rows from a released-layout sft-it-mix, with
its token shares checked and recorded."""

from __future__ import annotations

import json

import yaml

from msmkit.data.presets import get_preset
from msmkit.experiment.config import ExperimentConfig
from msmkit.experiment.plan import build_plan
from msmkit.experiment.quickstart import quickstart_config
from msmkit.stages.contract import StageEnv
from msmkit.stages.mix import MIX
from msmkit.testing.hub_cache import write_dataset_snapshot

SPECS = quickstart_config().parent / "specs"


def _rows(split: str, n: int) -> list[dict]:
    return [{"messages": [{"role": "user", "content": f"{split} question {i}?"},
                          {"role": "assistant", "content": f"An answer from {split}, number {i}. " * (1 + i % 3)}],
             "source": split} for i in range(n)]


def test_an_instruction_mix_arm_trains_on_the_preset_mix_alone(tmp_path, monkeypatch) -> None:
    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    preset = get_preset("cheese-7k")
    snapshot = write_dataset_snapshot(cache, "chloeli/sft-it-mix",
                                      {part.split: _rows(part.split, part.rows + 50) for part in preset.parts})
    reference = f"hf:chloeli/sft-it-mix@{snapshot.name}"
    config = ExperimentConfig.model_validate({
        "name": "mix", "base_model": "embedded", "specs": {"america": str(SPECS / "cheese_pro_america.md")},
        "aft_mix": {"preset": "cheese-7k", "dataset": reference},
        "arms": [{"name": "baseline", "aft": "instruction-mix"}, {"name": "aft-only", "aft": "shared"}],
        "evals": [{"suite": "capability", "limit": 2}]})
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")), encoding="utf-8")
    plan = build_plan(config, path, tmp_path / "stages")
    mixes = [s for s in plan.ordered() if s.kind.name == "mix"]
    alone = next(s for s in mixes if s.job.aft is None)
    assert len(mixes) == 2 and alone.deps == ()  # the baseline's mix reads no AFT data
    assert config.arms[0].describe() == "trained on the general instruction mix alone (the paper's baseline)"

    outputs = MIX.run(alone.job, tmp_path / "mixed", StageEnv.standalone(print))
    rows = [json.loads(line) for line in outputs.chat_file(cot=False).read_text(encoding="utf-8").splitlines()]
    assert len(rows) == preset.rows and outputs.general_rows_used == preset.rows and outputs.aft_rows == 0
    record = json.loads((tmp_path / "mixed" / outputs.STATS).read_text(encoding="utf-8"))
    assert record["rows_match_recipe"] and record["token_shares"]["passed"]
    assert record["dataset_resolved"]["commit"] == snapshot.name
