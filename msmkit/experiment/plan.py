"""An experiment config as an ordered list of content-addressed stages, and the grid points (arm x seed x AFT
size) whose models the evals score.

A stage's key hashes its job's identity (what changes its outputs, as each stage kind defines it: file
contents, the answer-relevant LLM settings, training settings, prompt hashes) and the keys of the stages it
reads. Two arms that need the same corpus, AFT set or midtrained checkpoint therefore name the same stage, and
it is built once.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from msmkit.config import deep_merge, validate_config
from msmkit.data.mix import MixConfig
from msmkit.errors import ConfigError
from msmkit.eval.items import BUILTIN_VALUE_SETS
from msmkit.experiment.config import ArmConfig, ExperimentConfig, SpecVariantConfig
from msmkit.experiment.registry import eval_kind
from msmkit.experiment.store import inputs_key
from msmkit.generate.aft.config import AftDataConfig
from msmkit.generate.baselines.neutral import NeutralConfig
from msmkit.generate.corpus.config import CorpusConfig
from msmkit.hub import is_hub_ref
from msmkit.stages.aft_data import AFT_DATA, MODE_TITLES, AftDataJob
from msmkit.stages.balance import BALANCE, SIDES, BalanceJob
from msmkit.stages.contract import EvalPlanContext, FileInput, Source, StageJob, StageKind, StageRef
from msmkit.stages.corpus import CORPUS, CorpusJob
from msmkit.stages.mix import MIX, MixJob
from msmkit.stages.neutral import NEUTRAL, NeutralJob
from msmkit.stages.training import AFT, MIDTRAIN, TrainJob, base_prompt_style
from msmkit.stages.variant import VARIANT, VariantJob
from msmkit.train.config import TrainConfig


@dataclass
class Stage:
    """One node of the plan: a stage kind, a human label, and the job it runs."""

    kind: StageKind
    label: str
    job: StageJob
    key: str = field(init=False)

    def __post_init__(self) -> None:
        self.key = inputs_key(self.kind.name, self.key_inputs())

    @property
    def deps(self) -> tuple[str, ...]:
        return self.job.dependencies()

    def key_inputs(self) -> dict[str, Any]:
        return {**self.job.identity(), "deps": list(self.deps)}


@dataclass
class GridPoint:
    """One model the evals score: an arm at one seed and AFT size (the base model, or the arm's last training)."""

    arm: str
    seed: int
    aft_examples: int | None  # None: the full AFT set
    model_stage: str | None  # None: the untrained base model
    aft_stage: str | None
    evals: dict[int, str]  # index in config.evals -> eval stage key
    midtrain_stage: str | None = None
    msm_documents: int | None = None  # None: the whole corpus


@dataclass(frozen=True)
class MirroredPair:
    """Two specs of a dissociation design whose MSM corpora should balance, and the stages that hold them."""

    specs: tuple[str, str]
    corpora: tuple[str, str]  # their corpus stages' keys
    balance: str | None  # the balance stage that trims them (balance.trim), else None


@dataclass
class Plan:
    config: ExperimentConfig
    config_dir: Path
    root: Path  # stage folders live here
    stages: dict[str, Stage]
    points: list[GridPoint]
    prompt_style: str = "completion"  # how every arm's evals prompt the model
    base_model: str = "embedded"  # the base model as it loads here (a config-relative folder made absolute)
    mirrored: list[MirroredPair] = field(default_factory=list)

    def dir(self, key: str) -> Path:
        return self.root / key

    def ordered(self) -> list[Stage]:
        return list(self.stages.values())

    def as_json(self) -> dict[str, Any]:
        return {"stages": [{"key": s.key, "kind": s.kind.name, "label": s.label, "deps": list(s.deps)}
                           for s in self.ordered()],
                "points": [{"arm": p.arm, "seed": p.seed, "aft_examples": p.aft_examples,
                            "msm_documents": p.msm_documents, "model_stage": p.model_stage,
                            "aft_stage": p.aft_stage, "evals": {str(k): v for k, v in p.evals.items()}}
                           for p in self.points]}


class Planner:
    def __init__(self, config: ExperimentConfig, config_path: Path, root: Path) -> None:
        self.config = config
        self.config_path = config_path
        self.config_dir = config_path.parent
        self.root = root
        self.stages: dict[str, Stage] = {}
        self.base_model = self._resolve_model_name(config.base_model)
        self.train = self._validated(config.train, TrainConfig, "train")
        self.prompt_style = config.eval_prompt_style if config.eval_prompt_style != "auto" \
            else base_prompt_style(self.base_model)
        self.pairs = config.mirrored_pairs()
        # spec -> (its pair, its side) for the pairs trimmed before midtraining
        self.trimmed = {name: (pair, side) for pair in self.pairs for side, name in zip(SIDES, pair)} \
            if config.balance.trim else {}

    # -- helpers --------------------------------------------------------------------------------
    def _validated(self, data: dict[str, Any], model: type, section: str) -> Any:
        return validate_config(data, model, f"{self.config_path} (section '{section}')")

    def _path(self, text: str, where: str) -> Path:
        path = Path(text).expanduser()
        path = path if path.is_absolute() else (self.config_dir / path).resolve()
        if not path.exists():
            raise ConfigError(f"{self.config_path}: {where}: {text!r} does not exist (paths are relative to the "
                              f"config file's folder, {self.config_dir})")
        return path

    def _resolve_model_name(self, name: str) -> str:
        if name == "embedded":
            return name
        candidate = Path(name).expanduser()
        local = candidate if candidate.is_absolute() else self.config_dir / candidate
        return str(local.resolve()) if local.exists() else name

    def _add(self, kind: StageKind, label: str, job: StageJob) -> StageRef:
        stage = Stage(kind, label, job)
        self.stages.setdefault(stage.key, stage)
        return StageRef(stage.key, self.root / stage.key)

    def _llm_defaults(self) -> dict[str, Any]:
        return self.config.generator.model_dump(mode="json")

    def _audit_items(self) -> list[str]:
        """The value item sets this experiment evaluates on, for the corpus and AFT audits (released sets are
        checked where they are read, not here: they may not be downloaded when generation runs)."""
        found = []
        for settings in self.config.evals:
            for item in getattr(settings, "items", []):
                if is_hub_ref(item):
                    continue
                path = Path(item)
                found.append(item if path.is_absolute() or item in BUILTIN_VALUE_SETS
                             else str((self.config_dir / item).resolve()))
        return list(dict.fromkeys(found)) or list(BUILTIN_VALUE_SETS)

    # -- specs and generation -------------------------------------------------------------------
    def spec(self, name: str) -> Source:
        entry = self.config.specs[name]
        if isinstance(entry, str):
            return FileInput(self._path(entry, f"specs.{name}"))
        return self._variant(name, entry)

    def _variant(self, name: str, entry: SpecVariantConfig) -> StageRef:
        generator = self.config.generator if entry.variant.needs_llm else None
        job = VariantJob(self.spec(entry.of), entry.variant, entry.options, generator, self.config.model_name,
                         self.config.provider_name)
        return self._add(VARIANT, f"spec {name} ({entry.variant.value} of {entry.of})", job)

    def corpus(self, spec_name: str) -> StageRef:
        data = deep_merge({"generator": self._llm_defaults(),
                           "judge": self.config.judge.model_dump(mode="json") if self.config.judge else None,
                           "subject": {"model_name": self.config.model_name,
                                       "provider_name": self.config.provider_name},
                           "audit": {"eval_items": self._audit_items()}}, self.config.corpus)
        settings: CorpusConfig = self._validated(data, CorpusConfig, "corpus")
        return self._add(CORPUS, f"MSM corpus from spec {spec_name}", CorpusJob(self.spec(spec_name), settings))

    def balance(self, pair: tuple[str, str]) -> StageRef:
        a, b = pair
        job = BalanceJob(self.corpus(a), self.corpus(b), self.config.balance.tolerance, pair)
        return self._add(BALANCE, f"balance of mirrored corpora {a} vs {b}", job)

    def training_corpus(self, spec_name: str) -> StageRef:
        """The corpus a spec's MSM arms train on: its own, or its side of its mirrored pair trimmed to balance."""
        if spec_name not in self.trimmed:
            return self.corpus(spec_name)
        pair, side = self.trimmed[spec_name]
        return replace(self.balance(pair), part=side)

    def mirrored(self) -> list[MirroredPair]:
        return [MirroredPair(pair, (self.corpus(pair[0]).key, self.corpus(pair[1]).key),
                             self.balance(pair).key if self.config.balance.trim else None) for pair in self.pairs]

    def neutral(self) -> StageRef:
        # as many tokens as the corpus its MSM arms train on, trimmed or not
        match = self.training_corpus(self.config.neutral_match or next(iter(self.config.specs)))
        settings: NeutralConfig = self._validated(deep_merge({"generator": self._llm_defaults()}, self.config.neutral),
                                                  NeutralConfig, "neutral")
        return self._add(NEUTRAL, "token-matched neutral corpus", NeutralJob(match, settings))

    def _aft_settings(self) -> AftDataConfig:
        judge: dict[str, Any] = {"llm": self.config.judge.model_dump(mode="json")} if self.config.judge else {}
        data = deep_merge({"generator": self._llm_defaults(), "judge": judge,
                           "identity": {"model_name": self.config.model_name,
                                        "provider_name": self.config.provider_name},
                           "audit": {"eval_items": self._audit_items()}}, self.config.aft_data)
        settings: AftDataConfig = self._validated(data, AftDataConfig, "aft_data")
        value_free = settings.value_free
        if value_free.preferences:
            value_free.preferences = str(self._path(value_free.preferences, "aft_data.value_free.preferences"))
        value_free.guard_specs = [str(self._path(p, "aft_data.value_free.guard_specs")) for p in value_free.guard_specs]
        if self.config.sweep is not None and self.config.sweep.aft_examples:
            # one set large enough for every sweep size; sizes take its first rows
            settings.counts.examples = max(settings.counts.examples, *self.config.sweep.aft_examples)
        return settings

    def aft_examples(self) -> int:
        return self._aft_settings().counts.examples

    def aft_data(self, arm: ArmConfig) -> StageRef:
        """The chat data an arm's AFT trains on (mixed with general data when the config says so)."""
        assert arm.aft is not None
        source, mix = arm.aft, self._mix()
        if source.mode == "instruction-mix":
            assert mix is not None
            return self._add(MIX, "general instruction data alone", MixJob(None, self._general(), mix, False))
        spec_name = source.spec or self.config.shared_aft_spec or next(iter(self.config.specs))
        mode = "aft" if source.mode in ("shared", "spec") else source.mode
        label = f"{MODE_TITLES[mode]} from spec {spec_name}"
        data = self._add(AFT_DATA, label, AftDataJob(mode, self.spec(spec_name), self._aft_settings()))
        if mix is None:
            return data
        return self._add(MIX, f"{label} + general instruction data",
                         MixJob(data, self._general(), mix, self.config.aft_cot))

    def _mix(self) -> MixConfig | None:
        """aft_mix with a local preset dataset made absolute (a hub reference stays as written)."""
        mix = self.config.aft_mix
        if mix is None or mix.dataset is None or is_hub_ref(mix.dataset):
            return mix
        return mix.model_copy(update={"dataset": str(self._path(mix.dataset, "aft_mix.dataset"))})

    def _general(self) -> FileInput | None:
        mix = self.config.aft_mix
        return FileInput(self._path(mix.general, "aft_mix.general")) if mix and mix.general else None

    # -- training and evaluation -----------------------------------------------------------------
    def midtrain(self, source: str, seed: int, documents: int | None = None) -> StageRef:
        corpus = self.neutral() if source == "neutral" else self.training_corpus(source)
        config = self.train.midtrain.model_copy(deep=True)
        config.optim.seed, config.data.max_rows = seed, documents
        dose = f", first {documents} documents" if documents else ""
        trimmed = " (trimmed to balance)" if source in self.trimmed else ""
        return self._add(MIDTRAIN, f"midtrain on {source} corpus{trimmed}, seed {seed}{dose}",
                         TrainJob("midtrain", corpus, self.base_model, config, launcher=self.config.launcher))

    def aft(self, arm: ArmConfig, seed: int, size: int | None, documents: int | None = None) -> StageRef:
        data = self.aft_data(arm)
        start: Source | str = self.midtrain(arm.midtrain, seed, documents) if arm.midtrain else self.base_model
        config = self.train.aft.model_copy(deep=True)
        config.optim.seed, config.data.max_rows = seed, size
        where = f"after midtrain on {arm.midtrain}" if arm.midtrain else "on the base model"
        size_note = (f", first {size} examples" if size else "") + (f", MSM on {documents} documents" if documents
                                                                    else "")
        return self._add(AFT, f"AFT ({arm.aft}) {where}, seed {seed}{size_note}",
                         TrainJob("aft", data, start, config, cot=self.config.aft_cot, launcher=self.config.launcher))

    def _adapter(self, arm: ArmConfig) -> str | None:
        """An adapter arm's model: a hub reference as given, or a local folder made absolute."""
        if arm.adapter is None or is_hub_ref(arm.adapter):
            return arm.adapter
        return str(self._path(arm.adapter, f"arms.{arm.name}.adapter"))

    def evaluation(self, model: StageRef | None, index: int, settings: Any, earlier: dict[str, StageRef],
                   adapter: str | None = None) -> StageRef:
        kind = eval_kind(settings)
        settings = kind.resolve(settings, self.config_dir)
        where = f"{self.config_path}: evals[{index}]"
        kind.check(settings, self.base_model, where)  # a bad entry fails now, not after training
        context = EvalPlanContext(spec=self.spec, spec_names=list(self.config.specs), generator=self.config.generator,
                                  judge=self.config.judge, model_name=self.config.model_name,
                                  provider_name=self.config.provider_name, prompt_style=self.prompt_style,
                                  earlier=dict(earlier), engine=self.config.eval_engine)
        who = self.stages[model.key].label if model else (adapter or "base model")
        try:
            job = kind.job_for(model or adapter or self.base_model, settings, context)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        return self._add(kind, f"eval {settings.suite}: {who}", job)

    def point(self, arm: ArmConfig, seed: int, size: int | None, documents: int | None = None) -> GridPoint:
        aft = self.aft(arm, seed, size, documents) if arm.aft else None
        midtrain = self.midtrain(arm.midtrain, seed, documents) if arm.midtrain else None
        model = aft or midtrain
        evals: dict[int, str] = {}
        earlier: dict[str, StageRef] = {}
        for index, settings in enumerate(self.config.evals):
            ref = self.evaluation(model, index, settings, earlier, self._adapter(arm))
            earlier.setdefault(settings.suite, ref)
            evals[index] = ref.key
        return GridPoint(arm.name, seed, size, model.key if model else None, aft.key if aft else None, evals,
                         midtrain.key if midtrain else None, documents)


def build_plan(config: ExperimentConfig, config_path: str | Path, root: str | Path) -> Plan:
    """Every stage the experiment needs, generation first, then each grid point's training and evals in order."""
    planner = Planner(config, Path(config_path).resolve(), Path(root))
    points: list[GridPoint] = []
    for seed in config.seeds:
        for arm in config.arms:
            sizes: list[int | None] = [None]
            doses: list[int | None] = [None]
            if config.sweep is not None and arm.name in config.sweep.arms:
                if arm.aft and config.sweep.aft_examples:
                    full = planner.aft_examples()  # the full set is the None point already
                    sizes += sorted({size for size in config.sweep.aft_examples if size < full})
                doses += sorted(set(config.sweep.msm_documents))
            for documents in doses:
                for size in sizes:
                    points.append(planner.point(arm, seed, size, documents))
    mirrored = planner.mirrored()  # the pairs' specs are midtrained: their stages are planned already
    ordered = sorted(planner.stages.values(), key=lambda s: s.kind.phase)  # stable: generation first, in order
    return Plan(config, planner.config_dir, planner.root, {s.key: s for s in ordered}, points, planner.prompt_style,
                planner.base_model, mirrored)


def plan_for(config_path: Path, out: Path) -> Plan:
    """The plan of an experiment config whose stage folders live in `out`."""
    from msmkit.experiment.config import load_experiment
    from msmkit.experiment.layout import STAGES_DIR

    return build_plan(load_experiment(config_path), config_path, out / STAGES_DIR)
