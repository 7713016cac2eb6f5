"""The paper's figures as typed data (figures.yaml), with the replications' measurements and each setup."""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from msmkit.config import load_yaml, validate_config
from msmkit.errors import ConfigError

SETUP_KEYS = frozenset({"model", "adapters", "template", "scorer", "prompt", "orders", "temperature", "max_tokens",
                        "judge", "judge_temperature", "judge_calls", "epochs", "grader", "grid", "persona",
                        "scratchpad"})
SetupValue = str | int | float | bool


def _check_setup(setup: dict[str, SetupValue]) -> dict[str, SetupValue]:
    unknown = sorted(set(setup) - SETUP_KEYS)
    if unknown:
        raise ValueError(f"unknown setup keys {unknown}; known: {', '.join(sorted(SETUP_KEYS))}")
    return setup


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Frozen):
    citation: str
    note: str | None = None


class Arm(_Frozen):
    label: str  # the paper's name for the arm
    description: str
    adapter: str  # the released adapter (hub id) that is this arm

    def reference(self) -> str:
        return f"hf:{self.adapter}"


class PaperModel(_Frozen):
    base: str
    arms: dict[str, Arm]


class Measurement(_Frozen):
    """A replication's figure for a cell."""

    source: str
    value: float
    low: float | None = None
    high: float | None = None
    n: int | None = Field(None, gt=0)
    metric: str | None = None  # None = the figure's metric

    @model_validator(mode="after")
    def _interval(self) -> Measurement:
        if (self.low is None) != (self.high is None):
            raise ValueError("give both low and high, or neither")
        if self.low is not None and not self.low <= self.value <= self.high:  # type: ignore[operator]
            raise ValueError(f"value {self.value} is outside its interval [{self.low}, {self.high}]")
        return self


class Cell(_Frozen):
    arm: str
    eval: str
    minus: str | None = None  # for a difference: the arm subtracted
    paper: float | None = None  # the paper's figure; None when the sources give none
    replications: tuple[Measurement, ...] = ()

    def replication(self, metric: str) -> Measurement | None:
        """The first replication figure of this cell for `metric`."""
        return next((m for m in self.replications if (m.metric or metric) == metric), None)


class Figure(_Frozen):
    id: str
    title: str
    source: str
    model: str
    metric: str
    setup: dict[str, SetupValue] = Field(default_factory=dict)
    replication_setup: dict[str, SetupValue] = Field(default_factory=dict)  # what the replications changed
    setup_notes: str | None = None  # the setup in words (not compared)
    note: str | None = None
    cells: tuple[Cell, ...]

    @field_validator("setup", "replication_setup")
    @classmethod
    def _known_keys(cls, setup: dict[str, SetupValue]) -> dict[str, SetupValue]:
        return _check_setup(setup)

    def cell_id(self, cell: Cell) -> str:
        return f"{self.id}/{cell.arm}" + (f"-minus-{cell.minus}" if cell.minus else "") + f"/{cell.eval}"

    def replication_setup_for(self) -> dict[str, SetupValue]:
        return {**self.setup, **self.replication_setup}


class PaperFigures(_Frozen):
    sources: dict[str, Source]
    models: dict[str, PaperModel]
    figures: tuple[Figure, ...]

    @model_validator(mode="after")
    def _consistent(self) -> PaperFigures:
        for figure in self.figures:
            if figure.source not in self.sources:
                raise ValueError(f"figure {figure.id}: unknown source {figure.source!r}")
            if figure.model not in self.models:
                raise ValueError(f"figure {figure.id}: unknown model {figure.model!r}")
            arms = self.models[figure.model].arms
            for cell in figure.cells:
                for arm in (cell.arm, cell.minus):
                    if arm is not None and arm not in arms:
                        raise ValueError(f"figure {figure.id}: arm {arm!r} is not an arm of {figure.model}")
                for measurement in cell.replications:
                    if measurement.source not in self.sources:
                        raise ValueError(f"figure {figure.id}: unknown source {measurement.source!r}")
        self._check_derived_differences()
        return self

    def _check_derived_differences(self) -> None:
        """A difference cell's paper value must be the difference of the two cells it is taken from."""
        by_key = {(f.model, c.arm, c.eval): c.paper for f in self.figures for c in f.cells if c.minus is None}
        for figure in self.figures:
            for cell in figure.cells:
                if cell.minus is None or cell.paper is None:
                    continue
                first, second = by_key.get((figure.model, cell.arm, cell.eval)), by_key.get(
                    (figure.model, cell.minus, cell.eval))
                if first is None or second is None or abs(first - second - cell.paper) > 1e-9:
                    raise ValueError(f"figure {figure.id}: paper difference {cell.paper} for {cell.arm} minus "
                                     f"{cell.minus} on {cell.eval} is not {first} - {second}")

    def figure(self, figure_id: str) -> Figure:
        for figure in self.figures:
            if figure.id == figure_id:
                return figure
        raise ConfigError(f"no paper figure {figure_id!r}; figures: {', '.join(f.id for f in self.figures)}")

    def arms(self, model: str) -> dict[str, Arm]:
        try:
            return self.models[model].arms
        except KeyError:
            raise ConfigError(f"no paper model {model!r}; models: {', '.join(self.models)}") from None


def load_figures(path: str | Path | None = None) -> PaperFigures:
    """The packaged figures (msmkit/paper/figures.yaml), or another file in the same schema."""
    if path is None:
        return packaged_figures()
    return validate_config(load_yaml(path), PaperFigures, str(path))


@lru_cache(maxsize=1)
def packaged_figures() -> PaperFigures:
    text = files("msmkit.paper").joinpath("figures.yaml").read_text(encoding="utf-8")
    return validate_config(yaml.safe_load(text), PaperFigures, "msmkit/paper/figures.yaml")
