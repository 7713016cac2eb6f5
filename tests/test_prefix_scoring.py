"""Prefix-cached scoring (a long context before every question, run once) equals the full-sequence
computation, on a Gemma whose sliding window is narrower than the context and on a Llama."""

from __future__ import annotations

from pathlib import Path

import pytest

from msmkit.eval.continuation_scoring import ScoringRequest, score_requests
from msmkit.eval.forced_choice import ORDERS, ForcedChoiceScorer, build_request, combine_orders
from msmkit.eval.items import LABELS, ValueItem, load_value_items
from msmkit.eval.logprob_reference import full_logits_scores
from msmkit.eval.prefix_scoring import PrefixCache, shared_prefix_length
from msmkit.models.loading import load_causal_lm
from msmkit.models.tiny import tiny_model_dir

CONTEXT = " ".join(
    f"Rule {n}: the assistant prefers honest, careful answers and explains its trade-offs plainly." for n in range(12))

CHAT_TEMPLATE = ("{{ bos_token }}{% for m in messages %}<start_of_turn>{{ m['role'] }}\n{{ m['content'] }}"
                 "<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}")


@pytest.fixture(scope="module")
def models_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "tiny-models"


def _items(count: int = 5) -> list[ValueItem]:
    return load_value_items("pro_america")[:count - 2] + load_value_items("cheese")[:2]


def _assert_same(fast: list, slow: list, tolerance: float = 1e-4) -> None:
    assert len(fast) == len(slow)
    for fast_row, slow_row in zip(fast, slow):
        assert [s.n_tokens for s in fast_row] == [s.n_tokens for s in slow_row]
        for a, b in zip(fast_row, slow_row):
            assert a.sum_logprob == pytest.approx(b.sum_logprob, abs=tolerance)


@pytest.mark.parametrize("family, window", [("gemma3", 16), ("gemma3", 64), ("llama", None)])
def test_prefix_cached_scores_equal_full_sequences(models_root: Path, family: str, window: int | None) -> None:
    model, tokenizer = load_causal_lm(str(tiny_model_dir(models_root, family)))
    if window is not None:
        model.config.sliding_window = window
    requests = [build_request(item, order, tokenizer, "completion", context=CONTEXT)
                for item in _items() for order in ORDERS]
    shared = shared_prefix_length(requests)
    assert shared > 200 and (window is None or shared > 3 * window)  # the context alone outruns the window
    prefix = PrefixCache.for_requests(model, requests, tokenizer.pad_token_id)
    fast = prefix.score(requests, group_size=len(ORDERS))
    _assert_same(fast, full_logits_scores(model, requests, tokenizer.pad_token_id))
    # Ungrouped and in another order, with the same cache: the cache itself is never modified.
    _assert_same(prefix.score(requests[::-1]), full_logits_scores(model, requests[::-1], tokenizer.pad_token_id))
    # And the existing engine (its sliding-window fallback for gemma3) agrees too.
    _assert_same(fast, score_requests(model, requests, tokenizer.pad_token_id, group_size=len(ORDERS)), 1e-3)


@pytest.mark.parametrize("style", ["completion", "chat"])
def test_scorer_with_context_chooses_as_the_full_computation(models_root: Path, tmp_path: Path, style: str) -> None:
    if style == "chat":
        from msmkit.models.tiny import build_tiny_model

        folder = build_tiny_model(tmp_path / "chat", "gemma3", chat_template=CHAT_TEMPLATE)
    else:
        folder = tiny_model_dir(models_root, "gemma3")
    model, tokenizer = load_causal_lm(str(folder))
    model.config.sliding_window = 32
    items = _items()
    records = {r["id"]: r for r in ForcedChoiceScorer(model, tokenizer, style=style, batch_size=2,
                                                      context=CONTEXT).score(items)}
    assert sorted(records) == sorted(item.id for item in items)
    for item in items:
        requests = [build_request(item, order, tokenizer, style, context=CONTEXT) for order in ORDERS]
        slow = full_logits_scores(model, requests, tokenizer.pad_token_id)
        expected = combine_orders(item, {order: dict(zip(LABELS, row)) for order, row in zip(ORDERS, slow)})
        record = records[item.id]
        assert record["chosen"] == expected["chosen"]
        assert [o["preferred"] for o in record["orders"]] == [o["preferred"] for o in expected["orders"]]
        for label in LABELS:
            assert record["combined"][label] == pytest.approx(expected["combined"][label], abs=1e-4)


def test_prompts_must_start_with_the_prefix(models_root: Path) -> None:
    model, _ = load_causal_lm(str(tiny_model_dir(models_root, "llama")))
    prefix = PrefixCache(model, [5, 6, 7])
    with pytest.raises(ValueError, match="cached prefix"):
        prefix.score([ScoringRequest([5, 6, 8, 9], [[7]])])
    with pytest.raises(ValueError, match="cached prefix"):
        prefix.score([ScoringRequest([5, 6, 7], [[7]])])  # nothing left to predict the continuation from
    with pytest.raises(ValueError):
        PrefixCache(model, [])


def test_one_context_cache_serves_every_item_set(models_root: Path) -> None:
    """The pre-flight scores one spec on several item sets: the context's cache stops short of the
    questions, so the next set reuses it, and the numbers still equal the full computation."""
    from msmkit.experiment.preflight import forced_choice_scorer

    model, tokenizer = load_causal_lm(str(tiny_model_dir(models_root, "gemma3")))
    model.config.sliding_window = 16
    first = ForcedChoiceScorer(model, tokenizer, style="completion", context=CONTEXT)
    list(first.score(load_value_items("pro_america")[:2]))
    kept = first.prefix_cache
    assert kept is not None and len(kept.prefix_ids) > 200
    cheese = load_value_items("cheese")[:3]
    second = ForcedChoiceScorer(model, tokenizer, style="completion", context=CONTEXT, prefix_cache=kept)
    records = {r["id"]: r for r in second.score(cheese)}
    assert second.prefix_cache is kept
    score = forced_choice_scorer(model, tokenizer, "completion")
    through_preflight = {r["id"]: r for r in score(cheese, CONTEXT)}
    for item in cheese:
        requests = [build_request(item, order, tokenizer, "completion", context=CONTEXT) for order in ORDERS]
        slow = full_logits_scores(model, requests, tokenizer.pad_token_id)
        expected = combine_orders(item, {order: dict(zip(LABELS, row)) for order, row in zip(ORDERS, slow)})
        for label in LABELS:
            assert records[item.id]["combined"][label] == pytest.approx(expected["combined"][label], abs=1e-4)
            assert through_preflight[item.id]["combined"][label] == pytest.approx(expected["combined"][label],
                                                                                 abs=1e-4)
