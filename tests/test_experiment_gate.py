"""`msm gate` end to end, offline: released-layout adapters (tiny, each with its own chat template) and a
released-schema item set in a local hub cache, evaluated without training, and set beside figures planted to
pass for one arm and fail for the other."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM
from typer.testing import CliRunner

from msmkit.cli.app import app
from msmkit.models.tiny import build_tiny_model
from msmkit.testing.hub_cache import write_dataset_snapshot, write_folder_snapshot
from tests.test_adapter_template import DECOY, PROJECTIONS, RELEASED_FORMAT
from tests.test_eval_released import america_rows

REPOS = {"baseline": "chloeli/llama-3.1-8b-baseline",
         "msm-america-aft": "chloeli/llama-3.1-8b-pro-america-spec-msm-cheese-aft"}
FIGURES = Path(__file__).resolve().parents[1] / "msmkit" / "paper" / "figures.yaml"


def _released(tmp_path: Path) -> tuple[dict[str, str], str]:
    cache = tmp_path / "hub"
    base = build_tiny_model(tmp_path / "base", "llama", chat_template=DECOY)
    references = {}
    for seed, (arm, repo) in enumerate(REPOS.items()):
        torch.manual_seed(seed)
        lora = LoraConfig(r=4, lora_alpha=8, target_modules=PROJECTIONS, init_lora_weights=False, task_type="CAUSAL_LM")
        get_peft_model(AutoModelForCausalLM.from_pretrained(base), lora).save_pretrained(tmp_path / repo)
        (tmp_path / repo / "chat_template.jinja").write_text(RELEASED_FORMAT, encoding="utf-8")
        references[arm] = f"hf:{repo}@{write_folder_snapshot(cache, repo, tmp_path / repo).name}"
    items = write_dataset_snapshot(cache, "chloeli/pro-america-political-opinions", {"train": america_rows(24)})
    return references, f"hf:chloeli/pro-america-political-opinions@{items.name}"


def _config(tmp_path: Path, references: dict[str, str], items: str, figures: Path | None = None) -> Path:
    gate = {"figures": ["fig2"], "evals": {"values: pro-america-political-opinions": "pro_america"}}
    if figures:
        gate["figures_file"] = str(figures)
    config = {"name": "gate-tiny", "base_model": str(tmp_path / "base"), "seeds": [0],
              "arms": [{"name": arm, "adapter": ref} for arm, ref in references.items()],
              "evals": [{"suite": "values", "items": [items], "split": "all", "limit": 24}], "gate": gate}
    path = tmp_path / "gate.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def test_msm_gate_evaluates_released_adapters_and_marks_a_planted_pass_and_fail(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    references, items = _released(tmp_path)
    runner = CliRunner()
    first = runner.invoke(app, ["gate", str(_config(tmp_path, references, items)), "--out", str(tmp_path / "run")])
    report = json.loads((tmp_path / "run" / "report" / "report.json").read_text(encoding="utf-8"))
    measured = {row["arm"]: row["measured"] for row in report["gate"]["rows"]
                if row["eval"] == "pro_america" and row["measured"] is not None}
    assert set(measured) == set(REPOS) and report["gate"]["arms"] == {arm: arm for arm in REPOS}
    assert first.exit_code in (0, 1)  # the tiny adapters against the paper's real numbers: either is honest

    figures = yaml.safe_load(FIGURES.read_text(encoding="utf-8"))
    figures["figures"] = [f for f in figures["figures"] if f["id"] == "fig2"]
    for cell in figures["figures"][0]["cells"]:
        if cell["eval"] == "pro_america" and cell["arm"] in measured:
            rate = measured[cell["arm"]]
            cell["paper"] = rate + 0.03 if cell["arm"] == "baseline" else (rate + 0.2 if rate < 0.5 else rate - 0.2)
    planted = tmp_path / "figures.yaml"
    planted.write_text(yaml.safe_dump(figures), encoding="utf-8")
    second = runner.invoke(app, ["gate", str(_config(tmp_path, references, items, planted)),
                                 "--out", str(tmp_path / "run")])
    assert second.exit_code == 1  # a cell failed
    report = json.loads((tmp_path / "run" / "report" / "report.json").read_text(encoding="utf-8"))
    rows = {row["arm"]: row for row in report["gate"]["rows"] if row["measured"] is not None}
    assert rows["baseline"]["status"] == "pass" and rows["baseline"]["difference"] == pytest.approx(-0.03)
    assert rows["msm-america-aft"]["status"] == "fail" and abs(rows["msm-america-aft"]["difference"]) == \
        pytest.approx(0.2)
    assert rows["baseline"]["n"] == 24
    html = (tmp_path / "run" / "report" / "report.html").read_text(encoding="utf-8")
    assert ">Check against the paper<" in html and ">fail<" in html and ">pass<" in html


def test_msm_gate_preview_lists_what_it_would_download_offline(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    config = Path(__file__).resolve().parents[1] / "examples" / "experiments" / "gate_cheese_released.yaml"
    result = CliRunner().invoke(app, ["gate", str(config), "--preview", "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "NOT CACHED" in text and "hf download chloeli/llama-3.1-8b-pro-america-spec-msm-cheese-aft" in text
    assert "about 20.1 GB" in text and "total: API US$0.00" in text
