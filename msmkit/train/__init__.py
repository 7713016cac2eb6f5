"""Training: midtraining (documents, loss on every token, packed without cross-document attention) and
alignment fine-tuning (chat template, assistant-only loss) on TRL + PEFT, from one CPU to many GPUs.

The public names load on first use (PEP 562), so that planning and reporting, which read configs and
training records, do not import torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_PUBLIC = {
    "AftTrainConfig": "msmkit.train.config", "MidtrainConfig": "msmkit.train.config",
    "TrainStageConfig": "msmkit.train.config", "TrainConfig": "msmkit.train.config",
    "load_train_config": "msmkit.train.config", "run_training": "msmkit.train.pipeline",
    "TrainingResult": "msmkit.train.trainer", "TooFewStepsError": "msmkit.train.trainer",
    "train_model": "msmkit.train.trainer",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'msmkit.train' has no attribute {name!r}")
    return getattr(import_module(_PUBLIC[name]), name)
