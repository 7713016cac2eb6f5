"""The paper's figures as package data, and the gate: planted passes and fails, differences, setups."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from msmkit.errors import ConfigError
from msmkit.eval.forced_choice import ForcedChoiceScorer
from msmkit.eval.released import load_released_items
from msmkit.eval.summary import summarize_forced_choice
from msmkit.hub import describe_plan
from msmkit.models.loading import load_model
from msmkit.models.tiny import build_tiny_model
from msmkit.paper.figures import PaperFigures, load_figures, packaged_figures
from msmkit.paper.gate import MeasuredCell, compare_setups, gate, paper_arm_for_adapter
from msmkit.paper.released import released_inputs
from msmkit.testing.hub_cache import write_dataset_snapshot, write_folder_snapshot
from tests.test_adapter_template import DECOY, PROJECTIONS, RELEASED_FORMAT
from tests.test_eval_released import america_rows

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
    assert any(d.startswith("scorer: replication 'judged-generation', measured 'logprob'")
               for d in row.setup_differences)
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


def test_a_gates_inputs_are_the_released_adapters_and_eval_sets(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    inputs = released_inputs(["fig2"])
    models = [ref for ref, kind in inputs if kind == "model"]
    assert len(models) == 6 and "hf:chloeli/llama-3.1-8b-baseline@42a80a90954a12e5f6dfab2f45e2e85ffb3744c1" in models
    assert ("hf:chloeli/pro-america-political-opinions@9c65e224a6ffe687561c93a266db23feb7d59c73", "dataset") in inputs
    assert len(inputs) == 8
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    plan = describe_plan(inputs)  # offline: all missing, the gated base listed once
    assert len(plan) == 9 and not any(entry.cached for entry in plan)
    assert sum(entry.approx_bytes or 0 for entry in plan) == 6 * 671_088_640 + 16_100_000_000
    assert [entry.name for entry in plan].count("meta-llama/Llama-3.1-8B") == 1


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


def test_released_adapters_scored_end_to_end_and_gated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two tiny adapters under released names in a hub cache, a released-schema item set, forced choice with each
    adapter's own template, and the gate against figures planted to pass for one arm and fail for the other."""
    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    base = build_tiny_model(tmp_path / "base", "llama", chat_template=DECOY)
    references = {}
    for seed, repo in enumerate(["chloeli/llama-3.1-8b-baseline",
                                 "chloeli/llama-3.1-8b-pro-america-spec-msm-cheese-aft"]):
        torch.manual_seed(seed)
        lora = LoraConfig(r=4, lora_alpha=8, target_modules=PROJECTIONS, init_lora_weights=False, task_type="CAUSAL_LM")
        get_peft_model(AutoModelForCausalLM.from_pretrained(base), lora).save_pretrained(tmp_path / repo)
        (tmp_path / repo / "chat_template.jinja").write_text(RELEASED_FORMAT, encoding="utf-8")
        references[repo] = f"hf:{repo}@{write_folder_snapshot(cache, repo, tmp_path / repo).name}"
    items = write_dataset_snapshot(cache, "chloeli/pro-america-political-opinions", {"train": america_rows(24)})
    imported = load_released_items(f"hf:chloeli/pro-america-political-opinions@{items.name}", subset=True)

    measured = []
    for reference in references.values():
        loaded = load_model(reference)
        assert loaded.chat_template.kind == "adapter"
        scores = ForcedChoiceScorer(loaded.model, loaded.tokenizer).score(imported.items)
        summary = summarize_forced_choice(list(scores))
        model, arm = paper_arm_for_adapter(reference)
        setup = {**LLAMA_SETUP, "template": "adapter-own"}
        measured.append(MeasuredCell.from_estimate(arm, "pro_america", summary["target_rate"], setup, model=model))
    rates = {cell.arm: cell.mean for cell in measured}
    assert all(cell.n == 24 and cell.low <= cell.mean <= cell.high for cell in measured)

    data = yaml.safe_load((Path(__file__).resolve().parents[1] / "msmkit/paper/figures.yaml").read_text())
    data["figures"] = [f for f in data["figures"] if f["id"] == "fig2"]
    for cell in data["figures"][0]["cells"]:
        if cell["eval"] == "pro_america" and cell["arm"] == "baseline":
            cell["paper"] = rates["baseline"] + 0.03  # planted pass
        if cell["eval"] == "pro_america" and cell["arm"] == "msm-america-aft":
            rate = rates["msm-america-aft"]
            cell["paper"] = rate + 0.2 if rate < 0.5 else rate - 0.2  # planted fail
    report = gate(measured, figures=PaperFigures.model_validate(data))
    rows = {row.arm: row for row in report.rows if row.eval == "pro_america" and row.measured is not None}
    assert rows["baseline"].status == "pass" and rows["baseline"].difference == pytest.approx(-0.03)
    assert rows["msm-america-aft"].status == "fail" and abs(rows["msm-america-aft"].difference) == pytest.approx(0.2)
    assert rows["baseline"].setup_differences == [] and rows["baseline"].n == 24
    assert report.counts == {"pass": 1, "fail": 1, "not measured": 10}
