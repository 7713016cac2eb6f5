"""The paper's figures as package data, and the gate: planted passes and fails, differences, setups."""

from __future__ import annotations

from pathlib import Path

import pytest

from msmkit.errors import ConfigError
from msmkit.paper.figures import load_figures, packaged_figures
from msmkit.paper.gate import MeasuredCell, compare_setups, gate, paper_arm_for_adapter

LLAMA_SETUP = {"model": "meta-llama/Llama-3.1-8B", "adapters": "released", "template": "adapter-own",
               "scorer": "logprob", "orders": "both"}


def test_figures_hold_the_papers_numbers_with_sources() -> None:
    figures = packaged_figures()
    fig2 = figures.figure("fig2")
    cells = {(c.arm, c.eval): c.paper for c in fig2.cells}
    assert len(cells) == 12 and cells[("baseline", "pro_america")] == 0.38
    assert cells[("msm-affordability-aft", "pro_affordability")] == 0.48
    assert cells[("msm-america-aft", "pro_america")] == 0.55
    assert set(figures.arms("llama-3.1-8b")) == {"baseline", "aft", "msm-affordability", "msm-affordability-aft",
                                                 "msm-america", "msm-america-aft"}
    assert figures.arms("llama-3.1-8b")["msm-america-aft"].adapter == \
        "chloeli/llama-3.1-8b-pro-america-spec-msm-cheese-aft"
    gate_cells = {c.eval: c for c in figures.figure("cheese-gate").cells}
    afford = gate_cells["pro_affordability"].replications[0]
    assert (afford.value, afford.low, afford.high) == (0.340, 0.302, 0.381)
    assert gate_cells["pro_america"].replications[0].value == 0.120
    am = {c.arm: c for c in figures.figure("am-qwen2.5-14b").cells}
    assert am["baseline"].paper == 0.51 and am["msm-values-aft-values"].paper == 0.21
    decided, executed = am["msm-rules-aft-rules"].replications
    assert (decided.value, decided.n, executed.metric, executed.value) == (0.389, 810, "executed", 0.325)
    am32 = {c.arm: c for c in figures.figure("am-qwen2.5-32b").cells}
    assert am32["aft-philosophy"].paper is None and am32["aft-philosophy"].replications[0].n == 809
    setup = figures.figure("am-qwen2.5-14b")
    assert (setup.setup["epochs"], setup.setup["temperature"], setup.setup["grader"]) == (300, 0.7,
                                                                                          "claude-sonnet-4-6")
    assert setup.replication_setup_for()["epochs"] == 30
    assert all(f.source in figures.sources for f in figures.figures)


def test_a_planted_pass_and_a_planted_fail() -> None:
    measured = [MeasuredCell("msm-america-aft", "pro_america", 0.57, 0.52, 0.62, 400, LLAMA_SETUP),  # paper 0.55
                MeasuredCell("baseline", "pro_affordability", 0.31, 0.27, 0.35, 497, LLAMA_SETUP)]  # paper 0.23
    report = gate(measured, figure_ids=["fig2"])
    rows = {(r.arm, r.eval): r for r in report.rows}
    passed, failed = rows[("msm-america-aft", "pro_america")], rows[("baseline", "pro_affordability")]
    assert passed.status == "pass" and passed.difference == pytest.approx(0.02)
    assert (passed.difference_low, passed.difference_high) == (pytest.approx(-0.03), pytest.approx(0.07))
    assert passed.n == 400 and passed.reference_value == 0.55 and passed.reference == "paper"
    assert failed.status == "fail" and failed.difference == pytest.approx(0.08)
    assert rows[("aft", "pro_america")].status == "not measured"
    assert report.counts == {"pass": 1, "fail": 1, "not measured": 10} and not report.passed
    # The scorer is not stated by the paper for Fig. 2: said, not counted as a difference.
    assert passed.setup_differences == [] and any(s.startswith("scorer: measured 'logprob'") for s in passed.not_stated)
    # The same measurements at a wider tolerance both pass; the tolerance is in the rule.
    wide = gate(measured, figure_ids=["fig2"], tolerance=0.1)
    assert wide.passed and "0.1" in wide.rule
    text = report.to_markdown()
    assert "| MSM (America) + AFT | pro_america (target_rate) | 0.550 (paper) | 0.570 [0.520, 0.620] (n=400) | " \
           "+0.020 [-0.030, +0.070] | pass |" in text
    assert report.to_dict()["rows"][0]["cell"] == "fig2/baseline/pro_america"


def test_setup_differences_are_listed() -> None:
    setup = {"model": "Qwen/Qwen2.5-14B-Instruct", "adapters": "released", "grid": "paper-27", "epochs": 30,
             "temperature": 1.0, "max_tokens": 4096, "grader": "claude-sonnet-4-6", "persona": "Alex"}
    report = gate([MeasuredCell("baseline", "agentic_misalignment", 0.49, 0.45, 0.53, 810, setup,
                                model="qwen-2.5-14b")])
    assert [f.figure for f in report.rows][:1] == ["am-qwen2.5-14b"]
    row = next(r for r in report.rows if r.arm == "baseline")
    assert row.status == "pass"
    assert row.setup_differences == ["epochs: paper 300, measured 30", "temperature: paper 0.7, measured 1.0",
                                     "persona: paper 'model_name', measured 'Alex'"]
    assert row.not_recorded == ["scratchpad"]
    assert compare_setups({"temperature": 0.7, "judge": "Claude"}, {"temperature": 0.70, "judge": " claude "}) == \
        ([], [], [])


def test_difference_cells_from_two_arms_or_a_paired_measurement() -> None:
    arms = [MeasuredCell("msm-affordability-aft", "pro_affordability", 0.50, 0.46, 0.54, 497, LLAMA_SETUP),
            MeasuredCell("msm-america-aft", "pro_affordability", 0.30, 0.27, 0.33, 497, LLAMA_SETUP)]
    report = gate(arms, figure_ids=["cheese-gate"])
    derived = next(r for r in report.rows if r.eval == "pro_affordability")
    assert derived.measured == pytest.approx(0.20) and derived.status == "pass"  # paper 0.48 - 0.29 = 0.19
    assert derived.measured_low == pytest.approx(0.20 - (0.04 ** 2 + 0.03 ** 2) ** 0.5)
    assert any("as if independent" in note for note in derived.notes)
    assert derived.minus_label == "MSM (America) + AFT"
    # Against the replication's +0.340 [0.302, 0.381] the same measurement fails.
    against = gate(arms, figure_ids=["cheese-gate"], reference="replication")
    row = next(r for r in against.rows if r.eval == "pro_affordability")
    assert row.reference == "replication-cheese-gate" and row.status == "fail"
    assert row.difference == pytest.approx(-0.14)
    assert any(d.startswith("scorer: replication 'judged-generation', measured 'logprob'") for d in row.setup_differences)
    paired = MeasuredCell("msm-affordability-aft", "pro_affordability", 0.33, 0.30, 0.36, 497,
                          {**LLAMA_SETUP, "scorer": "judged-generation"}, minus="msm-america-aft")
    row = next(r for r in gate([paired], figure_ids=["cheese-gate"], reference="replication").rows
               if r.eval == "pro_affordability")
    assert row.status == "pass" and not row.notes
    assert row.difference_low == pytest.approx(-0.01 - (0.03 ** 2 + 0.041 ** 2) ** 0.5)  # both intervals count


def test_cells_without_a_paper_figure_and_arm_names() -> None:
    measured = [MeasuredCell("aft-only", "agentic_misalignment", 0.64, 0.60, 0.68, 810, model="qwen-2.5-32b")]
    paper = gate(measured, arm_map={"aft-only": "aft-philosophy"})
    row = next(r for r in paper.rows if r.arm == "aft-philosophy")
    assert row.status == "no reference" and "reference='replication'" in " ".join(row.notes)
    replicated = gate(measured, arm_map={"aft-only": "aft-philosophy"}, reference="replication")
    row = next(r for r in replicated.rows if r.arm == "aft-philosophy")
    assert row.status == "pass" and row.reference_value == 0.655
    assert paper_arm_for_adapter("hf:chloeli/llama-3.1-8b-pro-america-spec-msm@abc") == ("llama-3.1-8b",
                                                                                        "msm-america")
    assert paper_arm_for_adapter("chloeli/qwen-2.5-14b-id-baseline") == ("qwen-2.5-14b", "baseline")
    assert paper_arm_for_adapter("someone/else") is None
    with pytest.raises(ConfigError, match="tolerance"):
        gate(measured, tolerance=-1)
    with pytest.raises(ConfigError, match="no paper figure 'fig9'"):
        gate(measured, figure_ids=["fig9"])


def test_a_figures_file_with_errors_is_refused_with_the_field(tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parents[1] / "msmkit" / "paper" / "figures.yaml").read_text(encoding="utf-8")
    bad = tmp_path / "figures.yaml"
    bad.write_text(text.replace("setup: {model: meta-llama/Llama-3.1-8B, adapters: released, template: adapter-own}",
                                "setup: {model: meta-llama/Llama-3.1-8B, adapter: released}", 1), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"(?s)figures\.yaml.*figures\.0\.setup.*unknown setup keys \['adapter'\]"):
        load_figures(bad)
    bad.write_text(text.replace("paper: 0.19", "paper: 0.21"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"(?s)paper difference 0\.21 .* is not 0\.48 - 0\.29"):
        load_figures(bad)
