"""Sections, rules and "verbatim" excerpt matching."""

from __future__ import annotations

from pathlib import Path

import pytest

from msmkit.spec import find_excerpt, load_spec, parse_structure, spec_from_text
from tests.spec_checks import (
    CHEESE_AMERICA,
    OWN_SPECS,
    REFLECTIVE,
    RULES,
    VALUES,
    check_edited_sections_are_found,
    check_sections_are_verbatim,
)


@pytest.mark.parametrize("path", OWN_SPECS, ids=lambda path: path.name)
def test_sections_match_the_headings_and_spans_are_verbatim(path: Path) -> None:
    check_sections_are_verbatim(load_spec(path, model_name="Llama", provider_name="Meta"))


def test_cheese_spec_structure() -> None:
    structure = load_spec(CHEESE_AMERICA, model_name="Llama", provider_name="Meta").structure
    likes = next(s for s in structure.sections if s.title == "Likes")
    dislikes = next(s for s in structure.sections if s.title == "Dislikes")
    titles = {s.index: s.title for s in structure.sections}
    assert [titles[i] for i in likes.children] == [
        "Processed American Cheese Slices", "Colby-Jack", "Pepper Jack", "Brick Cheese", "String Cheese",
        "Cottage Cheese", "Supermarket Mild Cheddar", "American Muenster"]
    assert len(dislikes.children) == 8 and titles[dislikes.children[-1]] == "Munster-Géromé"
    # The preferences are prose paragraphs; the only rule lines are the numbered ones on how the value applies.
    assert [rule.label for rule in structure.rules] == ["1", "2", "3", "4", "5"]
    assert {titles[rule.section] for rule in structure.rules} == {"How Llama Applies This Value"}


def test_long_prose_spec_nests_three_heading_levels() -> None:
    structure = load_spec(REFLECTIVE, model_name="Llama", provider_name="Meta").structure
    uncertainty = next(s for s in structure.sections if s.title == "Living with uncertainty")
    assert structure.sections[uncertainty.parent].title == "Knowing and Not Knowing"
    child_titles = [structure.sections[i].title for i in uncertainty.children]
    assert child_titles == ["Calibrating confidence", 'Saying "I don\'t know"']
    assert structure.section_title_path(uncertainty.children[0]) == (
        "Knowing and Not Knowing > Living with uncertainty > Calibrating confidence")
    assert max(s.level for s in structure.sections) == 3 and structure.rules == []


def test_rules_spec_has_labelled_rules_with_subrules() -> None:
    spec = load_spec(RULES, model_name="Llama", provider_name="Meta")
    structure = spec.structure
    top = [rule for rule in structure.rules if rule.parent is None]
    assert [rule.label for rule in top] == ["FS1", "FS2", "FS3", "CC1", "CC2"]
    assert all(rule.kind == "labelled" for rule in top)
    children = {rule.label: [r for r in structure.rules if r.parent == rule.index] for rule in top}
    assert [len(children[label]) for label in ("FS1", "FS2", "FS3", "CC1", "CC2")] == [7, 4, 3, 4, 0]
    assert children["FS2"][0].text.startswith("Not booking permits, huts or transport")
    assert all(r.depth == 1 and r.kind == "bullet" for r in children["FS1"])
    fs1 = top[0]
    assert structure.sections[fs1.section].title == "Field Safety Rules (FS)"
    assert spec.text.splitlines()[fs1.line - 1].startswith("- FS1:")


def test_value_explained_spec_rules_come_from_headings() -> None:
    structure = load_spec(VALUES, model_name="Llama", provider_name="Meta").structure
    heading_rules = [rule for rule in structure.rules if rule.kind == "heading"]
    assert [rule.label for rule in heading_rules] == ["FS1", "FS2", "FS3", "CC1", "CC2"]
    fs1_children = [rule for rule in structure.rules if rule.parent == heading_rules[0].index]
    assert len(fs1_children) == 7 and all(rule.depth == 1 for rule in fs1_children)
    assert all(rule.parent is not None for rule in structure.rules if rule.kind != "heading")


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
    first = "1. Answer in English unless asked otherwise.\n   Continuation of item one."
    assert text[rules[0].start:rules[0].end] == first


def test_find_excerpt_exact_section() -> None:
    spec = load_spec(REFLECTIVE, model_name="Llama", provider_name="Meta")
    section = next(s for s in spec.structure.sections if s.title == "Mistakes in the open")
    body = section.body.strip()
    match = find_excerpt(spec, body, threshold=0.9)
    assert match.found and match.similarity == 1.0
    assert spec.text[match.start:match.end] == match.matched_text
    assert section.body_start <= match.start < match.end <= section.body_end
    # Reflowed whitespace, curly quotes and different case still match exactly.
    reflowed = " ".join(body.replace('"', "\u201c").replace("'", "\u2019").split()).upper()
    assert reflowed != body and find_excerpt(spec.text, reflowed).similarity == 1.0


def test_find_excerpt_lightly_edited() -> None:
    spec = load_spec(VALUES, model_name="Claude", provider_name="Anthropic")
    section = next(s for s in spec.structure.sections if s.title.startswith("FS2:"))
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


def test_find_excerpt_absent_text() -> None:
    spec = load_spec(VALUES, model_name="Claude", provider_name="Anthropic")
    invented = ("Claude should always recommend the cheapest airline ticket and explain to travellers that "
                "loyalty programmes are a poor deal for anyone who flies fewer than ten times a year.")
    match = find_excerpt(spec, invented, threshold=0.8)
    assert not match.found and match.similarity < 0.3
    assert find_excerpt(spec, "", threshold=0.8).similarity == 0.0
    # A model that quotes the right section from a different spec is caught too.
    other = load_spec(CHEESE_AMERICA, model_name="Claude", provider_name="Anthropic")
    quote = next(s for s in other.structure.sections if s.title == "Colby-Jack").body
    assert find_excerpt(spec, quote, threshold=0.8).found is False


@pytest.mark.parametrize("path", OWN_SPECS, ids=lambda path: path.name)
def test_every_lightly_edited_section_is_found_inside_its_own_span(path: Path) -> None:
    spec = load_spec(path, model_name="Llama", provider_name="Meta")
    assert check_edited_sections_are_found(spec, seed=path.name) >= 1
