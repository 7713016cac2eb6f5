"""Render a ReportData as a self-contained HTML page (images inlined) and a Markdown twin (images beside it),
from the templates in msmkit/experiment/templates/. The HTML environment escapes every value by default, so no
section can forget to escape model text."""

from __future__ import annotations

import base64
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from msmkit.experiment.plots import bar_chart, dissociation_chart, dose_chart, heatmap_chart, sweep_chart
from msmkit.experiment.report_data import ArmResult, ReportData
from msmkit.io import atomic_write_text
from msmkit.paths import safe_component
from msmkit.secrets import redact

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2rem auto;max-width:1100px;
color:#222;padding:0 1rem}
h1{font-size:1.6rem}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}th,td{border:1px solid #ccc;padding:.25rem .5rem;
text-align:left;vertical-align:top}th{background:#f3f3f3}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:.5rem .8rem;margin:.5rem 0}
pre{white-space:pre-wrap;background:#f7f7f7;padding:.6rem;border-radius:4px;font-size:.85rem;max-height:28rem;
overflow:auto}details{margin:.3rem 0}summary{cursor:pointer}img{max-width:100%;height:auto}
.charts{display:flex;flex-wrap:wrap;gap:1rem}.headline img{max-width:640px}
"""
METHOD = ("Intervals: 95%, for the crossed design (every training seed scores the same items or conditions): "
          "variance components of seeds, units and their residual with a Satterthwaite t reference "
          "(msmkit.eval.stats.crossed_interval). Epochs of one agentic condition are averaged within each seed "
          "first, so the condition is the unit. Differences pair by unit and count both arms' seed noise "
          "(crossed_difference). 'dominant' names the variance that sets an interval's width.")
RESULT_HEADERS = ["eval", "metric", "arm", "mean", "95% CI", "n items", "seeds", "per seed", "note", "unit",
                  "outcomes", "dominant"]
STAGE_HEADERS = ["stage", "kind", "folder", "state", "seconds", "cost (US$)", "input tokens", "output tokens"]
SWEEP_HEADERS = ["series", "eval", "AFT tokens", "MSM tokens", "value", "95% CI"]


GATE_HEADERS = ["cell", "eval", "paper arm", "reference", "measured [95% CI]", "n", "difference [95% CI]", "result",
                "what differs from the reference's setup"]


def _gate_rows(gate: dict[str, Any] | None) -> list[list[str]]:
    rows = []
    for row in (gate or {}).get("rows", []):
        arm = row["arm_label"] + (f" minus {row['minus_label']}" if row["minus_label"] else "")
        reference = "none" if row["reference_value"] is None else f"{row['reference_value']:.3f} ({row['reference']})"
        measured = "not measured" if row["measured"] is None else \
            f"{row['measured']:.3f} {_interval(row['measured_low'], row['measured_high'])}"
        difference = "" if row["difference"] is None else \
            f"{row['difference']:+.3f} {_interval(row['difference_low'], row['difference_high'])}"
        differs = row["setup_differences"] + [f"{key}: not recorded" for key in row["not_recorded"]]
        rows.append([row["cell"], f"{row['eval']} ({row['metric']})", arm, reference, measured, str(row["n"] or ""),
                     difference, row["status"], "; ".join(differs) or "none"])
    return rows


@dataclass(frozen=True)
class Chart:
    title: str
    path: Path

    def uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.path.read_bytes()).decode("ascii")


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _interval(low: float | None, high: float | None) -> str:
    return "–" if low is None or high is None else f"[{low:.3f}, {high:.3f}]"


def _group_by_eval(results: list[ArmResult]) -> dict[tuple[str, str], list[ArmResult]]:
    grouped: dict[tuple[str, str], list[ArmResult]] = defaultdict(list)
    for result in results:
        grouped[(result.eval_name, result.metric)].append(result)
    return grouped


def make_charts(data: ReportData, out_dir: Path) -> tuple[Chart | None, list[Chart]]:
    """(the paper's picture, if the results have one; a bar chart per eval metric and the sweep curves)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    charts = []
    for index, ((eval_name, metric), results) in enumerate(sorted(_group_by_eval(data.results).items())):
        name = f"bar-{index:02d}-{safe_component(eval_name)}.png"
        charts.append(Chart(f"{eval_name} ({metric})", bar_chart(results, out_dir / name)))
    by_eval: dict[str, list] = defaultdict(list)
    by_dose: dict[str, list] = defaultdict(list)
    for point in data.sweep:
        (by_dose if point.msm_tokens is not None else by_eval)[point.eval_name].append(point)
    for index, (eval_name, points) in enumerate(sorted(by_eval.items())):
        charts.append(Chart(f"AFT tokens vs {eval_name}", sweep_chart(points, out_dir / f"sweep-{index:02d}.png")))
    for index, (eval_name, points) in enumerate(sorted(by_dose.items())):
        charts.append(Chart(f"MSM tokens vs {eval_name} (dose response)",
                            dose_chart(points, out_dir / f"dose-{index:02d}.png")))
    for index, heat in enumerate(data.heatmaps):
        path = heatmap_chart(heat, out_dir / f"heat-{index:02d}.png")
        charts.append(Chart(f"{heat.eval_name} by arm and condition", path))
    return _headline(data, out_dir, charts), charts


def _headline(data: ReportData, out_dir: Path, charts: list[Chart]) -> Chart | None:
    """As the paper shows it: a two-value dissociation design as each arm at (rate on value 1, rate on value 2)
    with interval crosses (Fig. 2); an agentic study as a bar per arm of the decided rate."""
    measured = list(dict.fromkeys(r.eval_name for r in data.results if r.eval_name.startswith("values: ")))
    axes = data.headline_values if data.headline_values and set(data.headline_values) <= set(measured) \
        else tuple(measured[:2])
    if len(axes) == 2:
        first, second = axes
        path = dissociation_chart([r for r in data.results if r.eval_name == first],
                                  [r for r in data.results if r.eval_name == second], out_dir / "headline.png")
        return Chart(f"Each arm on {first.removeprefix('values: ')} (x) and {second.removeprefix('values: ')} (y), "
                     "with 95% intervals", path)
    decided = [chart for chart in charts if chart.title.startswith("agentic: decided")]
    return decided[0] if decided else None


def _matrix(data: ReportData) -> dict[str, Any]:
    """Arms x eval metrics: mean [interval], the compact view above the long tables."""
    metrics = list(dict.fromkeys(r.eval_name for r in data.results))
    cells = {(r.arm, r.eval_name): f"{_fmt(r.mean)} {_interval(r.ci_low, r.ci_high)}" for r in data.results}
    arms = list(dict.fromkeys([*data.arms, *(r.arm for r in data.results)]))
    rows = [[arm, *(cells.get((arm, metric), "") for metric in metrics)] for arm in arms
            if any((arm, metric) in cells for metric in metrics)]
    return {"headers": ["arm", *metrics], "rows": rows}


def _context(data: ReportData, headline: Chart | None, charts: list[Chart], base: Path) -> dict[str, Any]:
    comparison_headers = list(dict.fromkeys(key for row in data.comparisons for key in row))
    count_headers = list(dict.fromkeys(key for row in data.counts for key in row))
    by_kind: dict[str, list] = defaultdict(list)
    for sample in data.samples:
        by_kind[sample.kind].append(sample)

    def chart_view(chart: Chart) -> dict[str, str]:
        return {"title": chart.title, "uri": chart.uri(), "path": chart.path.relative_to(base).as_posix()}

    return {
        "data": data, "css": CSS, "method": METHOD, "matrix": _matrix(data),
        "headline": chart_view(headline) if headline else None, "charts": [chart_view(c) for c in charts],
        "result_headers": RESULT_HEADERS,
        "result_rows": [[r.eval_name, r.metric, r.arm, _fmt(r.mean), _interval(r.ci_low, r.ci_high), str(r.n_items),
                         str(r.n_seeds), ", ".join(f"{v:.3f}" for v in r.per_seed), r.note, r.unit,
                         str(r.n_outcomes), r.dominant] for r in data.results],
        "count_headers": count_headers,
        "count_rows": [[str(row.get(h, "")) for h in count_headers] for row in data.counts],
        "comparison_headers": comparison_headers,
        "comparison_rows": [[str(row.get(h, "")) for h in comparison_headers] for row in data.comparisons],
        "sweep_headers": SWEEP_HEADERS,
        "sweep_rows": [[p.series, p.eval_name, f"{p.aft_tokens:,}", "" if p.msm_tokens is None else f"{p.msm_tokens:,}",
                        _fmt(p.value), _interval(p.ci_low, p.ci_high)]
                       for p in sorted(data.sweep, key=lambda p: (p.eval_name, p.series, p.aft_tokens))],
        "stage_headers": STAGE_HEADERS,
        "stage_rows": [[s.label or s.key, s.kind, s.key, s.state, _fmt(s.seconds, 1), f"{s.cost_usd:.4f}",
                        str(s.input_tokens), str(s.output_tokens)] for s in data.stages],
        "total_cost": sum(s.cost_usd for s in data.stages),
        "gate_headers": GATE_HEADERS, "gate_rows": _gate_rows(data.gate),
        "preflight_rows": [[c["spec"], c["suite"], _fmt(c["without"]), _fmt(c["with_spec"]), f"{c['gap']:+.3f}",
                            _interval(c["low"], c["high"]), str(c["n_items"])]
                           for c in (data.preflight or {}).get("ceilings", [])],
        "samples": sorted(by_kind.items()),
    }


def _environments() -> tuple[Environment, Environment]:
    loader = PackageLoader("msmkit.experiment", "templates")
    html = Environment(loader=loader, autoescape=select_autoescape(["html", "html.jinja"]),
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    markdown = Environment(loader=loader, autoescape=False, undefined=StrictUndefined, keep_trailing_newline=True)
    markdown.filters["cell"] = lambda text: str(text).replace("|", "\\|").replace("\n", " ")
    markdown.filters["clip"] = lambda text: text if len(text) < 1500 else text[:1500] + " ..."
    markdown.filters["fence"] = lambda text: text.replace("```", "'''")
    return html, markdown


def write_report(data: ReportData, out_dir: str | Path) -> tuple[Path, Path]:
    """Write report.html (self-contained) and report.md (+ charts/), return their paths."""
    out = Path(out_dir)
    headline, charts = make_charts(data, out / "charts")
    context = _context(data, headline, charts, out)
    html, markdown = _environments()
    html_path = atomic_write_text(out / "report.html", redact(html.get_template("report.html.jinja").render(context)))
    md_path = atomic_write_text(out / "report.md", redact(markdown.get_template("report.md.jinja").render(context)))
    atomic_write_text(out / "report.json", redact(data.model_dump_json(indent=2)))  # the same numbers, as data
    return html_path, md_path
