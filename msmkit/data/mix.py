"""Blend a general instruction dataset into AFT data at a ratio by tokens or rows, as the paper did
(it mixed ~2M tokens of general chat data into AFT).

`ratio` is general : AFT. By rows, 2.0 adds twice as many general rows as AFT rows; by tokens, general
rows are added (in a seeded random order) until their assistant tokens reach ratio x the AFT's.
Every output row says where it came from in `metadata.source` (and its `metadata.id`).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, ClassVar, Literal, Sequence

from pydantic import Field, model_validator

from msmkit.config import StrictModel
from msmkit.data.chat import (
    TokenCounter,
    assistant_tokens,
    make_token_counter,
    read_chat_dataset,
    write_jsonl_and_dataset,
)
from msmkit.io import atomic_write_json
from msmkit.stages.contract import ChatSet

MixBy = Literal["tokens", "rows"]


class MixConfig(StrictModel):
    """Blend general instruction data into every AFT set (the paper mixed ~2M tokens of it): your own data at a
    ratio, or a named recipe over the paper's released `sft-it-mix` (msmkit.data.presets: cheese-paper, cheese-7k,
    qwen-paper)."""

    general: str | None = None  # JSONL or `datasets` folder of chat `messages`
    ratio: float | None = Field(None, gt=0)  # general : AFT amount
    by: MixBy = "tokens"
    preset: str | None = None  # a recipe's name instead of general + ratio
    dataset: str | None = None  # the preset's sft-it-mix: a pinned hf: reference or a local copy
    tokenizer: str | None = None  # HF tokenizer for token counts (else ~4 characters per token)

    @model_validator(mode="after")
    def _one_source(self) -> "MixConfig":
        if self.preset is None and (self.general is None or self.ratio is None):
            raise ValueError("give either general + ratio (your own instruction data) or preset (a recipe over the "
                             "released sft-it-mix: cheese-paper, cheese-7k, qwen-paper)")
        if self.preset is not None and self.general is not None:
            raise ValueError("give general + ratio or preset, not both")
        if self.preset is not None:
            from msmkit.data.presets import get_preset

            get_preset(self.preset)
        return self


def mix_datasets(aft: Sequence[dict[str, Any]], general: Sequence[dict[str, Any]], *, ratio: float,
                 by: MixBy = "tokens", count: TokenCounter, seed: int = 0
                 ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
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


class MixOutputs(ChatSet):
    """A mixed chat dataset (JSONL and `datasets`) and how it was mixed."""

    DATA: ClassVar[str] = "mixed.jsonl"
    DATASET: ClassVar[str] = "dataset"
    STATS: ClassVar[str] = "mix_stats.json"

    aft_rows: int
    general_rows_used: int
    achieved_ratio: float | None
    short_of_general_data: bool

    def chat_file(self, cot: bool) -> Path:
        return self.folder / self.DATA  # mixed from one of the two AFT files: the one the experiment trains on


def mix_files(aft: Path, general: Path, out: Path, *, ratio: float, by: MixBy = "tokens",
              tokenizer: str | None = None, seed: int = 0) -> MixOutputs:
    """Mix two chat datasets (JSONL or `datasets` folders) into `out` and record how."""
    count, method = make_token_counter(tokenizer)
    rows, stats = mix_datasets(read_chat_dataset(aft), read_chat_dataset(general), ratio=ratio, by=by, count=count,
                               seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl_and_dataset(rows, out / MixOutputs.DATA, out / MixOutputs.DATASET)
    atomic_write_json(out / MixOutputs.STATS, {**stats, "token_count_method": method, "aft": str(aft),
                                               "general": str(general), "seed": seed})
    return MixOutputs(folder=out, aft_rows=stats["aft_rows"], general_rows_used=stats["general_rows_used"],
                      achieved_ratio=stats["achieved_ratio"], short_of_general_data=stats["short_of_general_data"])


def mix_preset(aft: Path | None, preset_name: str, out: Path, *, dataset: str | None = None,
               tokenizer: str | None = None) -> MixOutputs:
    """A preset's instruction mix (alone, or shuffled with the AFT rows), its token shares checked against the
    recipe and recorded."""
    from msmkit.data.presets import build_instruction_mix, get_preset, load_preset_splits
    from msmkit.offline import downloads_allowed

    preset = get_preset(preset_name)
    count, method = make_token_counter(tokenizer)
    splits, resolved = load_preset_splits(preset, dataset=dataset, allow_download=downloads_allowed())
    aft_rows = read_chat_dataset(aft) if aft is not None else None
    mixed = build_instruction_mix(preset, splits, count=count, count_method=method, aft_rows=aft_rows,
                                  dataset_record=resolved)
    out.mkdir(parents=True, exist_ok=True)
    mixed.write(out / MixOutputs.DATA, out / MixOutputs.DATASET)
    atomic_write_json(out / MixOutputs.STATS, mixed.record)
    return MixOutputs(folder=out, aft_rows=len(aft_rows or ()), general_rows_used=preset.rows, achieved_ratio=None,
                      short_of_general_data=False)
