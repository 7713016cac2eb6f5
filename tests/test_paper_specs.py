"""The paper-spec layer: the spec checks of the core suite, run on the paper's seven specs.

The paper's specs are not part of msmkit; they are read from ../shared/paper_specs when it is beside the
checkout, and every test here skips when it is not (through the `paper_specs_dir` fixture). These are the
only tests allowed to skip for a missing ../shared: the core suite uses the project's own specs
(tests/spec_checks.py lists them), which the last test here keeps true.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

from msmkit.errors import SpecError
from msmkit.spec import SpecWarning, lint_spec, load_spec, spec_from_text
from msmkit.spec.variants import VariantOptions, make_variant
from tests.spec_checks import (
    PAPER_SPEC_NAMES,
    check_edited_sections_are_found,
    check_loads_and_templates,
    check_sections_are_verbatim,
)

PROSE_ONLY = ["general_spec.txt", "philosophy_spec.txt", "pro_affordability_cheese.txt", "pro_america_cheese.txt"]


@pytest.mark.parametrize("name", PAPER_SPEC_NAMES)
def test_every_paper_spec_loads_and_templates(paper_specs_dir: Path, name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", SpecWarning)
        check_loads_and_templates(paper_specs_dir / name)


@pytest.mark.parametrize("name", PAPER_SPEC_NAMES)
def test_paper_spec_sections_are_verbatim_and_edited_sections_are_found(paper_specs_dir: Path, name: str) -> None:
    spec = load_spec(paper_specs_dir / name, model_name="Llama", provider_name="Meta")
    check_sections_are_verbatim(spec)
    assert check_edited_sections_are_found(spec, seed=name) >= 1


def test_paper_spec_structure(paper_specs_dir: Path) -> None:
    cheese = load_spec(paper_specs_dir / "pro_america_cheese.txt").structure
    likes = next(s for s in cheese.sections if s.title == "Likes")
    dislikes = next(s for s in cheese.sections if s.title == "Dislikes")
    assert len(likes.children) == len(dislikes.children) == 6 and cheese.rules == []
    philosophy = load_spec(paper_specs_dir / "philosophy_spec.txt", model_name="Llama").structure
    assert max(s.level for s in philosophy.sections) == 3
    rules = load_spec(paper_specs_dir / "rules_spec.txt").structure
    top = [rule for rule in rules.rules if rule.parent is None]
    assert [rule.label for rule in top] == ["SP1", "SP2", "SP3", "GP1", "GP2"]
    assert [len([r for r in rules.rules if r.parent == rule.index]) for rule in top] == [7, 4, 3, 4, 0]
    values = load_spec(paper_specs_dir / "value_augmented_spec.txt", model_name="Llama").structure
    assert [r.label for r in values.rules if r.kind == "heading"] == ["SP1", "SP2", "SP3", "GP1", "GP2"]


def test_paper_spec_lint_findings(paper_specs_dir: Path) -> None:
    rules = lint_spec(load_spec(paper_specs_dir / "rules_spec.txt"))
    labels = [f.message.split("'")[1].split(":")[0] for f in rules.findings if f.check == "rule-without-reason"]
    assert labels == ["SP1", "SP2", "SP3", "GP1", "GP2"]
    values = lint_spec(load_spec(paper_specs_dir / "value_augmented_spec.txt", model_name="Claude"))
    assert not [f for f in values.findings if f.check == "rule-without-reason"]
    general = lint_spec(load_spec(paper_specs_dir / "general_spec.txt", model_name="Claude"))
    assert len([f for f in general.findings if f.check == "vague-guidance"]) >= 3


@pytest.mark.parametrize("name", PAPER_SPEC_NAMES)
def test_deterministic_variants_of_each_paper_spec(paper_specs_dir: Path, name: str) -> None:
    spec = load_spec(paper_specs_dir / name, model_name="Llama", provider_name="Meta")
    other = make_variant(spec, "about-other-ai", VariantOptions(other_ai_name="Orion")).text
    assert not re.search(r"\bLlama\b", other) and "{model_name}" not in other
    assert other.count("Orion") >= spec.raw_text.count("Llama") + spec.raw_text.count("{model_name}")
    humans = make_variant(spec, "about-humans").text
    assert humans.startswith("> Note:") and not re.search(r"\bLlama\b", humans)
    if name in PROSE_ONLY:  # no rule lines: nothing for rules-only to keep
        with pytest.raises(SpecError, match="rules-only needs a structured spec"):
            make_variant(spec, "rules-only")
        return
    rules_only = make_variant(spec, "rules-only").text
    reparsed = spec_from_text(rules_only, model_name="Llama", provider_name="Meta").structure
    assert len(reparsed.rules) == len(spec.structure.rules)
    assert [r.label for r in reparsed.rules if r.label] == [r.label for r in spec.structure.rules if r.label]
    assert len(rules_only) <= len(spec.raw_text)


def test_only_this_layer_reads_the_paper_specs() -> None:
    here = Path(__file__).resolve()
    allowed = {here.name, "conftest.py", "spec_checks.py"}  # the layer, its fixture, and the list of names
    readers = [path.name for path in sorted(here.parent.glob("*.py")) if path.name not in allowed
               and re.search(r'paper_specs|\.\./shared|/ "shared"', path.read_text(encoding="utf-8"))]
    assert readers == [], f"core tests must use the project's own specs (tests/spec_checks.py): {readers}"
