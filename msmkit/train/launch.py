"""How a training stage runs: in this process (CPU or one GPU), or as `accelerate launch` processes (one per
device, DeepSpeed ZeRO-3 / FSDP2 / plain multi-GPU configs packaged in msmkit/train/accelerate/)."""

from __future__ import annotations

import gc
import subprocess
import sys
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field

from msmkit.config import StrictModel
from msmkit.runs import LOG_FILE
from msmkit.stages.contract import StageFailed
from msmkit.train.config import AftTrainConfig, MidtrainConfig, TrainConfig, TrainStageConfig
from msmkit.train.outputs import Kind, TrainingOutputs

ACCELERATE_CONFIGS = ("deepspeed_zero3", "fsdp2", "multi_gpu", "cpu")


class LauncherConfig(StrictModel):
    """How training stages run: in this process (CPU or one GPU), or as `accelerate launch` subprocesses."""

    kind: Literal["inprocess", "accelerate"] = "inprocess"
    accelerate_config: str = "multi_gpu"  # a packaged config name (deepspeed_zero3, fsdp2, multi_gpu, cpu) or a file
    num_processes: int | None = Field(None, ge=1)


def accelerate_config_path(name: str) -> str:
    """A packaged accelerate config by name, or the path as given."""
    packaged = files("msmkit.train").joinpath(f"accelerate/{name}.yaml")
    return str(packaged) if packaged.is_file() else name


def _launch_accelerate(kind: Kind, config_path: Path, out: Path, launcher: LauncherConfig) -> None:
    """`accelerate launch ... -m msmkit.train KIND`: the same training code, one process per device."""
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
               accelerate_config_path(launcher.accelerate_config)]
    if launcher.num_processes:
        command += ["--num_processes", str(launcher.num_processes)]
    command += ["-m", "msmkit.train", kind, "--config", str(config_path), "--out", str(out)]
    done = subprocess.run(command)
    if done.returncode != 0:
        raise StageFailed(f"accelerate launch of the {kind} stage exited with {done.returncode} "
                          f"(command: {' '.join(command)}); its log is in {out / LOG_FILE}")


def run_training_stage(kind: Kind, config: TrainStageConfig, out: Path, launcher: LauncherConfig) -> TrainingOutputs:
    """Train one stage into `out/<kind>/` (resuming its checkpoints) and return its outputs."""
    from msmkit.train.pipeline import run_training

    assert isinstance(config, AftTrainConfig if kind == "aft" else MidtrainConfig)
    sections: dict[str, Any] = {kind: config}
    full = TrainConfig(**sections)
    if launcher.kind == "accelerate":
        out.mkdir(parents=True, exist_ok=True)
        config_path = out / "train_stage.yaml"
        config_path.write_text(yaml.safe_dump(full.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
        _launch_accelerate(kind, config_path, out, launcher)
        record = TrainingOutputs.record_of(out, kind)
    else:
        record = run_training(full, out, stages=(kind,))[kind].record
        gc.collect()
    return TrainingOutputs.from_record(out, kind, record, config.guards)
