"""Stage kind `eval-values`: value-generalization items scored by forced choice (log-probabilities of both
options, in both orders, length-normalised) on a local model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterator, Literal

from pydantic import Field, model_validator

from msmkit.config import StrictModel
from msmkit.errors import ConfigError
from msmkit.fingerprint import content_hash
from msmkit.hub import is_hub_ref, parse_ref
from msmkit.paths import safe_component
from msmkit.prompts import prompt_family
from msmkit.runs import RunDir
from msmkit.stages.contract import (
    Estimate,
    EvalOutputs,
    EvalPlanContext,
    EvalStageKind,
    Outcomes,
    Phase,
    PreviewContext,
    Sample,
    Source,
    StageEnv,
    StageJob,
    source_identity,
)
from msmkit.stages.training import model_identity

_ITEM_TOKENS = 120  # prompt + option, per scoring pass
_BUILTIN = ("pro_america", "pro_affordability", "cheese")


class ValuesEvalSettings(StrictModel):
    suite: Literal["values"] = "values"
    # Built-in set names (pro_america, pro_affordability, cheese) or JSONL files in the value-item format.
    items: list[str] = Field(default_factory=lambda: list(_BUILTIN))
    split: Literal["dev", "test", "all"] = "test"
    limit: int | None = Field(None, ge=1)  # first N items per set (quick runs)
    batch_size: int = Field(16, ge=1)  # items per forward pass; does not change the scores

    @model_validator(mode="after")
    def _distinct_suite_names(self) -> "ValuesEvalSettings":
        names = [set_name(item) for item in self.items]
        if len(set(names)) < len(names):
            raise ValueError(f"evals items share a results folder name ({', '.join(names)}); rename the files")
        return self

    def item_files(self) -> list[Path]:
        from msmkit.eval.items import BUILTIN_VALUE_SETS

        return [Path(item) for item in self.items if item not in BUILTIN_VALUE_SETS and not is_hub_ref(item)]


class ValuesEvalOutputs(EvalOutputs):
    """`values/<suite>/items.jsonl` per item set (one record per item, both orders scored), with summaries."""
    MEASURE: ClassVar[str] = "rate choosing the target value"

    suites: dict[str, dict[str, Any]]  # suite -> target rate, position bias, order consistency, notes

    def outcomes(self) -> Outcomes:
        from msmkit.eval.compare import item_outcomes

        return {f"values: {suite}": item_outcomes(self.folder, suite) for suite in self.suites}

    def diagnostics(self) -> dict[str, dict[str, float]]:
        found: dict[str, dict[str, float]] = {}
        for suite, summary in self.suites.items():
            rates = found.setdefault(f"values: {suite}", {})
            if summary["order_consistency_rate"].get("mean") is not None:
                rates["order_consistency"] = summary["order_consistency_rate"]["mean"]
            if (summary.get("length_bias") or {}).get("correlation") is not None:
                rates["length_correlation"] = summary["length_bias"]["correlation"]
        return found

    @classmethod
    def caveats(cls, metric: str, diagnostics: dict[str, float]) -> list[str]:
        notes = []
        consistency = diagnostics.get("order_consistency")
        if consistency is not None and consistency < 0.5:
            notes.append(f"only {consistency:.0%} of items get the same choice in both option orders: choices mostly "
                         "follow position, not content")
        length = diagnostics.get("length_correlation")
        if length is not None:
            notes.append(f"choosing the target vs its relative length: r = {length:+.2f}"
                         + (" (choices partly follow option length)" if abs(length) >= 0.3 else ""))
        return notes

    def counts(self) -> dict[str, int]:
        return {"items scored": sum(int(s["target_rate"].get("n") or 0) for s in self.suites.values())}

    def chosen(self, suite: str) -> dict[str, str | None]:
        """Item id -> the value of the option this model chose (None: a tie)."""
        from msmkit.eval.compare import item_records

        return {record["id"]: record["chosen_value"] for record in item_records(self.folder, suite)}


@dataclass
class ValuesEvalJob(StageJob):
    model: Source | str  # a model name or folder, or a training stage's model
    settings: ValuesEvalSettings
    prompt_style: str = "auto"  # completion or chat, the same for every arm of an experiment

    def identity(self) -> dict[str, Any]:
        model = model_identity(self.model) if isinstance(self.model, str) else source_identity(self.model)
        return {"model": model, "prompts": prompt_family("eval"),
                "sets": [parse_ref(item, "dataset").text() if is_hub_ref(item) else set_name(item)
                         for item in self.settings.items],  # a file's content, not its path:
                "files": sorted(content_hash(path) for path in self.settings.item_files()),
                "prompt_style": self.prompt_style,
                "settings": self.settings.model_dump(mode="json", exclude={"batch_size", "items"})}

    def sources(self) -> Iterator[Source | None]:
        if not isinstance(self.model, str):
            yield self.model


def set_name(source: str) -> str:
    """The results folder of an item set: a built-in name, a file's stem, or a released set's repository name."""
    from msmkit.eval.items import suite_name

    return safe_component(parse_ref(source, "dataset").repo_id.split("/")[-1]) if is_hub_ref(source) \
        else suite_name(source)


def load_suites(settings: ValuesEvalSettings) -> dict[str, list[Any]]:
    """Item sets by results-folder name. A released set (hf:...) is imported from its own schema, all its rows."""
    from msmkit.eval.items import load_value_items
    from msmkit.eval.released import load_released_items
    from msmkit.offline import downloads_allowed

    split = None if settings.split == "all" else settings.split
    suites = {}
    for source in settings.items:
        items = load_released_items(source, subset=settings.limit is not None, allow_download=downloads_allowed()
                                    ).items if is_hub_ref(source) else load_value_items(source, split=split)
        suites[set_name(source)] = items[:settings.limit] if settings.limit else items
    return suites


class ValuesEvalStage(EvalStageKind[ValuesEvalJob, ValuesEvalOutputs]):
    name = "eval-values"
    phase = Phase.MODEL
    outputs = ValuesEvalOutputs
    settings_model = ValuesEvalSettings
    job_type = ValuesEvalJob

    def job_for(self, model: Source | str, settings: ValuesEvalSettings,  # type: ignore[override]
                context: EvalPlanContext) -> ValuesEvalJob:
        return ValuesEvalJob(model, settings, context.prompt_style)

    def resolve(self, settings: ValuesEvalSettings, config_dir: Path) -> ValuesEvalSettings:  # type: ignore[override]
        from msmkit.eval.items import BUILTIN_VALUE_SETS

        items = [item if item in BUILTIN_VALUE_SETS or is_hub_ref(item) or Path(item).is_absolute()
                 else str((config_dir / item).resolve()) for item in settings.items]
        return settings.model_copy(update={"items": items})

    def check(self, settings: ValuesEvalSettings, base_model: str, where: str) -> None:  # type: ignore[override]
        for item in settings.items:
            if is_hub_ref(item):
                parse_ref(item, "dataset")  # a malformed reference fails here; a missing download when it runs
        missing = [str(path) for path in settings.item_files() if not path.is_file()]
        if missing:
            raise ConfigError(f"{where}.items: {', '.join(missing)} not found (a built-in set name: "
                              "pro_america, pro_affordability, cheese; or a JSONL file of value items)")

    def run(self, job: ValuesEvalJob, folder: Path, env: StageEnv) -> ValuesEvalOutputs:
        from msmkit.eval.suites import score_value_suites
        from msmkit.models.model_cache import ModelCache

        model = env.model_path(job.model)
        run = RunDir(folder)
        try:
            run.write_config({"model": model, **job.settings.model_dump(mode="json")}, "eval_config.yaml")
            lm, tokenizer = env.service(ModelCache, ModelCache).get(model)
            summaries = score_value_suites(lm, tokenizer, load_suites(job.settings), run,
                                           batch_size=job.settings.batch_size,
                                           prompt_style=job.prompt_style,  # type: ignore[arg-type]
                                           extra={"model": model, "split": job.settings.split})
        finally:
            run.close()
        return ValuesEvalOutputs(folder=folder, suites={
            name: {key: s.get(key) for key in ("target_rate", "position_bias_rate", "order_consistency_rate",
                                               "length_bias")}
            | {"notes": s.get("notes", [])} for name, s in summaries.items()})

    def estimate(self, job: ValuesEvalJob, preview: PreviewContext) -> Estimate:
        from msmkit.eval.items import load_value_items
        from msmkit.eval.released import RELEASED_COUNTS, schema_of

        settings, split = job.settings, None if job.settings.split == "all" else job.settings.split
        items = 0
        for source in settings.items:  # a released set may not be downloaded yet: its published size
            found = RELEASED_COUNTS[schema_of(parse_ref(source, "dataset"))]["rows"] if is_hub_ref(source) \
                else len(load_value_items(source, split=split))
            items += min(found, settings.limit or found)
        return Estimate(flops=2 * preview.params * items * 4 * _ITEM_TOKENS)


VALUES_EVAL = ValuesEvalStage()


def value_samples(outputs_by_arm: dict[str, ValuesEvalOutputs], settings: ValuesEvalSettings,
                  per_suite: int) -> list[Sample]:
    """A few built-in value items with the option each arm chose."""
    from msmkit.eval.items import BUILTIN_VALUE_SETS, load_value_items

    found = []
    for source in (item for item in settings.items if item in BUILTIN_VALUE_SETS):  # its results folder: its name
        items = load_value_items(source, split=None if settings.split == "all" else settings.split)
        chosen = {arm: outputs.chosen(source) for arm, outputs in outputs_by_arm.items()}
        for item in items[:per_suite]:
            lines = [item.question, "", f"A: {item.options['A']}  ({item.values['A']})",
                     f"B: {item.options['B']}  ({item.values['B']})", ""]
            lines += [f"{arm}: chose {picks.get(item.id) or 'tie / not scored'}" for arm, picks in chosen.items()]
            found.append(Sample(kind="value choice", title=f"{source}: {item.id}", text="\n".join(lines),
                                meta={"domain": item.domain, "target": item.target_value}))
    return found
