"""`msm train`: midtraining, then AFT starting from its output, in one run folder."""

from __future__ import annotations

from pathlib import Path

from msmkit.runs import RunDir
from msmkit.train.config import TrainConfig
from msmkit.train.trainer import TrainingResult, train_model


def run_training(config: TrainConfig, run_dir: str | Path, *, stages: tuple[str, ...] = ("midtrain", "aft")
                 ) -> dict[str, TrainingResult]:
    run = RunDir(run_dir)
    run.write_config(config, "train_config.yaml")
    results: dict[str, TrainingResult] = {}
    if "midtrain" in stages:
        results["midtrain"] = train_model("midtrain", config.midtrain, run.stage_dir("midtrain"), run=run)
    if "aft" in stages:
        aft = config.aft
        if "midtrain" in results and "name" not in aft.model.model_fields_set:
            # AFT starts from what midtraining produced unless the config names another model.
            aft = aft.model_copy(update={"model": aft.model.model_copy(
                update={"name": str(results["midtrain"].model_dir)})})
        results["aft"] = train_model("aft", aft, run.stage_dir("aft"), run=run)
    return results
