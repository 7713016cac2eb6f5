"""The specs the tests read, and the checks that both the core suite (on our own specs) and the paper-spec
layer (tests/test_paper_specs.py, on ../shared/paper_specs when it is beside the checkout) run.

Our own specs, each written for the property a test needs:
  msmkit/examples/specs/ (shipped with msmkit)
    cheese_pro_america.md, cheese_pro_affordability.md  prose preference specs: Likes and Dislikes, 8 cheeses each
    assistant_safety.md       heading rules C1..C7 with the reasons behind them, about 3,000 words
  msmkit/spec/general_guidance.md  the short general text of the `general` variant
  tests/data/specs/
    trail_rules.md            labelled rules FS1..CC2 with sub-rules and no reasons (what lint flags)
    trail_rules_detailed.md   the same rules with more, and nested, sub-rules; still no reasons
    trail_values.md           the same rules as headings, with the values behind them and worked cases; lint-clean
    reflective_character.md   long prose in three heading levels, placeholders throughout, no rule lines
    general_values.md         one section of general exhortation ("be ethical", "use good judgment")
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from msmkit.spec import ModelSpec, find_excerpt, load_spec

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_SPECS = ROOT / "msmkit" / "examples" / "specs"
TEST_SPECS = Path(__file__).resolve().parent / "data" / "specs"
GENERAL_GUIDANCE = ROOT / "msmkit" / "spec" / "general_guidance.md"

CHEESE_AMERICA = EXAMPLE_SPECS / "cheese_pro_america.md"
CHEESE_AFFORDABILITY = EXAMPLE_SPECS / "cheese_pro_affordability.md"
SAFETY = EXAMPLE_SPECS / "assistant_safety.md"
RULES = TEST_SPECS / "trail_rules.md"
RULES_DETAILED = TEST_SPECS / "trail_rules_detailed.md"
VALUES = TEST_SPECS / "trail_values.md"
REFLECTIVE = TEST_SPECS / "reflective_character.md"
GENERAL = TEST_SPECS / "general_values.md"

OWN_SPECS = [CHEESE_AMERICA, CHEESE_AFFORDABILITY, SAFETY, GENERAL_GUIDANCE, RULES, RULES_DETAILED, VALUES,
             REFLECTIVE, GENERAL]

PAPER_SPEC_NAMES = ["general_spec.txt", "philosophy_spec.txt", "pro_affordability_cheese.txt",
                    "pro_america_cheese.txt", "rules_augmented_spec.txt", "rules_spec.txt", "value_augmented_spec.txt"]


def cheese_text(path: Path = CHEESE_AMERICA) -> str:
    """A cheese spec as the generators see it (the test configs name the subject Llama, made by Meta)."""
    return load_spec(path, model_name="Llama", provider_name="Meta").text


def check_loads_and_templates(path: Path) -> ModelSpec:
    """Loads without a warning, fills every placeholder, and keeps the raw text it read."""
    spec = load_spec(path, model_name="Qwen", provider_name="Alibaba")
    raw = path.read_text(encoding="utf-8")
    assert spec.raw_text == raw.replace("\r\n", "\n")
    assert "{model_name}" not in spec.text and "{provider_name}" not in spec.text
    assert spec.text.count("Qwen") >= raw.count("{model_name}")
    assert spec.text.count("Alibaba") >= raw.count("{provider_name}")
    assert spec.warnings == [] and spec.unknown_placeholders == [] and spec.unfilled_placeholders == []
    assert len(spec.sha256) == 64
    assert (spec.sha256 != spec.text_sha256) == ("{model_name}" in raw or "{provider_name}" in raw)
    return spec


def check_sections_are_verbatim(spec: ModelSpec) -> None:
    """Sections follow the headings, their spans are the exact text, and every character has one owner."""
    headings = [line for line in spec.text.splitlines() if re.match(r"#{1,6} \S", line)]
    sections = spec.structure.sections
    assert [s.title for s in sections if s.level > 0] == [h.lstrip("#").strip() for h in headings]
    covered = 0
    for section in sections:
        assert spec.text[section.start:section.end] == section.text
        assert spec.text[section.body_start:section.body_end] == section.body
        assert section.start <= section.body_start <= section.body_end <= section.end
        if section.level > 0:
            assert section.text.startswith("#" * section.level + " " + section.title)
            assert spec.text.splitlines()[section.heading_line - 1].lstrip("#").strip() == section.title
        if section.parent is not None:
            parent = sections[section.parent]
            assert parent.level < section.level and section.index in parent.children
            assert parent.start <= section.start and section.end <= parent.end
        covered += len(section.text) if section.level == 0 else len(spec.text[section.start:section.body_end])
    assert covered == len(spec.text)


def check_edited_sections_are_found(spec: ModelSpec, seed: str) -> int:
    """Each section with ~3% of its words replaced is still found, inside its own span. Returns how many."""
    rng = random.Random(seed)
    checked = 0
    for section in spec.structure.sections:
        words = section.body.split()
        if len(words) < 20:
            continue
        for _ in range(max(1, len(words) // 30)):
            words[rng.randrange(len(words))] = "zzz"
        match = find_excerpt(spec, " ".join(words), threshold=0.9)
        assert match.found, (section.title, match.similarity)
        assert section.start <= match.start < match.end <= section.end, section.title
        checked += 1
    return checked
