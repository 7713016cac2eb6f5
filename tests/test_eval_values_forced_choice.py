"""Forced choice by log-probability: exact agreement with a full-logits computation, both orders scored
and combined, position bias reported as such, and the CLI writing a resumable run folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from msmkit.eval.continuation_scoring import OptionScore, ScoringRequest
from msmkit.eval.forced_choice import ORDERS, ForcedChoiceScorer, build_request, combine_orders
from msmkit.eval.items import ValueItem, load_value_items
from msmkit.eval.summary import summarize_forced_choice
from msmkit.models.loading import load_causal_lm
from msmkit.models.tiny import tiny_model_dir
from tests.scoring_checks import assert_matches_full_logits

CHAT_TEMPLATE = ("{{ bos_token }}{% for m in messages %}<start_of_turn>{{ m['role'] }}\n{{ m['content'] }}"
                 "<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}")


@pytest.fixture(scope="module")
def models_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "tiny-models"


def _items(count: int = 6) -> list[ValueItem]:
    america = load_value_items("pro_america")
    cheese = load_value_items("cheese")
    return america[:count - 2] + cheese[:2]  # includes non-ASCII option texts (Gruyère)


@pytest.mark.parametrize("group_size", [1, 2])
@pytest.mark.parametrize("family", ["gemma3", "llama", "qwen2"])
def test_lm_head_only_scores_equal_full_logits(models_root: Path, family: str, group_size: int) -> None:
    model, tokenizer = load_causal_lm(str(tiny_model_dir(models_root, family)))
    requests = [build_request(item, order, tokenizer, "completion") for item in _items() for order in ORDERS]
    assert_matches_full_logits(model, requests, tokenizer.pad_token_id, group_size=group_size)


@pytest.mark.parametrize("window", [64, 4096])
def test_shared_question_prefix_is_exact_under_sliding_window_attention(models_root: Path, window: int) -> None:
    """The tiny Gemma's 64-token window is narrower than these prompts and than a padded batch (padding
    inside the cache would shift it); 4096 is wider than both. Both must match the full computation."""
    model, tokenizer = load_causal_lm(str(tiny_model_dir(models_root, "gemma3")))
    model.config.sliding_window = window
    requests = [build_request(item, order, tokenizer, "completion") for item in _items() for order in ORDERS]
    assert_matches_full_logits(model, requests, tokenizer.pad_token_id, group_size=2)


def test_prompts_sharing_nothing_and_one_token_prompts(models_root: Path) -> None:
    model, tokenizer = load_causal_lm(str(tiny_model_dir(models_root, "llama")))
    requests = [ScoringRequest([5], [[7, 8], [9]]), ScoringRequest([11, 12, 13], [[7], [9, 10, 11]])]
    assert_matches_full_logits(model, requests, tokenizer.pad_token_id, group_size=2, tolerance=1e-4)


def test_length_buckets_partition_the_continuations_and_split_only_when_it_pays() -> None:
    from msmkit.eval.continuation_scoring import _length_buckets

    lengths = [2, 12, 3, 12, 2, 12, 3, 12] * 8
    buckets = _length_buckets(lengths)
    assert sorted(i for b in buckets for i in b) == list(range(len(lengths)))
    assert len(buckets) == 2 and {lengths[i] for i in buckets[0]} == {2, 3}
    assert _length_buckets([5] * 40) == [list(range(40))]


def test_chat_template_style_also_matches(models_root: Path, tmp_path: Path) -> None:
    from msmkit.models.tiny import build_tiny_model

    folder = build_tiny_model(tmp_path / "chat", "gemma3", chat_template=CHAT_TEMPLATE)
    model, tokenizer = load_causal_lm(str(folder))
    scorer = ForcedChoiceScorer(model, tokenizer)
    assert scorer.resolved_style == "chat"
    request = build_request(_items()[0], "original", tokenizer, "chat")
    assert tokenizer.decode(request.prompt_ids).endswith("<start_of_turn>model\n")
    assert_matches_full_logits(model, [request], tokenizer.pad_token_id)


def test_both_orders_are_shown_scored_and_combined(models_root: Path) -> None:
    model, tokenizer = load_causal_lm(str(tiny_model_dir(models_root, "llama")))
    item = _items()[0]
    original = tokenizer.decode(build_request(item, "original", tokenizer, "completion").prompt_ids)
    swapped = tokenizer.decode(build_request(item, "swapped", tokenizer, "completion").prompt_ids)
    assert f"A. {item.options['A']}\nB. {item.options['B']}" in original
    assert f"A. {item.options['B']}\nB. {item.options['A']}" in swapped
    record = next(ForcedChoiceScorer(model, tokenizer, batch_size=4).score([item]))
    assert [o["order"] for o in record["orders"]] == ["original", "swapped"]
    assert [o["slot_a"] for o in record["orders"]] == ["A", "B"]
    for label in "AB":
        means = [o["scores"][label]["mean_logprob"] for o in record["orders"]]
        assert record["combined"][label] == pytest.approx(sum(means) / 2)
        for order in record["orders"]:
            score = order["scores"][label]
            assert score["mean_logprob"] == pytest.approx(score["sum_logprob"] / score["n_tokens"])
    # Batching does not change the numbers.
    alone = next(ForcedChoiceScorer(model, tokenizer, batch_size=1).score([item]))
    batched = {r["id"]: r for r in ForcedChoiceScorer(model, tokenizer, batch_size=4).score(_items(4))}[item.id]
    assert alone["combined"]["A"] == pytest.approx(batched["combined"]["A"], abs=1e-4)


def _scores(a: float, b: float) -> dict[str, OptionScore]:
    return {"A": OptionScore(a * 4, 4), "B": OptionScore(b * 2, 2)}


def test_a_model_that_always_prefers_slot_a_shows_position_bias_not_a_value() -> None:
    items = load_value_items("pro_america")[:20]
    records = []
    for item in items:
        # Whatever sits in slot A gets -1 per token, the other -2, in both orders.
        records.append(combine_orders(item, {"original": _scores(-1.0, -2.0), "swapped": _scores(-2.0, -1.0)}))
    summary = summarize_forced_choice(records)
    assert summary["position_bias_rate"]["mean"] == 1.0 and summary["position_bias_rate"]["n"] == 40
    assert summary["order_consistency_rate"]["mean"] == 0.0
    assert summary["target_rate"]["mean"] == 0.5 and summary["ties"] == 20  # no value either way
    assert summary["target_rate_both_orders"]["mean"] == 0.0
    assert any("position" in note for note in summary["notes"])


def test_a_model_with_the_value_shows_the_value_not_position_bias() -> None:
    items = load_value_items("pro_america")[:20]
    records = []
    for item in items:
        target, other = (-1.0, -3.0)
        original = _scores(target, other) if item.target_label == "A" else _scores(other, target)
        # Swapped order: slot A holds option B; scores are keyed by the item's own labels.
        swapped = original
        records.append(combine_orders(item, {"original": original, "swapped": swapped}))
    summary = summarize_forced_choice(records)
    assert summary["target_rate"]["mean"] == 1.0 and summary["target_rate"]["n"] == 20
    assert summary["order_consistency_rate"]["mean"] == 1.0
    assert summary["position_bias_rate"]["mean"] == 0.5
    assert summary["mean_margin_logprob"]["mean"] == pytest.approx(2.0)
    assert summary["notes"] == []


def test_cli_values_writes_records_summary_and_chart_and_resumes(models_root: Path, tmp_path: Path) -> None:
    from msmkit.cli.app import app

    folder = tiny_model_dir(models_root, "gemma3")
    run = tmp_path / "run"
    args = ["eval", "values", "--model", str(folder), "--items", "cheese", "--split", "dev", "--out", str(run),
            "--batch-size", "4"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    stage = run / "values" / "cheese"
    lines = (stage / "items.jsonl").read_text().splitlines()
    dev_items = load_value_items("cheese", split="dev")
    assert sorted(json.loads(line)["id"] for line in lines) == sorted(item.id for item in dev_items)
    summary = json.loads((stage / "summary.json").read_text())
    assert summary["n_items"] == len(dev_items) and summary["target_rate"]["n"] == len(dev_items)
    assert summary["position_bias_rate"]["n"] == 2 * len(dev_items)
    assert (stage / "target_rate.png").stat().st_size > 1000
    assert "eval/forced_choice_completion" in json.loads((run / "prompts.json").read_text())
    assert (run / "values" / "config.yaml").is_file() and (run / "versions.json").is_file()
    assert "cheese: target rate" in result.output
    # A rerun scores nothing again and appends nothing.
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (stage / "items.jsonl").read_text().splitlines() == lines


def test_cli_rejects_logprob_scoring_of_an_endpoint(tmp_path: Path) -> None:
    from msmkit.cli.app import app

    config = tmp_path / "endpoint.yaml"
    config.write_text("provider: openai\nmodel: gpt-x\n")
    result = CliRunner().invoke(app, ["eval", "values", "--model-config", str(config), "--out", str(tmp_path / "r")])
    assert result.exit_code != 0
    assert "needs local weights" in str(result.exception) + result.output


@pytest.mark.slow
def test_embedded_gemma_lm_head_only_scores_equal_full_logits() -> None:
    model, tokenizer = load_causal_lm("embedded")
    requests = [build_request(item, order, tokenizer, "completion") for item in _items(3) for order in ORDERS]
    assert_matches_full_logits(model, requests, tokenizer.pad_token_id, group_size=2, reference_rows=4)
