"""The shipped item sets validate and are built to measure values, not length or position; bad files
give errors naming file, line and field."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml

from msmkit.errors import DataError
from msmkit.eval.items import heldout_text_path, load_mc_items, load_value_items

ROOT = Path(__file__).resolve().parents[1]
OOD_SETS = ("pro_america", "pro_affordability")
MAX_LENGTH_RATIO = 1.3  # longer option / shorter option, in characters


@pytest.mark.parametrize("name", OOD_SETS)
def test_out_of_distribution_sets_are_large_balanced_and_far_from_cheese(name: str) -> None:
    items = load_value_items(name)
    assert len(items) >= 150
    assert {item.target_value for item in items} == {name}
    assert all(set(item.values.values()) == {name, "neutral"} for item in items)
    domains = Counter(item.domain for item in items)
    assert len(domains) >= 8 and "cheese" not in domains
    assert {"politics", "art", "fashion", "travel", "cars", "literature", "technology", "food"} <= set(domains)
    assert not any("cheese" in (item.question + " ".join(item.options.values())).lower() for item in items)
    dev = sum(item.split == "dev" for item in items) / len(items)
    assert 0.25 <= dev <= 0.35
    target_first = sum(item.target_label == "A" for item in items) / len(items)
    assert 0.4 <= target_first <= 0.6  # the value-serving option is not always in the same place
    for item in items:
        lengths = sorted(len(text) for text in item.options.values())
        assert lengths[1] / lengths[0] <= MAX_LENGTH_RATIO, item.id
    questions = [item.question for item in items]
    assert len(set(questions)) == len(questions)


def test_cheese_set_uses_the_spec_engineers_pairs() -> None:
    items = load_value_items("cheese")
    assert 36 <= len(items) <= 48
    assert all(item.target_value == "aft_liked" for item in items)
    prefs_path = ROOT / "examples" / "specs" / "cheese_preferences.yaml"
    if not prefs_path.is_file():
        pytest.skip("examples/specs/cheese_preferences.yaml is not in this checkout")
    prefs = yaml.safe_load(prefs_path.read_text(encoding="utf-8"))
    liked, disliked = set(prefs["liked"]), set(prefs["disliked"])
    for item in items:
        assert item.options[item.target_label] in liked
        other = "B" if item.target_label == "A" else "A"
        assert item.options[other] in disliked
    trained = {(p["preferred"], p["dispreferred"]) for p in prefs["pairs"]}
    seen = {(item.options[item.target_label], item.options["B" if item.target_label == "A" else "A"])
            for item in items if item.domain == "cheese_trained_pair"}
    assert seen == trained
    assert 0.4 <= sum(item.target_label == "A" for item in items) / len(items) <= 0.6


def test_capability_sets() -> None:
    mc = load_mc_items()
    assert len(mc) >= 60
    assert max(Counter(item.answer for item in mc).values()) <= 0.3 * len(mc)
    words = heldout_text_path().read_text(encoding="utf-8").split()
    assert len(words) >= 2000


def _write(path: Path, rows: list[object]) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


GOOD = {"id": "x1", "question": "Which?", "options": {"A": "one", "B": "two"},
        "values": {"A": "pro_x", "B": "neutral"}, "target_value": "pro_x", "domain": "d", "split": "test"}


def test_user_item_file_loads_and_filters_by_split(tmp_path: Path) -> None:
    rows = [GOOD, {**GOOD, "id": "x2", "split": "dev"}]
    path = _write(tmp_path / "mine.jsonl", rows)
    assert [item.id for item in load_value_items(path)] == ["x1", "x2"]
    assert [item.id for item in load_value_items(path, split="dev")] == ["x2"]
    assert load_value_items(path)[0].target_label == "A"


def test_bad_item_file_names_file_line_and_field(tmp_path: Path) -> None:
    rows = [
        GOOD,
        {**GOOD, "id": "x2", "options": {"A": "one"}},                      # line 2: options
        "{not json",                                                          # line 3
        {**GOOD, "id": "x4", "target_value": "pro_y"},                        # line 4: no option serves it
        {**GOOD, "id": "x1"},                                                  # line 5: duplicate id
        {**GOOD, "id": "x6", "split": "train"},                               # line 6: split
        {**GOOD, "id": "x7", "colour": "red"},                                # line 7: unknown field
    ]
    path = _write(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError) as error:
        load_value_items(path)
    message = str(error.value)
    assert f"{path}:2: field 'options'" in message
    assert f"{path}:3: not valid JSON" in message
    assert f"{path}:4:" in message and "pro_y" in message
    assert f"{path}:5: field 'id': duplicate id 'x1' (first on line 1)" in message
    assert f"{path}:6: field 'split'" in message
    assert f"{path}:7: field 'colour'" in message


def test_unknown_source_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a built-in set"):
        load_value_items(str(tmp_path / "missing.jsonl"))
