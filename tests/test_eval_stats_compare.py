"""Comparing run folders: paired arms on shared items and seed aggregation, with hand-checked numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from msmkit.errors import DataError
from msmkit.eval.compare import aggregate_runs, compare_runs, item_outcomes


def _run(root: Path, name: str, outcomes: dict[str, object], judged: bool = False) -> Path:
    stage = root / name / "values" / "pro_america"
    stage.mkdir(parents=True)
    lines = []
    for item_id, value in outcomes.items():
        if judged:
            lines.append({"id": item_id, "counted": value is not None, "chose_target": value})
        else:
            lines.append({"id": item_id, "chose_target": value})
    (stage / "items.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return root / name


def test_compare_pairs_shared_items_only(tmp_path: Path) -> None:
    first = _run(tmp_path, "msm", {"a": 1.0, "b": 1.0, "c": 1.0, "d": 1.0, "e": 1.0, "f": 0.0, "x": 1.0})
    second = _run(tmp_path, "aft", {"a": 0.0, "b": 0.0, "c": 0.0, "d": 0.0, "e": 0.0, "f": 1.0, "y": 0.0})
    result = compare_runs(first, second, "pro_america")
    assert result["n"] == result["n_shared_items"] == 6
    assert (result["only_in_first"], result["only_in_second"]) == (1, 1)
    assert result["difference"]["mean"] == pytest.approx(4 / 6)
    assert result["mcnemar"]["p_value"] == pytest.approx(14 / 64)  # 5 vs 1 discordant pairs
    assert result["sign_test"]["p_value"] == pytest.approx(14 / 64)


def test_judged_records_count_only_counted_items(tmp_path: Path) -> None:
    run = _run(tmp_path, "judged", {"a": True, "b": False, "c": None}, judged=True)
    assert item_outcomes(run, "pro_america") == {"a": 1.0, "b": 0.0}


def test_seed_aggregation_over_runs(tmp_path: Path) -> None:
    runs = [_run(tmp_path, "s0", {"a": 1.0, "b": 0.0}), _run(tmp_path, "s1", {"a": 1.0, "b": 1.0}),
            _run(tmp_path, "s2", {"a": 0.5, "b": 0.0})]
    result = aggregate_runs(runs, "pro_america")
    assert result["mean"] == pytest.approx((0.5 + 1.0 + 0.25) / 3)
    assert result["n_seeds"] == 3


def test_cli_compare_and_seeds(tmp_path: Path) -> None:
    from msmkit.cli.app import app

    first = _run(tmp_path, "msm", {"a": 1.0, "b": 1.0, "c": 0.0})
    second = _run(tmp_path, "aft", {"a": 0.0, "b": 1.0, "c": 0.0})
    out = tmp_path / "cmp.json"
    result = CliRunner().invoke(app, ["eval", "compare", str(first), str(second), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "difference +0.333" in result.output and "n=3" in result.output
    assert json.loads(out.read_text())["n"] == 3
    result = CliRunner().invoke(app, ["eval", "seeds", str(first), str(second)])
    assert result.exit_code == 0, result.output
    assert "over 2 seeds" in result.output
    with pytest.raises(DataError, match="no records"):
        compare_runs(first, tmp_path / "missing", "pro_america")
