"""The experiment config: specs, arms, seeds, evals and sweeps in one YAML file.

Stage sections (`corpus`, `neutral`, `aft_data`, `train`) take the same fields as the stage's own
config file (see `msm generate corpus`, `msm generate aft`, `msm train`); `generator` and `judge` fill
the stages' LLM fields unless a section sets its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from msmkit.config import StrictModel, load_config
from msmkit.llm.types import LLMConfig

AFT_SOURCES = ("shared", "spec", "deliberative", "anti")


class ArmConfig(StrictModel):
    """One arm. `midtrain`: a spec name (its MSM corpus) or 'neutral' (the token-matched control corpus).
    `aft`: 'shared' (the one AFT set every arm shares), or 'spec:NAME', 'deliberative:NAME', 'anti:NAME'."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.+-]+$")
    description: str = ""
    midtrain: str | None = None
    aft: str | None = None

    @model_validator(mode="after")
    def _aft_form(self) -> "ArmConfig":
        if self.aft is not None:
            source = self.aft.split(":", 1)[0]
            if source not in AFT_SOURCES or (source != "shared" and ":" not in self.aft):
                raise ValueError(f"arm {self.name!r}: aft must be 'shared' or one of spec:NAME, deliberative:NAME, "
                                 f"anti:NAME (got {self.aft!r})")
        return self


class EvalConfig(StrictModel):
    suite: Literal["values", "capability"]
    # values: built-in set names (pro_america, pro_affordability, cheese) or JSONL files.
    items: list[str] = Field(default_factory=lambda: ["pro_america", "pro_affordability", "cheese"])
    split: Literal["dev", "test", "all"] = "test"
    limit: int | None = Field(None, ge=1)  # first N items per set (quick runs)
    batch_size: int = Field(8, ge=1)


class SweepConfig(StrictModel):
    """AFT data-size sweep for the token-efficiency curve: each listed arm is trained at each size."""

    aft_examples: list[int] = Field(min_length=1)
    arms: list[str] = Field(min_length=1)


class ExperimentConfig(StrictModel):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    title: str | None = None
    base_model: str = "embedded"
    model_name: str = "the assistant"  # fills {model_name} in specs, corpora and demonstrations
    provider_name: str | None = None
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    specs: dict[str, str] = Field(min_length=1)  # name -> spec file (relative to the config file)
    generator: LLMConfig = Field(default_factory=LLMConfig)
    judge: LLMConfig | None = None
    corpus: dict[str, Any] = Field(default_factory=dict)
    neutral: dict[str, Any] = Field(default_factory=dict)
    neutral_match: str | None = None  # spec whose corpus the neutral control matches in tokens (default: first)
    aft_data: dict[str, Any] = Field(default_factory=dict)
    aft_cot: bool = False  # train AFT on the with-CoT set (True) or the CoT-stripped set (False)
    shared_aft_spec: str | None = None  # spec the shared AFT set is generated from (default: first)
    train: dict[str, Any] = Field(default_factory=dict)
    arms: list[ArmConfig] = Field(min_length=1)
    evals: list[EvalConfig] = Field(default_factory=lambda: [EvalConfig(suite="values"), EvalConfig(suite="capability")])
    sweep: SweepConfig | None = None
    notes: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> "ExperimentConfig":
        names = [arm.name for arm in self.arms]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ValueError(f"arm names must be unique; repeated: {', '.join(sorted(duplicates))}")
        for arm in self.arms:
            if arm.midtrain is not None and arm.midtrain != "neutral" and arm.midtrain not in self.specs:
                raise ValueError(f"arm {arm.name!r}: midtrain {arm.midtrain!r} is neither 'neutral' nor a spec name "
                                 f"({', '.join(self.specs)})")
            if arm.aft and ":" in arm.aft and arm.aft.split(":", 1)[1] not in self.specs:
                raise ValueError(f"arm {arm.name!r}: aft {arm.aft!r} names an unknown spec ({', '.join(self.specs)})")
        for name in (self.neutral_match, self.shared_aft_spec):
            if name is not None and name not in self.specs:
                raise ValueError(f"{name!r} is not a spec name ({', '.join(self.specs)})")
        if self.sweep is not None:
            unknown = [a for a in self.sweep.arms if a not in names]
            if unknown:
                raise ValueError(f"sweep.arms names unknown arms: {', '.join(unknown)}")
            without_aft = [a.name for a in self.arms if a.name in self.sweep.arms and not a.aft]
            if without_aft:
                raise ValueError(f"sweep.arms must have AFT to sweep its size: {', '.join(without_aft)}")
        return self

    def spec_path(self, name: str, config_dir: Path) -> Path:
        path = Path(self.specs[name])
        return path if path.is_absolute() else (config_dir / path).resolve()


def load_experiment(path: str | Path) -> ExperimentConfig:
    return load_config(path, ExperimentConfig)
