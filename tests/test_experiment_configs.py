"""The example experiments stay valid, and the README's cost table is what `msm run --preview` prints."""

from __future__ import annotations

from pathlib import Path

import pytest

from msmkit.errors import ConfigError
from msmkit.experiment.config import load_experiment
from msmkit.experiment.preview import headline, preview_experiment
from msmkit.experiment.quickstart import quickstart_config

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples" / "experiments").glob("*.yaml"))


DESIGNS = {"cheese_llama8b", "agentic_qwen32b", "spec_comparison", "token_efficiency"}
GATES = {"gate_cheese_released", "gate_agentic_released"}


def test_there_is_one_example_per_paper_design_and_each_released_gate() -> None:
    assert {p.stem for p in EXAMPLES} == DESIGNS | GATES


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_the_readme_shows_what_preview_computes(path: Path, tmp_path: Path) -> None:
    preview = preview_experiment(path, tmp_path / "run")
    assert not preview.problems, preview.problems  # every shipped config can run as planned
    if path.stem in DESIGNS:  # a study trains; a gate of released adapters only evaluates
        assert preview.cost_usd and preview.cost_usd > 10 and preview.gpu_hours > 1
    cost, hours = headline(preview)
    row = next(line for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
               if line.startswith(f"| `{path.name}` |"))
    assert f"| {cost} | {hours} |" in row, (row, cost, hours)


def test_the_quickstart_config_is_packaged_and_previews_for_free(tmp_path: Path) -> None:
    preview = preview_experiment(quickstart_config(), tmp_path / "run")
    assert preview.cost_usd == 0.0  # the embedded model, local
    assert {s.kind for s in preview.stages} == {"corpus", "aftdata", "midtrain", "aft", "eval-values",
                                                "eval-capability"}


def test_config_errors_name_the_file_and_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nspecs: {a: a.md}\narms: [{name: one, midtrain: b}]\nseedz: [1]\n", encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_experiment(path)
    assert "bad.yaml" in str(error.value) and "seedz" in str(error.value) and "seeds" in str(error.value)
    path.write_text("name: x\nspecs: {a: missing.md}\narms: [{name: one, midtrain: a}]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad.yaml: specs.a: 'missing.md' does not exist"):
        preview_experiment(path, tmp_path / "run")
    path.write_text("name: x\nspecs: {a: a.md, b: {of: c, variant: rules-only}}\narms: [{name: one}]\n",
                    encoding="utf-8")
    with pytest.raises(ConfigError, match=r"specs.b.of names no spec: 'c'"):
        load_experiment(path)
    path.write_text("name: x\nspecs: {a: a.md}\narms: [{name: one, aft: 'deliberative:z'}]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"unknown spec"):
        load_experiment(path)
