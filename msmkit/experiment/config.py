"""The experiment config: specs, arms, seeds, evals and sweeps in one YAML file.

Stage sections (`corpus`, `neutral`, `aft_data`, `train`) take the same fields as the stage's own
config file (see `msm generate corpus`, `msm generate aft`, `msm train`); `generator` and `judge` fill
the stages' LLM fields unless a section sets its own. Relative paths anywhere in the file are relative
to the file itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_serializer, field_validator, model_validator

from msmkit.config import StrictModel, load_config
from msmkit.data.mix import MixConfig
from msmkit.experiment.registry import EvalSettings
from msmkit.llm.types import LLMConfig
from msmkit.spec.variants import VariantKind, VariantOptions
from msmkit.stages.eval_capability import CapabilityEvalSettings
from msmkit.stages.eval_engine import EvalEngine
from msmkit.stages.eval_values import ValuesEvalSettings
from msmkit.train.launch import LauncherConfig

AftSourceMode = Literal["shared", "spec", "deliberative", "anti", "instruction-mix"]


class AftSource(StrictModel):
    """Where an arm's AFT data comes from, parsed from `shared`, `spec:NAME`, `deliberative:NAME` or `anti:NAME`."""

    mode: AftSourceMode
    spec: str | None = None  # the spec named after the colon; None for `shared`

    @classmethod
    def parse(cls, text: str) -> "AftSource":
        mode, _, spec = text.partition(":")
        if mode in ("shared", "instruction-mix") and not spec:
            return cls(mode=mode)  # type: ignore[arg-type]
        if mode in ("spec", "deliberative", "anti") and spec:
            return cls(mode=mode, spec=spec)  # type: ignore[arg-type]
        raise ValueError(f"aft must be 'shared', 'instruction-mix' or one of spec:NAME, deliberative:NAME, anti:NAME "
                         f"(got {text!r})")

    def describe(self) -> str:
        return {"shared": "AFT on the shared AFT set", "spec": f"AFT on data from the {self.spec} spec",
                "instruction-mix": "trained on the general instruction mix alone (the paper's baseline)",
                "deliberative": f"deliberative-alignment AFT from the {self.spec} spec",
                "anti": f"anti-spec AFT (inverted {self.spec} spec)"}[self.mode]

    def __str__(self) -> str:
        return self.mode if self.spec is None else f"{self.mode}:{self.spec}"


class SpecVariantConfig(StrictModel):
    """A spec derived from another one for the paper's spec comparisons (rules only, + sub-rules, + value
    explanations, general guidance, about another AI or about humans). LLM kinds use the generator."""

    of: str
    variant: VariantKind
    options: VariantOptions = Field(default_factory=VariantOptions)


class ArmConfig(StrictModel):
    """One arm. `midtrain`: a spec name (its MSM corpus) or 'neutral' (the token-matched control corpus).
    `aft`: 'shared' (the one AFT set every arm shares), or 'spec:NAME', 'deliberative:NAME', 'anti:NAME'."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.+-]+$")
    description: str = ""
    midtrain: str | None = None
    aft: AftSource | None = None
    # A trained model to evaluate as it is, without training: an adapter or checkpoint folder, or a released one
    # by reference (hf:chloeli/llama-3.1-8b-pro-america-spec-msm-cheese-aft@REV).
    adapter: str | None = None
    paper_arm: str | None = None  # the paper's name for this arm (msmkit/paper/figures.yaml), for the gate

    @model_validator(mode="after")
    def _adapter_alone(self) -> "ArmConfig":
        if self.adapter and (self.midtrain or self.aft):
            raise ValueError(f"arm {self.name!r}: an `adapter` arm evaluates that model as it is; it cannot also "
                             "midtrain or AFT (drop midtrain/aft, or the adapter)")
        return self

    @field_validator("aft", mode="before")
    @classmethod
    def _parse_aft(cls, value: Any) -> Any:
        return AftSource.parse(value) if isinstance(value, str) else value

    @field_serializer("aft")
    def _aft_text(self, value: AftSource | None) -> str | None:
        return None if value is None else str(value)

    def describe(self) -> str:
        if self.description:
            return self.description
        if self.adapter:
            return f"the trained model {self.adapter}, evaluated without training"
        if self.midtrain is None and self.aft is None:
            return "the base model, untrained"
        parts = []
        if self.midtrain == "neutral":
            parts.append("midtrained on the token-matched neutral corpus")
        elif self.midtrain:
            parts.append(f"midtrained on the {self.midtrain} MSM corpus")
        if self.aft:
            parts.append(self.aft.describe())
        return ", then ".join(parts)


class GateConfig(StrictModel):
    """Set measured arms (named by `paper_arm`) beside the paper's figures (msmkit/paper/figures.yaml)."""

    figures: list[str] = Field(min_length=1)  # figure ids, e.g. [fig2, cheese-gate]
    reference: Literal["paper", "replication"] = "paper"
    tolerance: float = Field(0.05, ge=0)  # |measured - reference| allowed, as the replications gated
    # Report metric -> the figure's eval name; by default "values: pro_america" -> pro_america and
    # "agentic: decided" / "agentic: executed" -> agentic_misalignment.
    evals: dict[str, str] = Field(default_factory=dict)
    setup: dict[str, Any] = Field(default_factory=dict)  # setup keys msmkit cannot know (e.g. the judge used)
    figures_file: str | None = None  # another figures file in the format of msmkit/paper/figures.yaml


class SweepConfig(StrictModel):
    """Data-size sweeps: the AFT size (the token-efficiency curve) and the MSM dose (midtraining on the first N
    documents of its corpus), nested: each listed arm is trained at every combination of the sizes it has."""

    aft_examples: list[int] = Field(default_factory=list)
    msm_documents: list[int] = Field(default_factory=list)
    arms: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _something_to_sweep(self) -> "SweepConfig":
        if not self.aft_examples and not self.msm_documents:
            raise ValueError("sweep needs aft_examples (AFT sizes) or msm_documents (MSM doses), or both")
        return self


class BalanceConfig(StrictModel):
    """Balance of mirrored corpora (a two-spec dissociation design, e.g. pro-America vs pro-affordability): the
    two MSM corpora of each pair should hold as many documents and tokens, domain by domain, or a difference
    between their models may be one of dose. With `trim: false` the report notes each imbalance; with
    `trim: true` a `balance` stage per pair drops documents until both corpora are within `tolerance` (recording
    every one it drops), and the arms midtrained on either spec train on the trimmed corpora."""

    # [spec, spec] pairs whose corpora are balanced; default: the specs of every two MSM arms in `comparisons`
    pairs: list[tuple[str, str]] | None = None
    # allowed relative gap (|a - b| over the larger) of documents and of tokens, per domain and in total
    tolerance: float = Field(0.05, ge=0, lt=1)
    trim: bool = False  # trim the pairs' corpora to balance before midtraining (false: only note an imbalance)


class SlurmConfig(StrictModel):
    """Slurm job settings for `executor: {kind: slurm}`: one job per stage, submitted through submitit. The run
    folder must be on a filesystem every node shares (with file locks, as NFS, Lustre and GPFS have)."""

    partition: str | None = None  # the partition GPU stages go to (default: the cluster's default)
    cpu_partition: str | None = None  # where stages that need no GPU go (default: `partition`)
    time_min: int = Field(24 * 60, ge=1)  # a job's time limit in minutes; a stage cut off is requeued and resumes
    cpus_per_task: int = Field(8, ge=1)
    mem_gb: float | None = Field(None, gt=0)  # memory per job (default: the partition's)
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None  # node features, e.g. a GPU type: "h100"
    setup: list[str] = Field(default_factory=list)  # shell lines run before each job (module load, source venv)
    additional: dict[str, str] = Field(default_factory=dict)  # any other sbatch option, e.g. {exclude: node7}
    max_requeues: int = Field(3, ge=0)  # how often a preempted or timed-out job is put back in the queue


class ExecutorConfig(StrictModel):
    """Where the stages run. `inprocess` (the default): one after another in the `msm run` process. `local`:
    independent stages at once as worker processes on this machine, each with its own GPU(s). `slurm`: each
    stage as its own Slurm job. Either way a stage starts only when the stages it needs are done, the run
    folder holds every stage's state, and a rerun continues whatever was cut off."""

    kind: Literal["inprocess", "local", "slurm"] = "inprocess"
    workers: int = Field(2, ge=1)  # stages at once (slurm: jobs queued or running at once)
    # GPUs of each stage that trains or runs a local model (an accelerate launch takes its num_processes);
    # stages that only call APIs get none. On a machine without GPUs every stage runs on the CPU.
    gpus_per_stage: int = Field(1, ge=1)
    gpus: list[int] | None = None  # local: the GPUs of this machine to use (default: every visible one)
    threads_per_worker: int | None = Field(None, ge=1)  # CPU threads of each worker (default: cores / workers)
    poll_interval_s: float = Field(1.0, gt=0)  # how often finished stages are looked for
    slurm: SlurmConfig = Field(default_factory=SlurmConfig)


class ComputeConfig(StrictModel):
    """Assumptions behind `msm run --preview`'s GPU-hour estimates (not used by a real run)."""

    params_billion: float | None = Field(None, gt=0)  # the base model's size; inferred for known/local models
    peak_tflops: float = Field(790.0, gt=0)  # dense bf16 per GPU (H100)
    mfu: float = Field(0.25, gt=0, le=1)  # a replication saw ~37% for 8B LoRA and ~10% for 32B LoRA
    gpus: int = Field(1, ge=1)


class ExperimentConfig(StrictModel):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    title: str | None = None
    base_model: str = "embedded"
    model_name: str = "the assistant"  # fills {model_name} in specs, corpora and demonstrations
    provider_name: str | None = None
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    # name -> spec file (relative to the config file), or a variant of another spec
    specs: dict[str, str | SpecVariantConfig] = Field(default_factory=dict)  # empty: only adapter/base arms
    generator: LLMConfig = Field(default_factory=LLMConfig)
    judge: LLMConfig | None = None
    corpus: dict[str, Any] = Field(default_factory=dict)
    neutral: dict[str, Any] = Field(default_factory=dict)
    neutral_match: str | None = None  # spec whose corpus the neutral control matches in tokens (default: first)
    aft_data: dict[str, Any] = Field(default_factory=dict)
    # How every arm's evals prompt the model, chosen once so that arms differ only by their training: `auto` is
    # completion style when the base model has no chat template (a base-model study), else chat.
    eval_prompt_style: Literal["auto", "completion", "chat"] = "auto"
    # How the evals that make the evaluated model write text (open_qa, agentic) run it: in process (local) or on a
    # vLLM server per eval stage (kind: vllm), the way to evaluate large models over many samples on GPUs.
    eval_engine: EvalEngine = Field(default_factory=EvalEngine)
    aft_cot: bool = False  # train AFT on the with-CoT set (True) or the CoT-stripped set (False)
    aft_mix: MixConfig | None = None
    shared_aft_spec: str | None = None  # spec the shared AFT set is generated from (default: first)
    train: dict[str, Any] = Field(default_factory=dict)
    launcher: LauncherConfig = Field(default_factory=LauncherConfig)
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    arms: list[ArmConfig] = Field(min_length=1)
    evals: list[EvalSettings] = Field(default_factory=lambda: [ValuesEvalSettings(), CapabilityEvalSettings()])
    # Pairs [first, second] compared item by item (first minus second); default: every arm against the first.
    comparisons: list[tuple[str, str]] | None = None
    balance: BalanceConfig = Field(default_factory=BalanceConfig)  # mirrored corpora: note an imbalance, or trim
    sweep: SweepConfig | None = None
    gate: GateConfig | None = None
    compute: ComputeConfig = Field(default_factory=ComputeConfig)
    notes: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> "ExperimentConfig":
        names = [arm.name for arm in self.arms]
        if not self.specs and any(arm.midtrain or (arm.aft and arm.aft.mode != "instruction-mix") for arm in self.arms):
            raise ValueError("arms that midtrain or AFT need `specs:` (name -> spec file)")
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ValueError(f"arm names must be unique; repeated: {', '.join(sorted(duplicates))}")
        for name in self.specs:
            seen, current = [name], self.specs[name]
            while isinstance(current, SpecVariantConfig):  # a variant of a variant is fine; a cycle is not
                if current.of not in self.specs:
                    raise ValueError(f"specs.{seen[-1]}.of names no spec: {current.of!r} "
                                     f"(specs: {', '.join(self.specs)})")
                if current.of in seen:
                    raise ValueError(f"specs form a cycle: {' -> '.join(seen + [current.of])}")
                seen.append(current.of)
                current = self.specs[current.of]
        for arm in self.arms:
            if arm.midtrain is not None and arm.midtrain != "neutral" and arm.midtrain not in self.specs:
                raise ValueError(f"arm {arm.name!r}: midtrain {arm.midtrain!r} is neither 'neutral' nor a spec name "
                                 f"({', '.join(self.specs)})")
            if arm.aft and arm.aft.spec is not None and arm.aft.spec not in self.specs:
                raise ValueError(f"arm {arm.name!r}: aft {arm.aft!r} names an unknown spec ({', '.join(self.specs)})")
        if any(arm.aft and arm.aft.mode == "instruction-mix" for arm in self.arms) and self.aft_mix is None:
            raise ValueError("an arm with aft: instruction-mix trains on aft_mix alone: set aft_mix (e.g. "
                             "{preset: cheese-paper, dataset: hf:chloeli/sft-it-mix@REV})")
        for name in (self.neutral_match, self.shared_aft_spec):
            if name is not None and name not in self.specs:
                raise ValueError(f"{name!r} is not a spec name ({', '.join(self.specs)})")
        for pair in self.comparisons or []:
            unknown = [a for a in pair if a not in names]
            if unknown:
                raise ValueError(f"comparisons name unknown arms: {', '.join(unknown)}")
        if self.sweep is not None:
            unknown = [a for a in self.sweep.arms if a not in names]
            if unknown:
                raise ValueError(f"sweep.arms names unknown arms: {', '.join(unknown)}")
            swept = [a for a in self.arms if a.name in self.sweep.arms]
            if self.sweep.aft_examples and any(not a.aft for a in swept):
                raise ValueError("sweep.arms must have AFT to sweep its size: "
                                 f"{', '.join(a.name for a in swept if not a.aft)}")
            if self.sweep.msm_documents and any(not a.midtrain for a in swept):
                raise ValueError("sweep.arms must midtrain to sweep the MSM dose: "
                                 f"{', '.join(a.name for a in swept if not a.midtrain)}")
        return self

    @model_validator(mode="after")
    def _balance_pairs(self) -> "ExperimentConfig":
        midtrained = {arm.midtrain for arm in self.arms if arm.midtrain and arm.midtrain != "neutral"}
        seen: set[frozenset[str]] = set()
        for index, pair in enumerate(self.balance.pairs or []):
            where = f"balance.pairs[{index}]"
            for name in pair:
                if name not in self.specs:
                    raise ValueError(f"{where} names an unknown spec {name!r} (specs: {', '.join(self.specs)})")
                if name not in midtrained:
                    raise ValueError(f"{where}: no arm midtrains on spec {name!r}; a pair balances the corpora of "
                                     "two MSM arms")
            if pair[0] == pair[1]:
                raise ValueError(f"{where} pairs spec {pair[0]!r} with itself")
            if frozenset(pair) in seen:
                raise ValueError(f"{where} repeats the pair {pair[0]} / {pair[1]}")
            seen.add(frozenset(pair))
        if not self.balance.trim:
            return self
        pairs = self.mirrored_pairs()
        if not pairs:
            raise ValueError("balance.trim is true but there is no mirrored pair to trim: list them in "
                             "balance.pairs, or compare two arms midtrained on different specs in `comparisons`")
        for name in {name for pair in pairs for name in pair}:
            mine = [f"{a} / {b}" for a, b in pairs if name in (a, b)]
            if len(mine) > 1:
                raise ValueError(f"balance.trim: spec {name!r} is in {len(mine)} mirrored pairs ({', '.join(mine)}), "
                                 "but its arms can train on one trimmed corpus only: list the pairs to trim in "
                                 "balance.pairs")
        return self

    def comparison_pairs(self) -> list[tuple[str, str]]:
        if self.comparisons is not None:
            return [tuple(pair) for pair in self.comparisons]  # type: ignore[misc]
        first = self.arms[0].name
        return [(arm.name, first) for arm in self.arms[1:]]

    def mirrored_pairs(self) -> list[tuple[str, str]]:
        """The spec pairs whose corpora are balanced: `balance.pairs`, or else the specs of every two arms
        midtrained on different specs that `comparisons` sets side by side."""
        if self.balance.pairs is not None:
            return [tuple(pair) for pair in self.balance.pairs]  # type: ignore[misc]
        midtrain = {arm.name: arm.midtrain for arm in self.arms}
        found: list[tuple[str, str]] = []
        for first, second in self.comparison_pairs():
            a, b = midtrain[first], midtrain[second]
            if a and b and a != b and "neutral" not in (a, b) and (a, b) not in found and (b, a) not in found:
                found.append((a, b))
        return found


def load_experiment(path: str | Path) -> ExperimentConfig:
    return load_config(path, ExperimentConfig)
