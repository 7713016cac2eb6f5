"""Capability check: chunked sliding-window perplexity equals a full-logits computation; MC scoring and
the `msm eval capability` command."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from msmkit.eval.capability import HeadMismatchError, mc_accuracy, perplexity
from msmkit.eval.items import heldout_text_path, load_mc_items
from msmkit.models.loading import load_causal_lm
from msmkit.models.tiny import tiny_model_dir

TEXT = heldout_text_path().read_text(encoding="utf-8")[:1500]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    return load_causal_lm(str(tiny_model_dir(tmp_path_factory.getbasetemp() / "tiny-models", "gemma3")))


@torch.no_grad()
def naive_windowed_nll(model, ids: torch.Tensor, window: int, stride: int) -> tuple[float, int]:
    """Full logits for each window; score the tokens not scored by an earlier window."""
    total, scored, next_target, start = 0.0, 0, 1, 0
    while next_target < ids.numel():
        end = min(start + window, ids.numel())
        logprobs = model(input_ids=ids[start:end].unsqueeze(0)).logits[0].float().log_softmax(-1)
        for target in range(next_target, end):
            total -= float(logprobs[target - start - 1, ids[target]])
            scored += 1
        next_target = end
        start = end - max(1, window - stride)  # at least one token of context
    return total, scored


@pytest.mark.parametrize("window,stride,chunk", [(2048, 2048, 7), (96, 32, 16), (64, 64, 64)])
def test_chunked_perplexity_equals_full_logits(tiny, window: int, stride: int, chunk: int) -> None:
    model, tokenizer = tiny
    ids = torch.tensor(tokenizer(TEXT)["input_ids"])
    result = perplexity(model, tokenizer, TEXT, window=window, stride=stride, chunk=chunk)
    total, scored = naive_windowed_nll(model, ids, window, stride)
    assert result["n_tokens"] == scored == ids.numel() - 1  # every token but the first, exactly once
    assert result["mean_nll"] == pytest.approx(total / scored, abs=1e-4)
    assert result["perplexity"] == pytest.approx(math.exp(total / scored), rel=1e-4)


def test_softcapped_head_is_reproduced_and_a_mismatch_is_refused(tiny, monkeypatch: pytest.MonkeyPatch) -> None:
    model, tokenizer = tiny
    ids = torch.tensor(tokenizer(TEXT[:400])["input_ids"])
    monkeypatch.setattr(model.config, "final_logit_softcapping", 3.0)
    result = perplexity(model, tokenizer, TEXT[:400], window=4096, stride=4096)
    total, scored = naive_windowed_nll(model, ids, 4096, 4096)
    assert result["mean_nll"] == pytest.approx(total / scored, abs=1e-4)
    import msmkit.eval.capability as capability

    monkeypatch.setattr(capability, "_head_logits", lambda m, h: m.get_output_embeddings()(h).float() * 2)
    with pytest.raises(HeadMismatchError):
        perplexity(model, tokenizer, TEXT[:400])


def test_mc_accuracy_picks_the_highest_mean_logprob(tiny) -> None:
    model, tokenizer = tiny
    items = load_mc_items()[:10]
    result = mc_accuracy(model, tokenizer, items, batch_size=3)
    assert [r["id"] for r in result.records] == [item.id for item in items]
    for record in result.records:
        assert record["chosen"] == max(record["mean_logprob"], key=record["mean_logprob"].get)
        assert record["correct"] == (record["chosen"] == record["answer"])
    correct = sum(r["correct"] for r in result.records)
    assert result.summary["accuracy"]["mean"] == pytest.approx(correct / 10)
    assert result.summary["accuracy"]["n"] == 10 and result.summary["chance"] == 0.25


def test_cli_capability(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    from msmkit.cli.app import app

    folder = tiny_model_dir(tmp_path_factory.getbasetemp() / "tiny-models", "gemma3")
    text = tmp_path / "text.txt"
    text.write_text(TEXT[:600], encoding="utf-8")
    mc = tmp_path / "mc.jsonl"
    mc.write_text("".join(json.dumps(item.model_dump()) + "\n" for item in load_mc_items()[:5]), encoding="utf-8")
    run = tmp_path / "run"
    result = CliRunner().invoke(app, ["eval", "capability", "--model", str(folder), "--text", str(text),
                                      "--mc", str(mc), "--out", str(run), "--window", "128", "--stride", "64"])
    assert result.exit_code == 0, result.output
    summary = json.loads((run / "capability" / "summary.json").read_text())
    assert summary["perplexity"]["n_tokens"] > 100 and summary["mc"]["n_items"] == 5
    assert len((run / "capability" / "mc_items.jsonl").read_text().splitlines()) == 5
    assert (run / "capability" / "mc_accuracy.png").is_file()
    assert (run / "capability" / "config.yaml").is_file()
    assert "perplexity" in result.output and "MC accuracy" in result.output
