"""The gate: each measured arm beside the paper's figure, the difference with its interval, pass or fail.

Pure computation: give it measured cells named by paper arm (see figures.yaml `models`) and eval, each with
its mean, 95% interval, n and the setup it was measured with; it returns one row per figure cell.

- reference: the paper's figure (default), or a replication's (`reference="replication"`; the only choice
  for cells where the sources give no paper figure).
- difference = measured mean - reference. Its interval is the measured interval shifted by the reference;
  when the reference has an interval too (a replication's), the two half-widths are added in quadrature.
- pass: |difference| <= tolerance (default 0.05, the replications' gate). The difference interval is shown
  beside it; a pass with a wide interval says little, and n says how wide to expect.
- a difference cell (A minus B on one eval) uses a measured difference when given (a paired interval from
  the same items, as msmkit's comparisons compute), else the two arms' cells, their intervals combined as
  if independent (wider than the paired one; the row says so).
- what differs from the reference's setup (figures.yaml vocabulary: template, judge, epochs, temperature ...),
  what the measured setup does not record, and what the source does not state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from msmkit.errors import ConfigError
from msmkit.paper.figures import Cell, Figure, Measurement, PaperFigures, packaged_figures

DEFAULT_TOLERANCE = 0.05
Reference = Literal["paper", "replication"]
Status = Literal["pass", "fail", "not measured", "no reference"]


@dataclass(frozen=True)
class MeasuredCell:
    """One measured result, named by paper arm and eval (e.g. arm "msm-america-aft", eval "pro_america")."""

    arm: str
    eval: str
    mean: float
    low: float | None = None
    high: float | None = None
    n: int | None = None
    setup: Mapping[str, Any] = field(default_factory=dict)
    minus: str | None = None  # a measured difference: this arm minus `minus`
    metric: str | None = None  # None = the figure's metric (e.g. "executed" instead of "decided")
    model: str | None = None  # paper model key (e.g. "llama-3.1-8b"), when arm names could be ambiguous

    @classmethod
    def from_estimate(cls, arm: str, eval_name: str, estimate: Mapping[str, Any], setup: Mapping[str, Any],
                      **fields: Any) -> MeasuredCell:
        """From an msmkit estimate dict ({"mean", "low", "high", "n", ...}, e.g. a summary's "target_rate")."""
        if estimate.get("mean") is None:
            raise ConfigError(f"arm {arm!r}, eval {eval_name!r}: the estimate has no mean (nothing was scored)")
        return cls(arm, eval_name, float(estimate["mean"]), estimate.get("low"), estimate.get("high"),
                   estimate.get("n"), setup, **fields)


@dataclass
class GateRow:
    figure: str
    cell: str
    title: str
    arm: str
    arm_label: str
    minus: str | None
    minus_label: str | None
    eval: str
    metric: str
    reference: str  # "paper" or the replication source id
    reference_value: float | None
    reference_low: float | None
    reference_high: float | None
    measured: float | None
    measured_low: float | None
    measured_high: float | None
    n: int | None
    difference: float | None
    difference_low: float | None
    difference_high: float | None
    tolerance: float
    status: Status
    setup_differences: list[str] = field(default_factory=list)
    not_recorded: list[str] = field(default_factory=list)  # reference setup keys the measured setup lacks
    not_stated: list[str] = field(default_factory=list)  # measured setup keys the reference does not state
    notes: list[str] = field(default_factory=list)


@dataclass
class GateReport:
    rows: list[GateRow]
    tolerance: float
    reference: Reference
    rule: str

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for row in self.rows:
            out[row.status] = out.get(row.status, 0) + 1
        return out

    @property
    def passed(self) -> bool:
        """Every measured cell with a reference passes (and at least one was measured)."""
        judged = [row for row in self.rows if row.status in ("pass", "fail")]
        return bool(judged) and all(row.status == "pass" for row in judged)

    def to_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "tolerance": self.tolerance, "rule": self.rule, "counts": self.counts,
                "passed": self.passed, "rows": [asdict(row) for row in self.rows]}

    def to_markdown(self) -> str:
        lines = [f"Gate against the {self.reference}'s figures: {self.rule}", "",
                 "| cell | eval | reference | measured [95% CI] (n) | difference [95% CI] | result | setup differs |",
                 "|---|---|---|---|---|---|---|"]
        for row in self.rows:
            label = row.arm_label + (f" minus {row.minus_label}" if row.minus_label else "")
            reference = "none" if row.reference_value is None else f"{row.reference_value:.3f} ({row.reference})"
            measured = "not measured" if row.measured is None else (
                f"{row.measured:.3f} {_interval(row.measured_low, row.measured_high)} (n={row.n or '?'})")
            difference = "" if row.difference is None else (
                f"{row.difference:+.3f} {_interval(row.difference_low, row.difference_high, signed=True)}")
            differs = "; ".join(row.setup_differences + [f"{k}: not recorded" for k in row.not_recorded]
                                + row.not_stated) or "none"
            lines.append(f"| {label} | {row.eval} ({row.metric}) | {reference} | {measured} | {difference} | "
                         f"{row.status} | {differs} |")
        return "\n".join(lines)


def gate(measured: Sequence[MeasuredCell], *, figures: PaperFigures | None = None,
         figure_ids: Sequence[str] | None = None, tolerance: float = DEFAULT_TOLERANCE,
         reference: Reference = "paper", arm_map: Mapping[str, str] | None = None) -> GateReport:
    """Rows for every cell of the chosen figures (default: each figure with at least one measured cell).

    `arm_map` renames measured arms to paper arm names first (e.g. {"msm-aft-america": "msm-america-aft"}).
    """
    if tolerance < 0:
        raise ConfigError(f"gate tolerance must be >= 0, got {tolerance}")
    if reference not in ("paper", "replication"):
        raise ConfigError(f"gate reference must be 'paper' or 'replication', got {reference!r}")
    figures = figures or packaged_figures()
    cells = [_renamed(cell, arm_map) for cell in measured]
    chosen = ([figures.figure(name) for name in figure_ids] if figure_ids is not None
              else [f for f in figures.figures if any(_matches(f, c, m) for c in f.cells for m in cells)
                    or any(_derivable(f, c, cells) for c in f.cells)])
    rows = [_row(figure, cell, cells, figures, tolerance, reference) for figure in chosen for cell in figure.cells]
    rule = (f"pass when |measured - reference| <= {tolerance:g} (point estimates, as the replications gated); "
            "the difference's 95% interval is shown beside it")
    return GateReport(rows, tolerance, reference, rule)


def _renamed(cell: MeasuredCell, arm_map: Mapping[str, str] | None) -> MeasuredCell:
    if not arm_map:
        return cell
    from dataclasses import replace

    return replace(cell, arm=arm_map.get(cell.arm, cell.arm),
                   minus=arm_map.get(cell.minus, cell.minus) if cell.minus else None)


def _matches(figure: Figure, cell: Cell, measured: MeasuredCell) -> bool:
    return (measured.arm == cell.arm and measured.eval == cell.eval and measured.minus == cell.minus
            and (measured.metric or figure.metric) == figure.metric
            and (measured.model is None or measured.model == figure.model))


def _base_metric(figure: Figure) -> str:
    return figure.metric.removesuffix("_difference")


def _arm_result(figure: Figure, arm: str, eval_name: str, cells: Sequence[MeasuredCell]) -> MeasuredCell | None:
    metric = _base_metric(figure)
    return next((m for m in cells if m.arm == arm and m.eval == eval_name and m.minus is None
                 and (m.metric or metric) == metric and (m.model is None or m.model == figure.model)), None)


def _derivable(figure: Figure, cell: Cell, cells: Sequence[MeasuredCell]) -> bool:
    return cell.minus is not None and all(_arm_result(figure, arm, cell.eval, cells) for arm in (cell.arm, cell.minus))


def _measured_for(figure: Figure, cell: Cell, cells: Sequence[MeasuredCell]) -> tuple[MeasuredCell | None, list[str]]:
    direct = next((m for m in cells if _matches(figure, cell, m)), None)
    if direct is not None or cell.minus is None:
        return direct, []
    first = _arm_result(figure, cell.arm, cell.eval, cells)
    second = _arm_result(figure, cell.minus, cell.eval, cells)
    if first is None or second is None:
        return None, []
    mean = first.mean - second.mean
    low = high = None
    if None not in (first.low, first.high, second.low, second.high):
        low = mean - math.hypot(first.mean - first.low, second.high - second.mean)  # type: ignore[operator]
        high = mean + math.hypot(first.high - first.mean, second.mean - second.low)  # type: ignore[operator]
    notes = [("difference derived from the two arms' results; its interval combines theirs as if independent "
              "(the paired interval on the same items is narrower: pass a measured difference to use it)")]
    if dict(first.setup) != dict(second.setup):
        notes.append("the two arms were measured with different setups; the first arm's is compared")
    ns = [n for n in (first.n, second.n) if n is not None]
    derived = MeasuredCell(cell.arm, cell.eval, mean, low, high, min(ns) if ns else None, first.setup, cell.minus)
    return derived, notes


def _reference_for(figure: Figure, cell: Cell, reference: Reference) -> tuple[str, Measurement | None]:
    if reference == "paper":
        if cell.paper is None:
            return "paper", None
        return "paper", Measurement(source=figure.source, value=cell.paper)
    found = cell.replication(figure.metric)
    return (found.source if found else "replication"), found


def _row(figure: Figure, cell: Cell, cells: Sequence[MeasuredCell], figures: PaperFigures, tolerance: float,
         reference: Reference) -> GateRow:
    arms = figures.arms(figure.model)
    arm = arms[cell.arm]
    result, notes = _measured_for(figure, cell, cells)
    source, ref = _reference_for(figure, cell, reference)
    row = GateRow(figure=figure.id, cell=figure.cell_id(cell), title=figure.title, arm=cell.arm, arm_label=arm.label,
                  minus=cell.minus, minus_label=arms[cell.minus].label if cell.minus else None, eval=cell.eval,
                  metric=figure.metric, reference=source,
                  reference_value=ref.value if ref else None, reference_low=ref.low if ref else None,
                  reference_high=ref.high if ref else None,
                  measured=result.mean if result else None, measured_low=result.low if result else None,
                  measured_high=result.high if result else None, n=result.n if result else None,
                  difference=None, difference_low=None, difference_high=None, tolerance=tolerance,
                  status="not measured", notes=notes)
    if figure.note:
        row.notes.append(figure.note)
    if ref is None:
        row.status = "no reference"
        row.notes.append("the sources give no paper figure for this cell; gate it with reference='replication'"
                         if reference == "paper" else "no replication measured this cell")
    if result is None:
        return row
    reference_setup = figure.setup if reference == "paper" else figure.replication_setup_for()
    row.setup_differences, row.not_recorded, row.not_stated = compare_setups(reference_setup, result.setup,
                                                                             who=reference)
    if ref is None:
        return row
    row.difference = result.mean - ref.value
    if result.low is not None and result.high is not None:
        ref_low = ref.value - ref.low if ref.low is not None else 0.0
        ref_high = ref.high - ref.value if ref.high is not None else 0.0
        row.difference_low = row.difference - math.hypot(result.mean - result.low, ref_high)
        row.difference_high = row.difference + math.hypot(result.high - result.mean, ref_low)
    row.status = "pass" if abs(row.difference) <= tolerance + 1e-12 else "fail"
    return row


def compare_setups(reference: Mapping[str, Any], measured: Mapping[str, Any], *,
                   who: str = "paper") -> tuple[list[str], list[str], list[str]]:
    """(differences, reference keys the measured setup does not record, measured keys the reference does not state)."""
    differences = [f"{key}: {who} {reference[key]!r}, measured {measured[key]!r}" for key in reference
                   if key in measured and not _same(reference[key], measured[key])]
    not_recorded = [key for key in reference if key not in measured]
    not_stated = [f"{key}: measured {measured[key]!r}, the {who} does not state it" for key in measured
                  if key not in reference]
    return differences, not_recorded, not_stated


def _same(first: Any, second: Any) -> bool:
    if isinstance(first, (int, float)) and isinstance(second, (int, float)) and not isinstance(first, bool):
        return math.isclose(float(first), float(second), abs_tol=1e-9)
    return str(first).strip().lower() == str(second).strip().lower()


def _interval(low: float | None, high: float | None, *, signed: bool = False) -> str:
    if low is None or high is None:
        return "[no interval]"
    return f"[{low:+.3f}, {high:+.3f}]" if signed else f"[{low:.3f}, {high:.3f}]"


def paper_arm_for_adapter(adapter: str, figures: PaperFigures | None = None) -> tuple[str, str] | None:
    """(paper model, paper arm) whose released adapter is `adapter` (a hub id or hf: reference), else None."""
    from msmkit.hub import is_hub_ref, parse_ref

    repo_id = parse_ref(adapter).repo_id if is_hub_ref(adapter) else adapter
    for model, entry in (figures or packaged_figures()).models.items():
        for name, arm in entry.arms.items():
            if arm.adapter == repo_id:
                return model, name
    return None
