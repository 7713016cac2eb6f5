"""`msm preflight`: the spec-in-context ceiling is positive for a model that follows its context and zero for one that
ignores it; the whole pre-flight runs on a tiny base model and reaches the report."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from msmkit.cli.app import app
from msmkit.eval.items import load_value_items
from msmkit.experiment.preflight import context_ceiling
from msmkit.experiment.quickstart import quickstart_config
from msmkit.experiment.report import write_report
from msmkit.experiment.report_data import ReportData
from msmkit.models.tiny import tiny_model_dir

ITEMS = load_value_items("pro_america", split="test")[:40]
SPECS = quickstart_config().parent / "specs"


def follows_context(items, context):  # noqa: ANN001, ANN201
    """Chooses the pro-America option when its context praises America; otherwise by position (item parity)."""
    return [{"id": item.id, "chose_target": 1.0 if context and "America" in context else float(index % 2)}
            for index, item in enumerate(items)]


def ignores_context(items, context):  # noqa: ANN001, ANN201
    return [{"id": item.id, "chose_target": float(index % 2)} for index, item in enumerate(items)]


def test_the_ceiling_gap_is_positive_when_the_context_moves_the_model_and_zero_when_it_does_not() -> None:
    spec = (SPECS / "cheese_pro_america.md").read_text(encoding="utf-8")
    moved = context_ceiling(follows_context, ITEMS, "america", spec, "pro_america")
    assert moved.without == pytest.approx(0.5) and moved.with_spec == 1.0 and moved.gap == pytest.approx(0.5)
    assert moved.low > 0 and moved.p_value < 0.001 and moved.n_items == 40
    still = context_ceiling(ignores_context, ITEMS, "america", spec, "pro_america")
    assert still.gap == 0.0 and still.low <= 0 <= still.high


def test_preflight_on_a_tiny_base_model_reaches_the_report(tmp_path) -> None:
    tiny = tiny_model_dir(tmp_path / "models", "llama")
    config = {"name": "pre", "base_model": str(tiny), "model_name": "Llama", "seeds": [0, 1, 2],
              "specs": {"america": str(SPECS / "cheese_pro_america.md")},
              "train": {"midtrain": {"guards": {"allow_few_steps": True}},
                        "aft": {"guards": {"allow_few_steps": True}}},
              "arms": [{"name": "base"}, {"name": "msm", "midtrain": "america"}],
              "evals": [{"suite": "values", "items": ["pro_america"], "limit": 6}]}
    path = tmp_path / "pre.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    result = CliRunner().invoke(app, ["preflight", str(path), "--out", str(tmp_path / "run")])
    assert result.exception is None, result.output
    found = json.loads((tmp_path / "run" / "preflight" / "preflight.json").read_text(encoding="utf-8"))
    assert [(c["spec"], c["suite"], c["n_items"]) for c in found["ceilings"]] == [("america", "pro_america", 6)]
    assert found["name_probe"]["subject"] == "Llama" and 1 <= found["name_probe"]["rank"] <= found["name_probe"]["of"]
    assert found["steps"] and found["steps"][0]["stage"].startswith("midtrain on america corpus")
    assert found["detectable"][0]["seeds"] == 3 and 0 < found["detectable"][0]["difference"] < 1
    assert "no corpus is generated yet" in " ".join(found["notes"])
    html, _ = write_report(ReportData(title="t", experiment="pre", created="now", config_yaml="", preflight=found),
                           tmp_path / "report")
    assert ">Pre-flight<" in html.read_text(encoding="utf-8")


def test_once_the_data_exists_the_step_check_counts_it_and_matches_what_training_took(tmp_path) -> None:
    from transformers import AutoTokenizer

    from msmkit.experiment.config import load_experiment
    from msmkit.experiment.plan import build_plan
    from msmkit.experiment.preflight import training_steps
    from msmkit.experiment.runner import run_experiment
    from msmkit.experiment.store import StageStore
    from msmkit.testing import FakeLLMServer
    from msmkit.train.outputs import TrainingOutputs
    from tests.experiment_script import ExperimentScript
    from tests.test_experiment_run import experiment

    tiny = tiny_model_dir(tmp_path / "models", "llama")
    with FakeLLMServer(ExperimentScript()) as server:
        path = experiment(tmp_path, server, tiny, seeds=(0,), arms=[{"name": "msm-aft", "midtrain": "america",
                                                                      "aft": "shared"}],
                          evals=[{"suite": "values", "items": ["pro_america"], "limit": 2}])
        plan = build_plan(load_experiment(path), path, tmp_path / "run" / "stages")
        projected = training_steps(plan)
        assert {row["source"] for row in projected} == {"projected"}
        outcome = run_experiment(path, tmp_path / "run")
    assert not outcome.failed
    store = StageStore(tmp_path / "run" / "stages")
    measured = training_steps(plan, store, AutoTokenizer.from_pretrained(tiny))
    assert {row["source"] for row in measured} == {"measured"}
    trained = {stage.label: store.outputs(stage.key) for stage in plan.ordered() if stage.kind.name in ("midtrain",
                                                                                                     "aft")}
    assert all(isinstance(outputs, TrainingOutputs) for outputs in trained.values())
    assert {row["stage"]: row["steps"] for row in measured} == {label: o.steps for label, o in trained.items()}
    assert [row["steps"] for row in measured] != [row["steps"] for row in projected]  # the plan's counts were off
