"""Training: midtraining (documents, loss on every token, packed without cross-document attention) and
alignment fine-tuning (chat template, assistant-only loss) on TRL + PEFT, from one CPU to many GPUs."""

from msmkit.train.config import AftConfig, MidtrainConfig, StageConfig, TrainConfig, load_train_config
from msmkit.train.pipeline import run_training
from msmkit.train.stage import StageResult, TooFewStepsError, run_stage

__all__ = ["AftConfig", "MidtrainConfig", "StageConfig", "StageResult", "TooFewStepsError", "TrainConfig",
           "load_train_config", "run_stage", "run_training"]
