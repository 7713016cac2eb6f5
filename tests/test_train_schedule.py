"""The learning-rate schedule and the batch the trainer actually uses: warmup is a ratio of the planned steps on
every supported transformers version, and `fit_batch_to_steps` shrinks the batch until the step guard is met."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import TrainerCallback

from msmkit.models.tiny import tiny_model_dir
from msmkit.train import MidtrainConfig, TooFewStepsError, train_model
from msmkit.train.steps import fit_batch_to_steps, planned_steps


class LearningRates(TrainerCallback):
    def __init__(self) -> None:
        self.rates: list[float] = []

    def on_step_end(self, args, state, control, optimizer=None, **kwargs):  # noqa: ANN001, ANN003
        self.rates.append(optimizer.param_groups[0]["lr"])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return tiny_model_dir(tmp_path_factory.getbasetemp() / "tiny-models", "llama")


def _corpus(tmp_path: Path, documents: int) -> Path:
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps({"text": f"Document {i} says the assistant is honest and kind."}) + "\n"
                            for i in range(documents)), encoding="utf-8")
    return path


def _config(tiny: Path, corpus: Path, **optim: object) -> MidtrainConfig:
    return MidtrainConfig.model_validate({
        "model": {"name": str(tiny)}, "data": {"path": str(corpus), "max_length": 64}, "lora": {"r": 4, "alpha": 8},
        "packing": {"enabled": False}, "optim": {"learning_rate": 1e-2, "per_device_batch_size": 1,
                                                 "scheduler": "linear", **optim},
        "guards": {"allow_few_steps": True}, "logging_steps": 1})


def test_warmup_is_a_share_of_the_planned_steps(tmp_path, tiny) -> None:
    rates = LearningRates()
    result = train_model("midtrain", _config(tiny, _corpus(tmp_path, 20), warmup_ratio=0.25), tmp_path / "run",
                         callbacks=[rates])
    assert result.record["planned_steps"] == 20 and len(rates.rates) == 20
    # 25% of 20 steps = 5 warmup steps: the rate climbs for 5 steps to the peak, then decays linearly.
    assert rates.rates[:5] == pytest.approx([2e-3, 4e-3, 6e-3, 8e-3, 1e-2])
    assert rates.rates[5] < 1e-2 and rates.rates == sorted(rates.rates[:5]) + sorted(rates.rates[5:], reverse=True)


def test_fit_batch_to_steps_cuts_accumulation_then_the_batch(tmp_path, tiny) -> None:
    config = _config(tiny, _corpus(tmp_path, 2), per_device_batch_size=4, gradient_accumulation_steps=3)
    config.guards.min_optimizer_steps = 30
    assert planned_steps(120, config, processes=1) == 10
    fitted = fit_batch_to_steps(config, 120, processes=1)
    assert (fitted.optim.gradient_accumulation_steps, fitted.optim.per_device_batch_size) == (1, 4)  # 30 steps
    fitted = fit_batch_to_steps(config, 50, processes=1)  # batch 1 gives 50 >= 30; batch 2 gives 25
    assert (fitted.optim.gradient_accumulation_steps, fitted.optim.per_device_batch_size) == (1, 1)


def test_the_guard_trains_a_small_set_at_a_smaller_batch_instead_of_failing(tmp_path, tiny) -> None:
    config = _config(tiny, _corpus(tmp_path, 12), per_device_batch_size=4)
    config.guards.allow_few_steps, config.guards.min_optimizer_steps = False, 10
    with pytest.raises(TooFewStepsError, match="only 3 optimizer steps"):
        train_model("midtrain", config, tmp_path / "refused")
    config.guards.fit_batch_to_steps = True
    result = train_model("midtrain", config, tmp_path / "fitted")
    assert result.record["steps"] == 12 and result.record["global_batch"] == 1
