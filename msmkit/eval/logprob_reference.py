"""The straightforward log-probability computation, kept as the correctness oracle and speed baseline.

Every (prompt + continuation) sequence is run in full and the full-vocabulary logits are taken at every
position (what most eval scripts do). tests/test_eval_values_forced_choice.py checks that
`continuation_scoring.score_requests` gives the same numbers; benchmarks/eval.py measures the difference in time.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from msmkit.eval.continuation_scoring import OptionScore, ScoringRequest


@torch.no_grad()
def full_logits_scores(model: Any, requests: Sequence[ScoringRequest], pad_id: int, rows_per_batch: int = 1
                       ) -> list[list[OptionScore]]:
    device = next(model.parameters()).device
    sequences = [(r.prompt_ids + c, len(c)) for r in requests for c in r.continuations]
    scores: list[OptionScore] = []
    for start in range(0, len(sequences), rows_per_batch):
        chunk = sequences[start:start + rows_per_batch]
        width = max(len(ids) for ids, _ in chunk)
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, (tokens, _) in enumerate(chunk):
            ids[row, width - len(tokens):] = torch.tensor(tokens)
            mask[row, width - len(tokens):] = 1
        ids, mask = ids.to(device), mask.to(device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        logprobs = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits.float().log_softmax(-1)
        for row, (tokens, n_cont) in enumerate(chunk):
            total = 0.0
            for offset in range(n_cont):
                column = width - n_cont + offset
                total += float(logprobs[row, column - 1, tokens[len(tokens) - n_cont + offset]])
            scores.append(OptionScore(sum_logprob=total, n_tokens=n_cont))
    per = len(requests[0].continuations) if requests else 0
    return [scores[i * per:(i + 1) * per] for i in range(len(requests))]
