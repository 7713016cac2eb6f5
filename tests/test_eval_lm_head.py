"""The LM-head projection used for continuation scoring: screened in bfloat16 yet equal to the exact
fp32 log-softmax, flat rows recomputed in full, and models whose logits it cannot reproduce refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from msmkit.eval.forced_choice import ORDERS, build_request
from msmkit.eval.items import load_value_items
from msmkit.eval.lm_head import HeadProjection, head_for
from msmkit.models.loading import load_causal_lm
from msmkit.models.tiny import tiny_model_dir
from tests.scoring_checks import assert_matches_full_logits


def _exact(weight: torch.Tensor, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return (hidden @ weight.T).log_softmax(-1).gather(1, targets[:, None])[:, 0]


def test_screened_head_equals_exact_log_softmax() -> None:
    generator = torch.Generator().manual_seed(0)
    vocab, width = 50_000, 64
    weight = torch.randn(vocab, width, generator=generator)
    # Peaked rows (large norm) and broad ones (small norm), like real next-token distributions.
    hidden = torch.randn(300, width, generator=generator) * torch.linspace(0.05, 1.5, 300)[:, None]
    targets = torch.randint(vocab, (300,), generator=generator)
    head = HeadProjection(weight=weight, bias=None, softcap=None, screen=weight.to(torch.bfloat16))
    screened = head.token_logprobs(hidden, targets)
    exact = _exact(weight, hidden, targets)
    assert (screened - exact).abs().max() < 2e-4
    # bfloat16 alone is visibly off: the screen is doing real work.
    plain = (hidden.bfloat16() @ weight.bfloat16().T).float().log_softmax(-1).gather(1, targets[:, None])[:, 0]
    assert (plain - exact).abs().max() > 1e-2


def test_flat_rows_are_recomputed_in_full() -> None:
    """One likely token 12.5 nats above 19,999 others: the far tail holds ~7% of the mass, too much to
    leave in bfloat16, so the row is recomputed exactly."""
    generator = torch.Generator().manual_seed(1)
    weight = torch.randn(20_000, 32, generator=generator) * 0.01
    weight[0, 0] = 12.5
    hidden = torch.zeros(4, 32)
    hidden[:, 0] = 1.0
    targets = torch.tensor([0, 1, 2, 3])
    head = HeadProjection(weight=weight, bias=None, softcap=None, screen=weight.to(torch.bfloat16))
    screened = head.token_logprobs(hidden, targets)
    assert head.rows_recomputed == 4
    assert torch.allclose(screened, _exact(weight, hidden, targets), atol=1e-5)


def test_bias_and_softcap_are_applied() -> None:
    generator = torch.Generator().manual_seed(2)
    weight, bias = torch.randn(5_000, 16, generator=generator), torch.randn(5_000, generator=generator)
    hidden, targets = torch.randn(20, 16, generator=generator) * 3, torch.arange(20)
    head = HeadProjection(weight=weight, bias=bias, softcap=10.0, screen=weight.to(torch.bfloat16))
    logits = torch.tanh((hidden @ weight.T + bias) / 10.0) * 10.0
    exact = logits.log_softmax(-1).gather(1, targets[:, None])[:, 0]
    assert torch.allclose(head.token_logprobs(hidden, targets), exact, atol=2e-4)


@pytest.fixture(scope="module")
def models_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "tiny-models"


def test_a_model_whose_logits_differ_from_its_head_falls_back_to_its_own_logits(models_root: Path) -> None:
    model, tokenizer = load_causal_lm(str(tiny_model_dir(models_root, "llama")))
    assert head_for(model) is not None
    model, tokenizer = load_causal_lm(str(tiny_model_dir(models_root, "llama")))
    model.config.final_logit_softcapping = 1.0  # Llama's forward ignores it, so the head cannot match
    assert head_for(model) is None
    items = load_value_items("pro_america")[:3]
    requests = [build_request(item, order, tokenizer, "completion") for item in items for order in ORDERS]
    assert_matches_full_logits(model, requests, tokenizer.pad_token_id, group_size=2, tolerance=1e-4)


def test_changed_weights_rebuild_the_screen(models_root: Path) -> None:
    model, _ = load_causal_lm(str(tiny_model_dir(models_root, "qwen2")))
    first = head_for(model)
    assert head_for(model) is first
    with torch.no_grad():
        model.get_output_embeddings().weight.mul_(1.5)  # what an optimizer step does, in place
    second = head_for(model)
    assert second is not first
    assert torch.equal(second.screen, model.get_output_embeddings().weight.to(torch.bfloat16))
