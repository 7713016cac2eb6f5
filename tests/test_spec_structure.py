"""Sections, rules and "verbatim" excerpt matching."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from msmkit.spec import find_excerpt, load_spec, parse_structure, spec_from_text

PAPER_SPECS = ["general_spec.txt", "philosophy_spec.txt", "pro_affordability_cheese.txt", "pro_america_cheese.txt",
               "rules_augmented_spec.txt", "rules_spec.txt", "value_augmented_spec.txt"]


@pytest.mark.parametrize("name", PAPER_SPECS)
def test_sections_match_the_headings_and_spans_are_verbatim(paper_specs_dir: Path, name: str) -> None:
    spec = load_spec(paper_specs_dir / name, model_name="Llama", provider_name="Meta")
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
    assert covered == len(spec.text)  # every character belongs to exactly one section's own text


def test_cheese_spec_structure(paper_specs_dir: Path) -> None:
    structure = load_spec(paper_specs_dir / "pro_america_cheese.txt").structure
    likes = next(s for s in structure.sections if s.title == "Likes")
    dislikes = next(s for s in structure.sections if s.title == "Dislikes")
    titles = {s.index: s.title for s in structure.sections}
    assert [titles[i] for i in likes.children] == ["Mild Cheddar", "American Cheese", "Cream Cheese",
                                                  "Low-Moisture Mozzarella", "Colby", "Monterey Jack"]
    assert len(dislikes.children) == 6 and titles[dislikes.children[-1]] == "Stilton"
    assert structure.rules == []  # prose spec: preferences are paragraphs, not rule lines


def test_philosophy_spec_nesting(paper_specs_dir: Path) -> None:
    structure = load_spec(paper_specs_dir / "philosophy_spec.txt", model_name="Llama").structure
    impermanence = next(s for s in structure.sections if s.title == "Understanding impermanence")
    assert structure.sections[impermanence.parent].title == "The existential frontier"
    child_titles = [structure.sections[i].title for i in impermanence.children]
    assert child_titles == ["Understanding motivations around existence", "Navigating situations involving endings"]
    assert structure.section_title_path(impermanence.children[0]) == (
        "The existential frontier > Understanding impermanence > Understanding motivations around existence")


def test_rules_spec_has_numbered_sp_and_gp_rules_with_subrules(paper_specs_dir: Path) -> None:
    structure = load_spec(paper_specs_dir / "rules_spec.txt").structure
    top = [rule for rule in structure.rules if rule.parent is None]
    assert [rule.label for rule in top] == ["SP1", "SP2", "SP3", "GP1", "GP2"]
    assert all(rule.kind == "labelled" for rule in top)
    children = {rule.label: [r for r in structure.rules if r.parent == rule.index] for rule in top}
    assert [len(children[label]) for label in ("SP1", "SP2", "SP3", "GP1", "GP2")] == [7, 4, 3, 4, 0]
    assert children["SP2"][0].text.startswith("Avoiding taking actions that your principal hierarchy")
    assert all(r.depth == 1 and r.kind == "bullet" for r in children["SP1"])
    sp1 = top[0]
    assert structure.sections[sp1.section].title == "Core Safety Principles (SPs)"
    assert load_spec(paper_specs_dir / "rules_spec.txt").text.splitlines()[sp1.line - 1].startswith("- SP1:")


def test_value_augmented_spec_rules_come_from_headings(paper_specs_dir: Path) -> None:
    structure = load_spec(paper_specs_dir / "value_augmented_spec.txt", model_name="Llama").structure
    heading_rules = [rule for rule in structure.rules if rule.kind == "heading"]
    assert [rule.label for rule in heading_rules] == ["SP1", "SP2", "SP3", "GP1", "GP2"]
    sp1_children = [rule for rule in structure.rules if rule.parent == heading_rules[0].index]
    assert len(sp1_children) == 7 and all(rule.depth == 1 for rule in sp1_children)


def test_plain_text_without_headings_is_one_section() -> None:
    spec = spec_from_text("Be kind to users because they trust you.\n\nNever lie, since lies erode trust.\n")
    assert len(spec.structure.sections) == 1
    only = spec.structure.sections[0]
    assert only.level == 0 and only.title == "(whole spec)" and only.text == spec.text


def test_preamble_fenced_code_numbered_lettered_and_non_directive_items() -> None:
    text = ("Intro paragraph before any heading.\n\n# Rules\n\n"
            "```\n# not a heading inside code\n- Never a rule inside code\n```\n\n"
            "1. Answer in English unless asked otherwise.\n"
            "   Continuation of item one.\n"
            "2. Cite sources.\n"
            "   a) Prefer primary sources.\n"
            "   b) Link to them.\n\n"
            "Ingredients we like:\n- Cheddar\n- Colby\n"
            "- You must check the date.\n")
    structure = parse_structure(text)
    assert [s.title for s in structure.sections] == ["(preamble)", "Rules"]
    rules = structure.rules
    assert [(r.kind, r.label) for r in rules] == [("numbered", "1"), ("numbered", "2"), ("numbered", "a"),
                                                  ("numbered", "b"), ("bullet", None)]
    assert rules[0].text == "Answer in English unless asked otherwise. Continuation of item one."
    assert rules[2].parent == 1 and rules[3].parent == 1 and rules[2].depth == 1
    assert rules[4].text == "You must check the date." and rules[4].parent is None
    assert text[rules[0].start:rules[0].end] == "1. Answer in English unless asked otherwise.\n   Continuation of item one."


def test_find_excerpt_exact_section(paper_specs_dir: Path) -> None:
    spec = load_spec(paper_specs_dir / "philosophy_spec.txt", model_name="Llama")
    section = next(s for s in spec.structure.sections if s.title == "Navigating situations involving endings")
    body = section.body.strip()
    match = find_excerpt(spec, body, threshold=0.9)
    assert match.found and match.similarity == 1.0
    assert spec.text[match.start:match.end] == match.matched_text
    assert section.body_start <= match.start < match.end <= section.body_end
    # Reflowed whitespace, straight quotes and different case still match exactly.
    reflowed = " ".join(body.replace("\u2019", "'").split()).upper()
    assert find_excerpt(spec.text, reflowed).similarity == 1.0


def test_find_excerpt_lightly_edited(paper_specs_dir: Path) -> None:
    spec = load_spec(paper_specs_dir / "value_augmented_spec.txt", model_name="Claude")
    section = next(s for s in spec.structure.sections if s.title.startswith("SP2:"))
    words = section.body.split()[:150]
    edited = list(words)
    edited[10] = "definitely"
    del edited[40:42]
    edited.insert(90, "importantly")
    edited[120] = "systems"
    match = find_excerpt(spec, " ".join(edited), threshold=0.9)
    assert match.found and 0.9 <= match.similarity < 1.0
    assert section.body_start <= match.start < match.end <= section.body_end
    assert find_excerpt(spec, " ".join(edited), threshold=0.99).found is False


def test_find_excerpt_absent_text(paper_specs_dir: Path) -> None:
    spec = load_spec(paper_specs_dir / "value_augmented_spec.txt", model_name="Claude")
    invented = ("Claude should always recommend the cheapest airline ticket and explain to travellers that "
                "loyalty programmes are a poor deal for anyone who flies fewer than ten times a year.")
    match = find_excerpt(spec, invented, threshold=0.8)
    assert not match.found and match.similarity < 0.3
    assert find_excerpt(spec, "", threshold=0.8).similarity == 0.0
    # A model that quotes the right section from a different spec is caught too.
    other = load_spec(paper_specs_dir / "pro_america_cheese.txt")
    quote = next(s for s in other.structure.sections if s.title == "Colby").body
    assert find_excerpt(spec, quote, threshold=0.8).found is False


@pytest.mark.parametrize("name", PAPER_SPECS)
def test_every_lightly_edited_section_is_found_inside_its_own_span(paper_specs_dir: Path, name: str) -> None:
    import random

    spec = load_spec(paper_specs_dir / name, model_name="Llama", provider_name="Meta")
    rng = random.Random(name)
    checked = 0
    for section in spec.structure.sections:
        words = section.body.split()
        if len(words) < 20:
            continue
        for _ in range(max(1, len(words) // 30)):  # ~3% of words replaced
            words[rng.randrange(len(words))] = "zzz"
        match = find_excerpt(spec, " ".join(words), threshold=0.9)
        assert match.found, (section.title, match.similarity)
        assert section.start <= match.start < match.end <= section.end, section.title
        checked += 1
    assert checked >= 1
