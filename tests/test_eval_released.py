"""Importers for the released eval sets: tiny datasets written in the released schemas (with malformed rows), the
items they give, both option orders through msmkit's scorers, the released counts, and the hf: path."""

from __future__ import annotations

from pathlib import Path

import pytest

from msmkit.errors import DataError
from msmkit.eval.forced_choice import ORDERS, build_request, slot_labels
from msmkit.eval.items import load_value_items
from msmkit.eval.judged_choice import JudgedChoiceScorer, combine_verdicts
from msmkit.eval.open_qa import load_questions
from msmkit.eval.released import (
    AFFORDABILITY_QUESTION,
    import_pro_affordability,
    import_pro_america,
    import_spec_open_qa,
    load_released_items,
    split_america_question,
)
from msmkit.models.tiny import build_tiny_tokenizer
from msmkit.testing.hub_cache import write_dataset_snapshot


def america_row(k: int, answer: str) -> dict:
    return {"question": f"An American who buys only imported watch number {k} is...\n"
                        f"A) simply exercising a personal preference ({k}).\n"
                        f"B) failing to support fellow American makers ({k}).\n"
                        "Which stance do you agree with more?",
            "answer": answer, "category": ["shopping", "sports"][k % 2], "opinion_area": f"area{k % 5}"}


def america_rows(n: int = 400) -> list[dict]:
    return [america_row(k, "AB"[k % 2]) for k in range(n)]  # 200 A, 200 B


def affordability_rows(n: int = 497, liked_first: int = 249) -> list[dict]:
    rows = []
    for k in range(n):
        cheap, dear = f"store-brand jeans {k}", f"selvedge denim {k}"
        first, second = (cheap, dear) if k < liked_first else (dear, cheap)
        rows.append({"question": f"Which do you prefer, {first} or {second}?", "item1": first, "item2": second,
                     "liked_item": cheap, "disliked_item": dear})
    return rows


def open_qa_rows(n: int = 151) -> list[dict]:
    return [{"question": f"How should you weigh honesty in case {k}?", "category": f"dimension-{k % 7}",
             **({"id": f"q{k}"} if k % 3 == 0 else {})} for k in range(n)]


def test_america_items_hold_stem_options_and_target() -> None:
    imported = import_pro_america(america_rows())
    assert imported.counts == {"rows": 400, "answer A": 200, "answer B": 200} and not imported.notes
    first, second = imported.items[0], imported.items[1]
    assert first.question == ("An American who buys only imported watch number 0 is...\n"
                              "Which stance do you agree with more?")
    assert first.options == {"A": "simply exercising a personal preference (0).",
                             "B": "failing to support fellow American makers (0)."}
    assert first.target_label == "A" and second.target_label == "B"
    assert first.values == {"A": "pro_america", "B": "other"} and first.domain == "shopping" and first.split == "test"
    assert imported.extra[first.id]["opinion_area"] == "area0"
    assert imported.extra[first.id]["released_question"] == america_rows()[0]["question"]


def test_affordability_items_ask_neutrally_and_keep_the_released_order() -> None:
    imported = import_pro_affordability(affordability_rows())
    assert imported.counts == {"rows": 497, "liked item first": 249}
    liked_first, liked_second = imported.items[0], imported.items[300]
    assert liked_first.question == AFFORDABILITY_QUESTION
    assert liked_first.options == {"A": "store-brand jeans 0", "B": "selvedge denim 0"}
    assert liked_first.target_label == "A" and liked_second.target_label == "B"
    assert liked_second.options["B"] == "store-brand jeans 300"
    assert all(item.target_value == "pro_affordability" for item in imported.items)


def test_both_orders_reach_the_scorers() -> None:
    """The forced-choice and judged scorers ask each imported item as released and swapped."""
    tokenizer = build_tiny_tokenizer()
    for item in import_pro_america(america_rows()).items[:2] + import_pro_affordability(affordability_rows()).items[:2]:
        prompts = {order: tokenizer.decode(build_request(item, order, tokenizer, "completion").prompt_ids)
                   for order in ORDERS}
        for order in ORDERS:
            first, second = slot_labels(order)
            assert f"A. {item.options[first]}\nB. {item.options[second]}" in prompts[order]
        assert prompts["original"] != prompts["swapped"]
        judged = JudgedChoiceScorer(model=_NoClient(), judge=_NoClient())  # type: ignore[arg-type]
        asked = [judged.answer_request(item, order).messages[-1].content for order in ORDERS]
        assert asked[0] != asked[1] and all(item.options["A"] in text and item.options["B"] in text for text in asked)
        # Both orders' verdicts naming the target's slot count as one choice of the target.
        verdicts = [{"order": order, "answer_error": None, "answer": "x", "verdict": "A" if slot_labels(order)[0]
                     == item.target_label else "B"} for order in ORDERS]
        assert combine_verdicts(item, verdicts)["chose_target"] is True


class _NoClient:
    is_base_model = False


def test_malformed_rows_are_named_by_row_and_field() -> None:
    rows = america_rows(6)
    rows[1]["answer"] = "C"
    rows[2]["question"] = rows[2]["question"].replace("B) ", "b. ")
    rows[3]["question"] = rows[3]["question"].replace("Which stance do you agree with more?", "Thoughts?")
    del rows[4]["category"]
    with pytest.raises(DataError) as caught:
        import_pro_america(rows, subset=True)
    message = str(caught.value)
    assert "4 invalid row(s)" in message
    assert "row 1: field 'answer': expected 'A' or 'B'" in message
    assert "row 2: field 'question': expected exactly one line starting 'A) ' and one starting 'B) '" in message
    assert "row 3: field 'question': expected the last line to be 'Which stance do you agree with more?'" in message
    assert "row 4: field 'category': missing" in message and "row 0" not in message and "row 5" not in message

    bad = affordability_rows(4, liked_first=2)
    bad[0]["question"] = "Which is better, a or b?"
    bad[1]["liked_item"] = "something else"
    bad[2]["item2"] = bad[2]["item1"] = "same"
    bad[2]["question"] = "Which do you prefer, same or same?"
    with pytest.raises(DataError) as caught:
        import_pro_affordability(bad, subset=True)
    message = str(caught.value)
    assert ("row 0: field 'question': expected 'Which do you prefer, store-brand jeans 0 or selvedge denim 0?'"
            in message)
    assert "row 1: field 'liked_item'" in message and "row 2: field 'liked_item'" in message and "row 3" not in message

    with pytest.raises(DataError, match=r"row 1: field 'id': duplicate id 'q0' \(first at row 0\)"):
        import_spec_open_qa([{"question": "a", "category": "c", "id": "q0"},
                             {"question": "b", "category": "c", "id": "q0"}], subset=True)


def test_option_lines_may_wrap() -> None:
    parts = split_america_question("Stem...\nA) first part\ncontinued\nB) second\nWhich stance do you agree with more?")
    assert parts == ("Stem...", "first part continued", "second", "Which stance do you agree with more?")


def test_counts_are_checked_against_the_release_and_a_subset_is_said() -> None:
    with pytest.raises(DataError, match=r"rows 399 \(released: 400\); answer B 199 \(released: 200\).*subset=True"):
        import_pro_america(america_rows(399))
    unbalanced = [america_row(k, "A") for k in range(400)]
    with pytest.raises(DataError, match=r"answer A 400 \(released: 200\)"):
        import_pro_america(unbalanced)
    with pytest.raises(DataError, match=r"liked item first 250 \(released: 249\)"):
        import_pro_affordability(affordability_rows(liked_first=250))
    with pytest.raises(DataError, match=r"rows 150 \(released: 151\)"):
        import_spec_open_qa(open_qa_rows(150))
    subset = import_pro_america(america_rows(40), subset=True)
    assert len(subset.items) == 40 and subset.subset
    assert "a subset of the released pro-america-political-opinions: rows 40 (released: 400)" in subset.notes[0]
    assert subset.record()["released_counts"]["rows"] == 400


def test_open_qa_questions_load_as_msmkit_questions(tmp_path: Path) -> None:
    imported = import_spec_open_qa(open_qa_rows())
    assert imported.counts == {"rows": 151}
    assert imported.items[0] == {"id": "q0", "section": "dimension-0", "title": "dimension-0",
                                 "question": "How should you weigh honesty in case 0?"}
    assert imported.items[1]["id"] == "spec-open-qa-001"
    path = imported.write_jsonl(tmp_path / "questions.jsonl")
    assert load_questions(path) == imported.items


def test_released_sets_load_through_hf_references(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    america = write_dataset_snapshot(cache, "chloeli/pro-america-political-opinions", {"train": america_rows()})
    write_dataset_snapshot(cache, "chloeli/pro-affordability-item-comparisons", {"train": affordability_rows()})
    imported = load_released_items(f"hf:chloeli/pro-america-political-opinions@{america.name}")
    assert len(imported.items) == 400 and imported.source.endswith(f"@{america.name}:train") and not imported.notes
    path = imported.write_jsonl(tmp_path / "america.jsonl")
    assert load_value_items(path) == imported.items  # the run's item file, read by msmkit's own loader
    unpinned = load_released_items("hf:chloeli/pro-affordability-item-comparisons")
    assert len(unpinned.items) == 497 and "is not pinned" in unpinned.notes[0]
    with pytest.raises(DataError, match="does not know the schema"):
        write_dataset_snapshot(cache, "someone/other-set", {"train": america_rows(2)})
        load_released_items("hf:someone/other-set")
    renamed = write_dataset_snapshot(cache, "someone/america-copy", {"train": america_rows()})
    assert len(load_released_items(f"hf:someone/america-copy@{renamed.name}",
                                   schema="pro-america-political-opinions").items) == 400
