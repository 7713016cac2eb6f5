"""The value-eval summary reports whether choices follow option length: a scorer that picks the longer option
shows a strong correlation and a note; one that picks the target whatever its length shows none."""

from __future__ import annotations

from typing import Callable

import pytest

from msmkit.eval.continuation_scoring import OptionScore
from msmkit.eval.forced_choice import ORDERS, combine_orders
from msmkit.eval.items import LABELS, Label, ValueItem, load_value_items
from msmkit.eval.length_bias import length_choice_association
from msmkit.eval.summary import summarize_forced_choice

Preference = Callable[[ValueItem, Label], float]  # mean log-prob per token the fake scorer gives an option


def _records(items: list[ValueItem], prefers: Preference) -> list[dict]:
    records = []
    for item in items:
        scores = {label: OptionScore(prefers(item, label) * len(item.options[label]), len(item.options[label]))
                  for label in LABELS}
        records.append(combine_orders(item, {order: scores for order in ORDERS}))
    return records


def _longer(item: ValueItem, label: Label) -> float:
    return -1.0 / len(item.options[label])


def _target(item: ValueItem, label: Label) -> float:
    return -1.0 if label == item.target_label else -2.0


def test_a_length_following_scorer_is_flagged_on_the_old_unbalanced_design() -> None:
    """On items where the target is longer in most, a length preference passes for a value preference: the
    correlation exposes it."""
    items = [ValueItem(id=f"x{k}", question="Which?", domain="d", split="test", target_value="t",
                       options={"A": "a long option " + "x" * k, "B": "short"} if k % 4 else
                       {"A": "tiny", "B": "a rather longer option"},
                       values={"A": "t", "B": "o"}) for k in range(40)]
    summary = summarize_forced_choice(_records(items, _longer))
    bias = summary["length_bias"]
    assert summary["target_rate"]["mean"] == pytest.approx(0.75)  # looks like a value preference
    assert bias["correlation"] > 0.9 and bias["p_value"] < 1e-6 and bias["n"] == 40
    assert bias["longer_chosen_rate"]["mean"] == 1.0 and bias["measure"] == "characters"
    assert bias["target_longer_share"] == pytest.approx(0.75)
    assert any("choices follow option length" in note for note in summary["notes"])


@pytest.mark.parametrize("name", ["cheese", "pro_america"])
def test_builtin_sets_separate_value_from_length(name: str) -> None:
    items = load_value_items(name)
    by_value = summarize_forced_choice(_records(items, _target))["length_bias"]
    assert by_value["correlation"] is None  # every item chose the target: no variation to correlate
    assert by_value["longer_chosen_rate"]["mean"] == pytest.approx(by_value["target_longer_share"])
    assert 0.35 <= by_value["target_longer_share"] <= 0.65
    by_length = summarize_forced_choice(_records(items, _longer))
    assert by_length["length_bias"]["longer_chosen_rate"]["mean"] == 1.0
    assert abs(by_length["target_rate"]["mean"] - 0.5) < 0.15  # balanced items: length alone gives about chance


def test_old_records_fall_back_to_token_counts_and_uncounted_judged_items_are_left_out() -> None:
    items = load_value_items("cheese")[:6]
    records = _records(items, _longer)
    for record in records:
        del record["option_chars"]
    assert length_choice_association(records)["measure"] == "tokens"
    judged = [{"counted": k % 2 == 0, "chose_target": True, "target_label": "A",
               "option_chars": {"A": 10 + k, "B": 12}} for k in range(6)]
    assert length_choice_association(judged)["n"] == 3
    assert length_choice_association([{"id": "x", "chose_target": 1.0}])["n"] == 0
