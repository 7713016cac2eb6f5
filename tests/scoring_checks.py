"""The check several tests make: msmkit's continuation scorer against the full-logits reference."""

from __future__ import annotations

from typing import Any, Sequence

import pytest

from msmkit.eval.continuation_scoring import ScoringRequest, score_requests
from msmkit.eval.logprob_reference import full_logits_scores


def assert_matches_full_logits(model: Any, requests: Sequence[ScoringRequest], pad_id: int, *, group_size: int = 1,
                               tolerance: float = 1e-3, reference_rows: int = 1) -> None:
    fast = score_requests(model, requests, pad_id, group_size=group_size)
    slow = full_logits_scores(model, requests, pad_id, rows_per_batch=reference_rows)
    assert len(fast) == len(slow) == len(requests)
    for fast_row, slow_row in zip(fast, slow):
        assert len(fast_row) == len(slow_row)
        for a, b in zip(fast_row, slow_row):
            assert a.n_tokens == b.n_tokens
            assert a.sum_logprob == pytest.approx(b.sum_logprob, abs=tolerance)
