"""Blend a general instruction dataset into AFT data at a ratio by tokens or rows, as the paper did
(it mixed ~2M tokens of general chat data into AFT).

`ratio` is general : AFT. By rows, 2.0 adds twice as many general rows as AFT rows; by tokens, general
rows are added (in a seeded random order) until their assistant tokens reach ratio x the AFT's.
Every output row says where it came from in `metadata.source` (and its `metadata.id`).
"""

from __future__ import annotations

import random
from typing import Any, Literal, Sequence

from msmkit.data.chat import TokenCounter, assistant_tokens

MixBy = Literal["tokens", "rows"]


def mix_datasets(aft: Sequence[dict[str, Any]], general: Sequence[dict[str, Any]], *, ratio: float,
                 by: MixBy = "tokens", count: TokenCounter, seed: int = 0) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(mixed rows shuffled with `seed`, stats). Takes all general rows, and says so, when there are too few."""
    if ratio < 0:
        raise ValueError(f"ratio must be >= 0, got {ratio}")
    if by not in ("tokens", "rows"):
        raise ValueError(f"by must be 'tokens' or 'rows', got {by!r}")
    rng = random.Random(seed)
    order = list(range(len(general)))
    rng.shuffle(order)
    aft_tokens = sum(assistant_tokens(row["messages"], count) for row in aft)
    wanted = ratio * (aft_tokens if by == "tokens" else len(aft))
    chosen: list[dict[str, Any]] = []
    taken_tokens = 0
    for index in order:
        amount = taken_tokens if by == "tokens" else len(chosen)
        if amount >= wanted:
            break
        row = general[index]
        chosen.append(row)
        taken_tokens += assistant_tokens(row["messages"], count)
    achieved = taken_tokens if by == "tokens" else len(chosen)
    mixed = [_tag(row, "aft") for row in aft] + [_tag(row, "general") for row in chosen]
    rng.shuffle(mixed)
    stats = {"by": by, "ratio": ratio, "aft_rows": len(aft), "aft_assistant_tokens": aft_tokens,
             "general_rows_available": len(general), "general_rows_used": len(chosen),
             "general_assistant_tokens": taken_tokens, "wanted": wanted, "achieved": achieved,
             "achieved_ratio": round(achieved / (aft_tokens if by == "tokens" else len(aft)), 4)
             if (aft_tokens if by == "tokens" else len(aft)) else None,
             "short_of_general_data": achieved < wanted, "rows": len(mixed)}
    return mixed, stats


def _tag(row: dict[str, Any], source: str) -> dict[str, Any]:
    # One metadata schema for both sources (general data brings arbitrary fields); the unmixed AFT files keep the rest.
    row_id = row.get("id")
    return {"messages": row["messages"], "metadata": {"source": source, "id": None if row_id is None else str(row_id)}}
