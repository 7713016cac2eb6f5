"""The stage contract: what every stage kind provides, so that planning, running, previewing and reporting
work on any kind without knowing it.

A stage kind (corpus, midtrain, the values eval, ...) is one module in `msmkit/stages/` that defines:

- a **job**: the typed inputs of one stage instance (its settings and where its inputs come from). A job
  names the inputs that change its outputs in `identity()`, which the experiment hashes into the stage's
  key; inputs produced by other stages are `StageRef`s, and become the stage's dependencies;
- an **outputs** class: names the files the stage writes (as class constants), holds the summary kept in
  `done.json`, and loads both back from a folder; report hooks (notes, statistics, samples, per-item eval
  outcomes) have empty defaults;
- a **kind** object with `run(job, folder, env) -> outputs`, the one entry point that both the `msm`
  command and `msm run` call, and `estimate(job, preview) -> Estimate` for `msm run --preview`.

The experiment's registry (`msmkit.experiment.registry`) lists the kinds.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any, Callable, ClassVar, Generic, Iterator, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from msmkit.errors import MsmError
from msmkit.fingerprint import content_hash
from msmkit.io import read_jsonl
from msmkit.stages.eval_engine import EvalEngine

Say = Callable[[str], None]


class StageFailed(MsmError):
    """A stage finished without the outputs its dependents need."""


@dataclass(frozen=True)
class StageRef:
    """Another stage's outputs, as a job input: the planner fills it; the runner resolves it. `part` names one
    part of outputs that hold several (a balance stage's two trimmed corpora)."""

    key: str
    folder: Path
    part: str | None = None


@dataclass(frozen=True)
class FileInput:
    """A file or folder the user gave; its identity is its content."""

    path: Path

    def identity(self) -> str:
        return content_hash(self.path)


Source = FileInput | StageRef


def source_identity(source: Source | None) -> str | None:
    """What a job hashes for one input: a file's content; for a stage only the part it reads, if any (its key is
    a dependency)."""
    if isinstance(source, StageRef):
        return source.part
    return source.identity() if isinstance(source, FileInput) else None


class Sample(BaseModel):
    """A piece of model text for the report's sample browser."""

    kind: str  # document | demonstration | transcript | value choice
    title: str
    text: str
    meta: dict[str, Any] = Field(default_factory=dict)


class StageOutputs(BaseModel):
    """A finished stage: its folder, the files its class names, and the summary kept in done.json."""

    model_config = ConfigDict(extra="forbid")
    folder: Path = Field(exclude=True)

    @classmethod
    def load(cls, folder: Path, summary: dict[str, Any]) -> "StageOutputs":
        return cls.model_validate({**summary, "folder": folder})

    def summary(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def declared_files(cls) -> dict[str, str]:
        """The file names this kind writes (its upper-case string constants), for checks and docs."""
        return {name: value for klass in reversed(cls.__mro__) for name, value in vars(klass).items()
                if name.isupper() and isinstance(value, str)}

    # Report hooks: a kind overrides the ones it has something for.
    def notes(self, label: str) -> list[str]:
        return []

    def statistics(self) -> dict[str, Any] | None:
        return None

    def samples(self, label: str, n: int) -> list[Sample]:
        return []

    def part(self, name: str) -> "StageOutputs":
        """One named part, for outputs that hold several (a StageRef with `part` reads it)."""
        raise StageFailed(f"{type(self).__name__} has no part {name!r}")


class DocumentSet(StageOutputs):
    """Outputs that are a training corpus of documents (JSONL, a `text` column)."""

    @property
    def documents_file(self) -> Path:
        raise NotImplementedError


class ChatSet(StageOutputs):
    """Outputs that are chat training data (JSONL, `messages`), with and without chain of thought."""

    def chat_file(self, cot: bool) -> Path:
        raise NotImplementedError


class SpecFile(StageOutputs):
    """Outputs that are a Model Spec."""

    @property
    def spec_file(self) -> Path:
        raise NotImplementedError


class TrainedModel(StageOutputs):
    """Outputs that are a trained model (a PEFT adapter or full weights, with its tokenizer)."""

    steps: int
    planned_steps: int
    tokens: int
    supervised_tokens: int
    final_loss: float | None
    train_loss: float | None
    few_steps_allowed: bool
    min_optimizer_steps: int

    @property
    def model_dir(self) -> Path:
        raise NotImplementedError


Outcomes = dict[str, dict[str, float]]  # metric -> item id -> outcome


class EvalOutputs(StageOutputs):
    """Outputs of an eval suite: per-item outcomes by metric, which the report aggregates over seeds."""

    MEASURE: ClassVar[str] = "score"  # what its outcomes measure, for the report's tables
    UNIT: ClassVar[str] = "item"  # what the report's intervals resample: the independent unit of the eval

    def outcomes(self) -> Outcomes:
        raise NotImplementedError

    def grouped_outcomes(self) -> dict[str, dict[str, list[float]]]:
        """Per metric, the outcomes of each unit: one per item, or every epoch of a repeated condition."""
        return {metric: {item: [value] for item, value in values.items()} for metric, values in self.outcomes().items()}

    def counts(self) -> dict[str, int]:
        """What the report counts per arm: items scored, parse failures, refusals, errors (those that apply)."""
        return {}

    def scalars(self) -> dict[str, float]:
        """Whole-model measurements with no items (e.g. perplexity of one text): metric -> value."""
        return {}

    def diagnostics(self) -> dict[str, dict[str, float]]:
        """Per metric, named rates that say how far to trust it (e.g. order consistency), averaged over seeds
        by the report and passed to `caveats`."""
        return {}

    @classmethod
    def caveats(cls, metric: str, diagnostics: dict[str, float]) -> list[str]:
        """Warnings about one metric, from its seed-averaged diagnostics."""
        return []


class Phase(IntEnum):
    """Plans run generation first, then each model's training and its evals."""

    GENERATION = 0
    MODEL = 1


@dataclass(frozen=True)
class Estimate:
    """`msm run --preview`'s view of one stage, plus what it produces for the stages after it."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = 0.0  # None: a model with no known price
    train_tokens: int = 0
    flops: float = 0.0
    data_tokens: int = 0  # tokens of data this stage produces (a corpus, an AFT set)
    examples: int = 0  # rows of chat data it produces
    spec_text: str | None = None  # a spec it produces (variants), estimated


@dataclass
class PreviewContext:
    params: float  # the base model's parameter count
    upstream: dict[str, Estimate] = field(default_factory=dict)  # stage key -> its estimate

    def of(self, ref: StageRef) -> Estimate:
        return self.upstream[ref.key]

    def spec_text(self, source: Source) -> str:
        if isinstance(source, FileInput):
            return source.path.read_text(encoding="utf-8")
        return self.of(source).spec_text or ""


class StageJob(ABC):
    """The typed inputs of one stage instance."""

    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """What changes this stage's outputs (JSON-able); hashed into its key with its dependencies."""

    def sources(self) -> Iterator[Source | None]:
        """Every input; the stage references among them are the stage's dependencies."""
        return iter(())

    def dependencies(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.key for s in self.sources() if isinstance(s, StageRef)))


@dataclass
class StageEnv:
    """What a running stage may use besides its job: a way to speak, and its dependencies' outputs."""

    say: Say
    load: Callable[[StageRef], StageOutputs]
    services: dict[type, Any] = field(default_factory=dict)  # shared helpers by type (a model cache, a launcher)

    @classmethod
    def standalone(cls, say: Say) -> "StageEnv":
        """For one stage run by its own command: every input is a file the user named."""
        def no_stages(ref: StageRef) -> StageOutputs:
            raise StageFailed(f"a single command reads files, not stage {ref.key}")
        return cls(say=say, load=no_stages)

    def service(self, kind: type[T], default: Callable[[], T]) -> T:
        if kind not in self.services:
            self.services[kind] = default()
        return self.services[kind]  # type: ignore[no-any-return]

    def spec_file(self, source: Source) -> Path:
        return source.path if isinstance(source, FileInput) else self._loaded(source, SpecFile).spec_file

    def documents_file(self, source: Source) -> Path:
        return source.path if isinstance(source, FileInput) else self._loaded(source, DocumentSet).documents_file

    def chat_file(self, source: Source, cot: bool) -> Path:
        return source.path if isinstance(source, FileInput) else self._loaded(source, ChatSet).chat_file(cot)

    def model_path(self, source: Source | str) -> str:
        """A model input: a name or folder as given, or a training stage's trained model."""
        if isinstance(source, str):
            from msmkit.hub import is_hub_ref, resolve_model_path
            from msmkit.offline import downloads_allowed

            if is_hub_ref(source):  # a released model, from the local Hugging Face cache unless downloads are on
                return str(resolve_model_path(source, allow_download=downloads_allowed()))
            return source
        if isinstance(source, FileInput):
            return str(source.path)
        return str(self._loaded(source, TrainedModel).model_dir)

    def _loaded(self, ref: StageRef, wanted: type[OutputsT]) -> OutputsT:
        outputs = self.load(ref)
        if ref.part is not None:
            outputs = outputs.part(ref.part)
        if not isinstance(outputs, wanted):
            raise StageFailed(f"stage {ref.key} produced {type(outputs).__name__}, not the {wanted.__name__} "
                              "this stage reads")
        return outputs


JobT = TypeVar("JobT", bound=StageJob)
OutputsT = TypeVar("OutputsT", bound=StageOutputs)
T = TypeVar("T")


class StageKind(ABC, Generic[JobT, OutputsT]):
    """One kind of stage. Subclasses set the class attributes and implement run and estimate."""

    name: ClassVar[str]  # the stage folder prefix and the kind shown in status and preview
    phase: ClassVar[Phase]
    outputs: ClassVar[type[StageOutputs]]

    @abstractmethod
    def run(self, job: JobT, folder: Path, env: StageEnv) -> OutputsT:
        """Do the work into `folder` (resuming whatever partial work is there) and return its outputs."""

    @abstractmethod
    def estimate(self, job: JobT, preview: PreviewContext) -> Estimate:
        """Calls, tokens, dollars and FLOPs of this stage, from its job and its upstream estimates."""

    def plan_problems(self, job: JobT, preview: PreviewContext) -> list[str]:
        """Why this stage would fail once it runs, found from the plan alone (e.g. too few optimizer steps)."""
        return []

    def load_outputs(self, folder: Path, summary: dict[str, Any]) -> StageOutputs:
        return self.outputs.load(folder, summary)


@dataclass
class EvalPlanContext:
    """What an eval kind may take from the experiment when it plans one model's eval."""

    spec: Callable[[str], Source]  # a spec name of the experiment -> its file or variant stage
    spec_names: list[str]
    generator: Any  # LLMConfig: the experiment's generator
    judge: Any  # LLMConfig | None: the experiment's judge
    model_name: str
    provider_name: str | None
    prompt_style: str = "completion"  # "completion" or "chat": how every arm's evals prompt the model
    earlier: dict[str, StageRef] = field(default_factory=dict)  # suite -> this model's eval of it planned before
    engine: EvalEngine = field(default_factory=EvalEngine)  # how the evals whose model writes text run it


class EvalStageKind(StageKind[JobT, OutputsT]):
    """An eval suite: an experiment's `evals` entry (its settings model, told apart by `suite`) run on a model."""

    settings_model: ClassVar[type[BaseModel]]
    job_type: ClassVar[Callable[..., StageJob]]

    @classmethod
    def suite(cls) -> str:
        return str(cls.settings_model.model_fields["suite"].default)

    def job_for(self, model: Source | str, settings: BaseModel, context: EvalPlanContext) -> JobT:
        return self.job_type(model=model, settings=settings)  # type: ignore[return-value]

    def resolve(self, settings: BaseModel, config_dir: Path) -> BaseModel:
        """The settings with relative file paths made relative to the config file's folder."""
        return settings

    def check(self, settings: BaseModel, base_model: str, where: str) -> None:
        """Raise a ConfigError naming `where` if these settings cannot run (called when the plan is built)."""


def first_rows(path: Path, n: int) -> list[dict[str, Any]]:
    """The first `n` records of a JSONL file (for samples)."""
    rows = []
    for row in read_jsonl(path):
        if len(rows) >= n:
            break
        rows.append(row)
    return rows


def stats_view(path: Path) -> dict[str, Any] | None:
    """A stats.json-like file without its bulky per-item lists and usage (the report shows those elsewhere)."""
    if not path.is_file():
        return None
    view = json.loads(path.read_text(encoding="utf-8"))
    view.get("token_lengths", {}).pop("values", None)
    view.pop("usage", None)
    return view
