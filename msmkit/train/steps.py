"""How many optimizer steps a training stage takes, and the batch that gives it enough (no torch import: the
planner checks a grid before anything trains)."""

from __future__ import annotations

import math

from msmkit.train.config import TrainStageConfig


def planned_steps(sequences: int, cfg: TrainStageConfig, processes: int) -> int:
    if cfg.optim.max_steps > 0:
        return cfg.optim.max_steps
    batches = math.ceil(sequences / (cfg.optim.per_device_batch_size * processes))
    return math.ceil(math.ceil(batches / cfg.optim.gradient_accumulation_steps) * cfg.optim.epochs)


def fit_batch_to_steps(cfg: TrainStageConfig, sequences: int, processes: int) -> TrainStageConfig:
    """The config with the largest global batch (at most the configured one) that still gives
    guards.min_optimizer_steps: accumulation is cut first, then the per-device batch."""
    optim = cfg.optim
    wanted = cfg.guards.min_optimizer_steps
    per_device, accumulation = optim.per_device_batch_size, optim.gradient_accumulation_steps
    fitted = cfg.model_copy(deep=True)
    while planned_steps(sequences, fitted, processes) < wanted and (per_device > 1 or accumulation > 1):
        if accumulation > 1:
            accumulation -= 1
        else:
            per_device -= 1
        fitted.optim.gradient_accumulation_steps, fitted.optim.per_device_batch_size = accumulation, per_device
    return fitted
