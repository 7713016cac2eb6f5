"""Training configuration: one pydantic section per concern, loadable from YAML.

The defaults are the paper's recipe (LoRA r=64, alpha=128, dropout 0 on every attention and MLP
projection; 1 epoch; AdamW lr 1e-4, cosine, 5% warmup, weight decay 0.01).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from msmkit.config import StrictModel, deep_merge, load_yaml, validate_config

PAPER_TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class ModelSection(StrictModel):
    name: str = "embedded"  # "embedded" (Gemma 3 270M base), a model folder, an adapter folder or a cached hub name
    dtype: str = "auto"  # auto = float32 on CPU, bfloat16 on GPU
    attn_implementation: str = "sdpa"  # sdpa | eager | flash_attention_2 | flash_attention_3 | kernels-community/...
    gradient_checkpointing: bool = False


class LoraSection(StrictModel):
    enabled: bool = True  # False = full fine-tuning
    r: int = Field(64, gt=0)
    alpha: int = Field(128, gt=0)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(default_factory=lambda: list(PAPER_TARGET_MODULES))


class OptimSection(StrictModel):
    learning_rate: float = Field(1e-4, gt=0)
    epochs: float = Field(1.0, gt=0)
    max_steps: int = -1  # > 0 overrides epochs
    scheduler: str = "cosine"
    warmup_ratio: float = Field(0.05, ge=0, le=1)
    weight_decay: float = Field(0.01, ge=0)
    optimizer: str = "adamw_torch"
    per_device_batch_size: int = Field(8, gt=0)
    gradient_accumulation_steps: int = Field(1, gt=0)
    max_grad_norm: float = 1.0
    seed: int = 0


class DataSection(StrictModel):
    path: str | None = None  # JSONL file or `datasets` folder; `text` column (midtrain) / `messages` (AFT)
    max_length: int = Field(1024, gt=8)  # tokens per packed sequence (midtrain) / per row (AFT)
    cot: Literal["keep", "strip"] = "keep"  # AFT: strip <think>...</think> from assistant turns
    max_rows: int | None = None  # use only the first N rows (smoke tests)


class PackingSection(StrictModel):
    enabled: bool = True  # best-fit-decreasing packing, documents never attend to each other


class GuardSection(StrictModel):
    min_optimizer_steps: int = Field(100, ge=0)  # a 31-step run faked a null result in a replication
    allow_few_steps: bool = False
    # Lower the batch (gradient accumulation first, then the per-device batch) until the stage takes at least
    # min_optimizer_steps: small data-size sweep points keep enough steps. The record says the batch used.
    fit_batch_to_steps: bool = False
    max_padding_fraction: float = Field(0.05, ge=0, le=1)  # warn above this


class CheckpointSection(StrictModel):
    save_steps: int = Field(200, gt=0)
    save_total_limit: int | None = 2
    resume: bool = True  # continue from the last checkpoint in the stage folder, if any
    save_merged: bool = False  # also write merged full weights (for vLLM / Inspect hf) next to the adapter


class TrainStageConfig(StrictModel):
    model: ModelSection = Field(default_factory=ModelSection)
    lora: LoraSection = Field(default_factory=LoraSection)
    optim: OptimSection = Field(default_factory=OptimSection)
    data: DataSection = Field(default_factory=DataSection)
    packing: PackingSection = Field(default_factory=PackingSection)
    guards: GuardSection = Field(default_factory=GuardSection)
    checkpoints: CheckpointSection = Field(default_factory=CheckpointSection)
    logging_steps: int = Field(10, gt=0)
    trl: dict[str, Any] = Field(default_factory=dict)  # extra keys passed to trl.SFTConfig as-is

    def identity(self) -> dict[str, Any]:
        """The settings that change the trained model. Left out: where the data and the starting model come from
        (the caller identifies those by content), checkpoint cadence and logging."""
        data = self.model_dump(mode="json", exclude={"checkpoints", "logging_steps"})
        data["data"].pop("path")
        data["model"].pop("name")
        return data


class MidtrainConfig(TrainStageConfig):
    pass


class AftTrainConfig(TrainStageConfig):
    # How AFT starts from a midtrained LoRA adapter: keep training it (paper), or merge it and add a new one.
    init: Literal["continue", "fresh"] = "continue"
    chat_template: str | None = None  # a .jinja file; None = the model's own (if it marks assistant spans) or ours
    packing: PackingSection = Field(default_factory=lambda: PackingSection(enabled=False))


class TrainConfig(StrictModel):
    """`msm train` (both stages); `msm train midtrain|aft` read their own section of the same file."""

    midtrain: MidtrainConfig = Field(default_factory=MidtrainConfig)
    aft: AftTrainConfig = Field(default_factory=AftTrainConfig)


def load_train_config(path: str | Path | None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    data: dict[str, Any] = {}
    if path is not None:
        loaded = load_yaml(path)
        data = loaded if isinstance(loaded, dict) else {}
    data = deep_merge(data, overrides or {})
    return validate_config(data, TrainConfig, str(path) if path else "command line")
