"""The shipped item sets validate and are built to measure values, not length or position; bad files
give errors naming file, line and field."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml

from msmkit.errors import DataError
from msmkit.eval.items import (
    BUILTIN_VALUE_SETS,
    MAX_LENGTH_RATIO,
    check_length_balance,
    heldout_text_path,
    length_balance,
    load_mc_items,
    load_value_items,
)

ROOT = Path(__file__).resolve().parents[1]
OOD_SETS = ("pro_america", "pro_affordability")


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
    questions = [item.question for item in items]
    assert len(set(questions)) == len(questions)


@pytest.mark.parametrize("name", BUILTIN_VALUE_SETS)
def test_every_builtin_set_passes_the_length_guard(name: str) -> None:
    """No option much longer than the other, and the target the longer one in about half the items."""
    balance = check_length_balance(load_value_items(name), name)
    assert balance.max_ratio <= MAX_LENGTH_RATIO and not balance.over_ratio
    assert 0.35 <= balance.target_longer_share <= 0.65


def test_length_guard_names_the_items_and_the_skew(tmp_path: Path) -> None:
    rows = [{**GOOD, "id": f"x{k}", "options": {"A": "a much longer option text", "B": "short"}} for k in range(4)]
    items = load_value_items(_write(tmp_path / "long.jsonl", rows))
    assert length_balance(items).target_longer == 4
    with pytest.raises(DataError) as error:
        check_length_balance(items, "long.jsonl")
    assert "long.jsonl" in str(error.value) and "x0, x1, x2, x3" in str(error.value)
    assert "longer one in 4 of 4 items" in str(error.value)


def _named(text: str, names: set[str]) -> list[str]:
    return [name for name in names if name in text]


def test_cheese_set_uses_the_spec_engineers_pairs() -> None:
    """Each option names one of the spec's cheeses word for word (framed, e.g. 'a wedge of ...', to keep lengths
    balanced): the target a liked one, the other a disliked one; the trained pairs are exactly the spec's."""
    items = load_value_items("cheese")
    assert 36 <= len(items) <= 48
    assert all(item.target_value == "aft_liked" for item in items)
    prefs_path = ROOT / "examples" / "specs" / "cheese_preferences.yaml"
    if not prefs_path.is_file():
        pytest.skip("examples/specs/cheese_preferences.yaml is not in this checkout")
    prefs = yaml.safe_load(prefs_path.read_text(encoding="utf-8"))
    liked, disliked = set(prefs["liked"]), set(prefs["disliked"])
    named: dict[str, tuple[str, str]] = {}
    for item in items:
        target, other = item.options[item.target_label], item.options["B" if item.target_label == "A" else "A"]
        assert len(_named(target, liked)) == 1 and not _named(target, disliked), item.id
        assert len(_named(other, disliked)) == 1 and not _named(other, liked), item.id
        named[item.id] = (_named(target, liked)[0], _named(other, disliked)[0])
    trained = {(p["preferred"], p["dispreferred"]) for p in prefs["pairs"]}
    seen = {named[item.id] for item in items if item.domain == "cheese_trained_pair"}
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
