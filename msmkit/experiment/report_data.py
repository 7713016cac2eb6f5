"""What a report shows, as typed data. The runner fills it; report.py renders it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from msmkit.stages.contract import Sample


class ArmResult(BaseModel):
    """One arm on one eval metric, aggregated over seeds."""

    arm: str
    eval_name: str
    metric: str
    mean: float
    ci_low: float | None = None
    ci_high: float | None = None
    n_items: int
    n_seeds: int
    per_seed: list[float] = Field(default_factory=list)
    unit: str = "item"  # what n_items counts (items, conditions, ...): the interval's independent unit
    n_outcomes: int = 0  # individual outcomes behind the number (e.g. epochs x conditions x seeds)
    dominant: str = ""  # the variance component that dominates the interval's width (seed, item, residual)
    note: str = ""


class SweepPoint(BaseModel):
    """A point on the AFT-data-size curve: a series (e.g. "MSM+AFT") at some AFT token count."""

    series: str
    eval_name: str
    aft_tokens: int
    msm_tokens: int | None = None  # set on the MSM-dose points: midtraining tokens
    value: float
    ci_low: float | None = None
    ci_high: float | None = None


class HeatMap(BaseModel):
    """One eval's rate per arm (rows) and condition (columns), pooled over seeds; None where nothing was scored."""

    eval_name: str
    rows: list[str]
    columns: list[str]
    values: list[list[float | None]]


class StageCost(BaseModel):
    key: str
    kind: str
    state: str
    label: str = ""
    seconds: float | None = None
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0


class ReportData(BaseModel):
    title: str
    experiment: str
    created: str
    config_yaml: str
    notes: list[str] = Field(default_factory=list)
    arms: dict[str, str] = Field(default_factory=dict)  # arm name -> description
    results: list[ArmResult] = Field(default_factory=list)
    headline_values: tuple[str, str] | None = None  # the value evals the headline plots as (x, y)
    comparisons: list[dict[str, Any]] = Field(default_factory=list)  # paired differences between arms
    counts: list[dict[str, Any]] = Field(default_factory=list)  # per arm and eval: scored, failures, refusals
    sweep: list[SweepPoint] = Field(default_factory=list)
    heatmaps: list[HeatMap] = Field(default_factory=list)
    preflight: dict[str, Any] | None = None  # msm preflight's findings (msmkit.experiment.preflight), when run
    gate: dict[str, Any] | None = None  # the check against the paper's figures (msmkit.paper.gate), as data
    data_stats: dict[str, dict[str, Any]] = Field(default_factory=dict)  # name -> stats.json contents
    stages: list[StageCost] = Field(default_factory=list)
    samples: list[Sample] = Field(default_factory=list)
