"""Log-probabilities of given next tokens from final hidden states, for scoring continuations.

log p(token) = logit(token) - logsumexp(all logits), so every needed row still takes one pass over the
whole vocabulary, and on a small model that projection costs more than the rest of the network (Gemma 3
270M: 168M of its 268M parameters are the 262k-token head). With an fp32 head the pass is screened in
bfloat16, which runs 2.5-3x faster on CPUs with AVX512-BF16 and on GPUs, and then made exact where it
matters:

- the target token's logit is computed in fp32;
- every vocabulary column that comes within `SCREEN_MARGIN` nats of some row's maximum is recomputed in
  fp32, so the tokens that carry the probability mass enter the log-sum-exp exactly;
- only the far tail keeps its bfloat16 logit. Its share of the mass, r, is measured per row; a row where
  r exceeds `MAX_SCREENED_MASS` (a very flat distribution) is recomputed in full fp32. The error of a
  log-probability is at most about r times the bfloat16 logit error (~0.1 nats), plus the rounding of
  the tail's bfloat16 sum (0.2% of r). Measured on 1,678 continuation tokens of Gemma 3 270M: largest
  error 5e-5 nats, mean 5e-6, no row recomputed, in about half the time of the fp32 projection.

`head_for(model)` checks once per model that its logits really are this head applied to its last hidden
state (a plain or tied output embedding, optional bias and Gemma-style soft-capping); for a model that
transforms its logits in some other way it returns None and the caller uses the model's own logits.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, field
from typing import Any

import torch

SCREEN_MARGIN = 12.0  # nats below a row's maximum within which logits are recomputed in fp32
MAX_SCREENED_MASS = 1e-2  # largest probability share allowed to keep bfloat16 logits
ROWS_PER_CHUNK = 256  # bounds the [rows, vocab] buffer (134 MB in bfloat16 for a 262k vocabulary)

_verified: weakref.WeakKeyDictionary[Any, HeadProjection | None] = weakref.WeakKeyDictionary()


@dataclass
class HeadProjection:
    weight: torch.Tensor  # [vocab, hidden]
    bias: torch.Tensor | None
    softcap: float | None
    screen: torch.Tensor | None = None  # bfloat16 copy of `weight`, or None for a plain exact pass
    weight_version: int = 0  # the weight's in-place version when `screen` was taken (training bumps it)
    rows_recomputed: int = field(default=0, init=False)  # rows whose screened tail mass was too large

    def logits(self, hidden: torch.Tensor, columns: torch.Tensor | None = None) -> torch.Tensor:
        """Exact logits in the head's own precision, as float32; only `columns` when given."""
        weight = self.weight if columns is None else self.weight[columns]
        logits = hidden.to(weight.dtype) @ weight.T
        if self.bias is not None:
            logits = logits + (self.bias if columns is None else self.bias[columns])
        return self._capped(logits.float())

    def token_logprobs(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """log p(targets[i] | row i) for each row of `hidden` [rows, hidden_size]."""
        chunks = [self._chunk(h, t) for h, t in zip(hidden.split(ROWS_PER_CHUNK), targets.split(ROWS_PER_CHUNK))]
        return torch.cat(chunks) if chunks else hidden.new_zeros(0)

    def _chunk(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.screen is None:
            return logprobs_of(self.logits(hidden), targets)
        target = self._capped(_rowwise_dot(hidden, self.weight[targets], self.bias, targets))
        approx = hidden.to(self.screen.dtype) @ self.screen.T
        if self.bias is not None:
            approx = approx + self.bias.to(approx.dtype)
        approx = self._capped(approx)
        top = approx.amax(-1)
        # exp(logit - row max), in place and in bfloat16: the [rows, vocab] buffer is the cost here. The
        # near columns are then zeroed, and what is left sums to the far tail; bfloat16 rounding of that
        # sum (0.2%) matters little, as the tail holds at most MAX_SCREENED_MASS of the probability.
        scaled = approx.sub_(top[:, None]).exp_()
        near = (scaled.amax(0) >= math.exp(-SCREEN_MARGIN)).nonzero()[:, 0]
        far_lse = top.float() + scaled.index_fill_(1, near, 0).sum(-1).float().log()
        lse = torch.logaddexp(torch.logsumexp(self.logits(hidden, near), dim=-1), far_lse)
        flat = far_lse - lse > math.log(MAX_SCREENED_MASS)
        if flat.any():
            lse[flat] = torch.logsumexp(self.logits(hidden[flat]), dim=-1)
            self.rows_recomputed += int(flat.sum())
        return target - lse

    def _capped(self, logits: torch.Tensor) -> torch.Tensor:
        if self.softcap is None:
            return logits
        return torch.tanh(logits / self.softcap) * self.softcap


def logprobs_of(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log-softmax at one target per row, without writing the full log-softmax."""
    logits = logits.float()
    return logits.gather(1, targets[:, None])[:, 0] - torch.logsumexp(logits, dim=-1)


def _rowwise_dot(hidden: torch.Tensor, rows: torch.Tensor, bias: torch.Tensor | None,
                 targets: torch.Tensor) -> torch.Tensor:
    dots = (hidden.to(rows.dtype) * rows).sum(-1).float()
    return dots + bias[targets].float() if bias is not None else dots


def _bf16_matmul_is_fast(device: torch.device) -> bool:
    if device.type == "cuda":
        return True
    if device.type != "cpu":
        return False
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private, so looked up defensively
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def head_for(model: Any) -> HeadProjection | None:
    """The model's output head, verified against its own logits once; None if it cannot be reproduced."""
    head = _verified.get(model)
    if model not in _verified or (head is not None and head.weight._version != head.weight_version):
        _verified[model] = head = _build_and_verify(model)
    return head


@torch.no_grad()
def _build_and_verify(model: Any) -> HeadProjection | None:
    output = model.get_output_embeddings()
    weight = getattr(output, "weight", None)
    if weight is None or weight.ndim != 2:
        return None
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    softcap = getattr(config, "final_logit_softcapping", None)
    head = HeadProjection(weight=weight.detach(), bias=getattr(output, "bias", None), softcap=softcap,
                          weight_version=weight._version)
    probe = (torch.arange(8, device=weight.device) * 7 + 1).remainder(weight.shape[0]).unsqueeze(0)
    out = model(input_ids=probe, output_hidden_states=True)
    expected = out.logits[0].float()
    got = head.logits(out.hidden_states[-1][0])
    if got.shape != expected.shape or not torch.allclose(got, expected, rtol=1e-4, atol=1e-4):
        return None
    if weight.dtype == torch.float32 and _bf16_matmul_is_fast(weight.device):
        head.screen = weight.detach().to(torch.bfloat16)
    return head
