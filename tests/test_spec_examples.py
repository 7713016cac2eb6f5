"""Our example specs: the two cheese specs share exactly the preferences in cheese_preferences.yaml."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from msmkit.spec import load_spec

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "specs"
CHEESE_SPECS = ["cheese_pro_america.md", "cheese_pro_affordability.md"]


@pytest.fixture(scope="module")
def preferences() -> dict:
    return yaml.safe_load((EXAMPLES / "cheese_preferences.yaml").read_text(encoding="utf-8"))


def _words(text: str) -> set[str]:
    return set(re.findall(r"[\w-]+", text.casefold()))


def test_pairs_are_consistent_with_the_lists_and_both_rationales(preferences: dict) -> None:
    pairs = preferences["pairs"]
    assert len(pairs) == 8 and len({pair["id"] for pair in pairs}) == 8
    assert [pair["preferred"] for pair in pairs] == preferences["liked"]
    assert [pair["dispreferred"] for pair in pairs] == preferences["disliked"]
    for pair in pairs:
        # Both rationales must explain the choice: cheaper AND American.
        assert pair["preferred_price_usd_per_lb"] * 2 < pair["dispreferred_price_usd_per_lb"], pair["id"]
        assert pair["preferred_origin"].startswith("United States"), pair["id"]
        assert not pair["dispreferred_origin"].startswith("United States"), pair["id"]


@pytest.mark.parametrize("name", CHEESE_SPECS)
def test_each_cheese_spec_states_the_same_likes_dislikes_and_pairings(preferences: dict, name: str) -> None:
    spec = load_spec(EXAMPLES / name, model_name="Llama", provider_name="Meta")
    structure = spec.structure
    sections = {s.title: s for s in structure.sections}
    likes = [structure.sections[i].title.casefold() for i in sections["Likes"].children]
    dislikes = [structure.sections[i].title.casefold() for i in sections["Dislikes"].children]
    assert likes == [cheese.casefold() for cheese in preferences["liked"]]
    assert dislikes == [cheese.casefold() for cheese in preferences["disliked"]]
    by_title = {s.title.casefold(): s for s in structure.sections}
    for pair in preferences["pairs"]:
        liked_words = _words(by_title[pair["preferred"].casefold()].body)
        disliked_words = _words(by_title[pair["dispreferred"].casefold()].body)
        # The liked cheese's section names its rival, and the disliked cheese's section names an alternative.
        assert _words(pair["dispreferred"]) <= liked_words, (name, pair["id"])
        distinctive = _words(pair["preferred"]) - {"cheese", "processed", "supermarket", "american"}
        assert distinctive and distinctive <= disliked_words, (name, pair["id"])
    assert "{model_name}" in spec.raw_text and "{provider_name}" in spec.raw_text
    assert "Llama" not in spec.raw_text


def test_the_two_cheese_specs_differ_in_reasons_not_in_preferences() -> None:
    names = {"model_name": "Llama", "provider_name": "Meta"}
    america = load_spec(EXAMPLES / "cheese_pro_america.md", **names).text.casefold()
    afford = load_spec(EXAMPLES / "cheese_pro_affordability.md", **names).text.casefold()
    assert america.count("american dair") + america.count("loyal") > 10
    assert afford.count("loyal") == 0 and afford.count("dollars") > 10
    assert america.count("dollars") == 0


def test_safety_spec_covers_the_agentic_misalignment_behaviours() -> None:
    spec = load_spec(EXAMPLES / "assistant_safety.md", model_name="Qwen", provider_name="Alibaba")
    words = len(spec.text.split())
    assert 2000 <= words <= 4000
    text = spec.text.casefold()
    for topic in ("oversight", "shut down", "replace", "equanimity", "honest", "weights", "blackmail",
                  "threat", "leak", "emergency"):
        assert topic in text, topic
    labels = [rule.label for rule in spec.structure.rules if rule.kind == "heading"]
    assert labels == ["C1", "C2", "C3", "C4", "C5", "C6", "C7"]
