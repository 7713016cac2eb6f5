"""Render a ReportData as a self-contained HTML page (images inlined, model text escaped) and a
Markdown twin (images beside it)."""

from __future__ import annotations

import base64
import json
from collections import defaultdict
from html import escape
from pathlib import Path

from msmkit.experiment.plots import bar_chart, sweep_chart
from msmkit.experiment.report_data import ArmResult, ReportData
from msmkit.io import atomic_write_text
from msmkit.paths import safe_component
from msmkit.secrets import redact

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2rem auto;max-width:1100px;
color:#222;padding:0 1rem}
h1{font-size:1.6rem}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}th,td{border:1px solid #ccc;padding:.25rem .5rem;
text-align:left;vertical-align:top}th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:.5rem .8rem;margin:.5rem 0}
pre{white-space:pre-wrap;background:#f7f7f7;padding:.6rem;border-radius:4px;font-size:.85rem;max-height:28rem;
overflow:auto}details{margin:.3rem 0}summary{cursor:pointer}img{max-width:100%;height:auto}
.charts{display:flex;flex-wrap:wrap;gap:1rem}
"""


def _group_by_eval(results: list[ArmResult]) -> dict[tuple[str, str], list[ArmResult]]:
    grouped: dict[tuple[str, str], list[ArmResult]] = defaultdict(list)
    for result in results:
        grouped[(result.eval_name, result.metric)].append(result)
    return grouped


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _ci(result: ArmResult) -> str:
    return _interval(result.ci_low, result.ci_high)


def make_charts(data: ReportData, out_dir: Path) -> dict[str, Path]:
    """One bar chart per (eval, metric) plus the sweep curve; returns title -> PNG path."""
    charts: dict[str, Path] = {}
    out_dir.mkdir(parents=True, exist_ok=True)
    for index, ((eval_name, metric), results) in enumerate(sorted(_group_by_eval(data.results).items())):
        name = f"bar-{index:02d}-{safe_component(eval_name)}.png"
        charts[f"{eval_name} ({metric})"] = bar_chart(results, out_dir / name)
    if data.sweep:
        by_eval: dict[str, list] = defaultdict(list)
        for point in data.sweep:
            by_eval[point.eval_name].append(point)
        for index, (eval_name, points) in enumerate(sorted(by_eval.items())):
            charts[f"AFT tokens vs {eval_name}"] = sweep_chart(points, out_dir / f"sweep-{index:02d}.png")
    return charts


def _results_rows(data: ReportData) -> list[list[str]]:
    return [[r.eval_name, r.metric, r.arm, _fmt(r.mean), _ci(r), str(r.n_items), str(r.n_seeds),
             ", ".join(f"{v:.3f}" for v in r.per_seed), r.note] for r in data.results]


_RESULT_HEADERS = ["eval", "metric", "arm", "mean", "95% CI", "n items", "seeds", "per seed", "note"]
_STAGE_HEADERS = ["stage", "kind", "folder", "state", "seconds", "cost (US$)", "input tokens", "output tokens"]
_SWEEP_HEADERS = ["series", "eval", "AFT tokens", "value", "95% CI"]


def _stage_rows(data: ReportData) -> list[list[str]]:
    return [[s.label or s.key, s.kind, s.key, s.state, _fmt(s.seconds, 1), f"{s.cost_usd:.4f}", str(s.input_tokens),
             str(s.output_tokens)] for s in data.stages]


def _interval(low: float | None, high: float | None) -> str:
    return "–" if low is None or high is None else f"[{low:.3f}, {high:.3f}]"


def _sweep_rows(data: ReportData) -> list[list[str]]:
    return [[p.series, p.eval_name, f"{p.aft_tokens:,}", _fmt(p.value), _interval(p.ci_low, p.ci_high)]
            for p in sorted(data.sweep, key=lambda p: (p.eval_name, p.series, p.aft_tokens))]


def _comparison_headers(data: ReportData) -> list[str]:
    return list(dict.fromkeys(key for row in data.comparisons for key in row))


def _html_table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _png_data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def render_html(data: ReportData, charts: dict[str, Path]) -> str:
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{escape(data.title)}</title>"
             f"<style>{_CSS}</style></head><body>",
             f"<h1>{escape(data.title)}</h1>",
             f"<p>Experiment <b>{escape(data.experiment)}</b>, report written {escape(data.created)}.</p>"]
    parts += [f"<div class='note'>{escape(note)}</div>" for note in data.notes]
    if data.arms:
        parts.append("<h2>Arms</h2>" + _html_table(["arm", "what it is"], [[k, v] for k, v in data.arms.items()]))
    parts.append("<h2>Results</h2>")
    parts.append(_html_table(_RESULT_HEADERS, _results_rows(data)) if data.results else "<p>No results yet.</p>")
    if data.comparisons:
        headers = _comparison_headers(data)
        parts.append("<h3>Paired comparisons (same items; first minus second)</h3>" + _html_table(
            headers, [[str(row.get(h, "")) for h in headers] for row in data.comparisons]))
    if data.sweep:
        parts.append("<h3>AFT data-size sweep</h3>" + _html_table(_SWEEP_HEADERS, _sweep_rows(data)))
    if charts:
        parts.append("<h2>Charts</h2><div class='charts'>")
        parts += [f"<figure><img src='{_png_data_uri(path)}' alt='{escape(title)}'>"
                  f"<figcaption>{escape(title)}</figcaption></figure>" for title, path in charts.items()]
        parts.append("</div>")
    if data.data_stats:
        parts.append("<h2>Corpus and AFT data</h2>")
        for name, stats in data.data_stats.items():
            parts.append(f"<details><summary>{escape(name)}</summary><pre>{escape(json.dumps(stats, indent=2))}</pre></details>")
    if data.stages:
        parts.append("<h2>Stages: time and cost</h2>" + _html_table(_STAGE_HEADERS, _stage_rows(data)))
        total = sum(s.cost_usd for s in data.stages)
        parts.append(f"<p>Total API cost: US${total:.4f}</p>")
    if data.samples:
        parts.append("<h2>Samples</h2>")
        for kind in sorted({s.kind for s in data.samples}):
            parts.append(f"<h3>{escape(kind)}s</h3>")
            for sample in (s for s in data.samples if s.kind == kind):
                meta = ", ".join(f"{k}={v}" for k, v in sample.meta.items())
                parts.append(f"<details><summary>{escape(sample.title)}</summary>"
                             f"<p><small>{escape(meta)}</small></p><pre>{escape(sample.text)}</pre></details>")
    parts.append(f"<h2>Config</h2><pre>{escape(data.config_yaml)}</pre></body></html>")
    return redact("".join(parts))


def _md_table(headers: list[str], rows: list[list[str]]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(data: ReportData, charts: dict[str, Path], base: Path) -> str:
    lines = [f"# {data.title}", "", f"Experiment **{data.experiment}**, report written {data.created}.", ""]
    lines += [f"> {note}" for note in data.notes] + [""]
    if data.arms:
        lines += ["## Arms", "", _md_table(["arm", "what it is"], [[k, v] for k, v in data.arms.items()]), ""]
    lines += ["## Results", "", _md_table(_RESULT_HEADERS, _results_rows(data)) if data.results else "No results yet.", ""]
    if data.comparisons:
        headers = _comparison_headers(data)
        lines += ["### Paired comparisons (same items; first minus second)", "",
                  _md_table(headers, [[str(row.get(h, "")) for h in headers] for row in data.comparisons]), ""]
    if data.sweep:
        lines += ["### AFT data-size sweep", "", _md_table(_SWEEP_HEADERS, _sweep_rows(data)), ""]
    for title, path in charts.items():
        lines += [f"![{title}]({path.relative_to(base).as_posix()})", ""]
    if data.stages:
        lines += ["## Stages: time and cost", "", _md_table(_STAGE_HEADERS, _stage_rows(data)), ""]
    if data.samples:
        lines += ["## Samples", ""]
        for sample in data.samples:
            text = sample.text if len(sample.text) < 1500 else sample.text[:1500] + " ..."
            lines += [f"### {sample.kind}: {sample.title}", "", "```text", text.replace("```", "'''"), "```", ""]
    lines += ["## Config", "", "```yaml", data.config_yaml, "```", ""]
    return redact("\n".join(lines))


def write_report(data: ReportData, out_dir: str | Path) -> tuple[Path, Path]:
    """Write report.html (self-contained) and report.md (+ charts/), return their paths."""
    out = Path(out_dir)
    charts = make_charts(data, out / "charts")
    html_path = atomic_write_text(out / "report.html", render_html(data, charts))
    md_path = atomic_write_text(out / "report.md", render_markdown(data, charts, out))
    return html_path, md_path
