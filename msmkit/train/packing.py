"""Sequences for training: best-fit-decreasing packing and a collator that keeps documents apart.

Packing puts several rows into one sequence of at most `max_length` tokens (TRL's `bfd_split`:
rows longer than that are split, nothing is dropped). The collator gives each document its own
position ids starting at 0 and passes no attention mask; transformers then builds a block-diagonal
causal mask from the position ids (SDPA and eager), or, with FlashAttention, uses varlen kernels on
one flattened row. Either way no token attends across a document boundary, and the first token of
each document is never a target predicted from the previous document.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from datasets import Dataset
from trl.data_utils import pack_dataset

from msmkit.train.data import IGNORE


def build_sequences(rows: list[dict[str, list[int]]], max_length: int, *, pack: bool) -> Dataset:
    """A dataset of input_ids / labels / seq_lengths; packed, or one row per sequence (long rows split)."""
    if pack:
        dataset = Dataset.from_list(rows)
        return pack_dataset(dataset, max_length, strategy="bfd_split")
    pieces = []
    for row in rows:
        for start in range(0, len(row["input_ids"]), max_length):
            ids = row["input_ids"][start:start + max_length]
            pieces.append({"input_ids": ids, "labels": row["labels"][start:start + max_length],
                           "seq_lengths": [len(ids)]})
    return Dataset.from_list(pieces)


def sequence_stats(dataset: Dataset, max_length: int, batch_size: int) -> dict[str, Any]:
    lengths = [sum(s) for s in dataset["seq_lengths"]]
    documents = sum(len(s) for s in dataset["seq_lengths"])
    return {"sequences": len(lengths), "segments": documents, "tokens": sum(lengths),
            "mean_sequence_tokens": sum(lengths) / max(len(lengths), 1), "max_length": max_length}


@dataclass
class DocumentBoundaryCollator:
    """Pads rows on the right (or flattens them into one row) with per-document position ids."""

    pad_token_id: int
    flatten: bool = False  # one row for FlashAttention varlen kernels; SDPA/eager use one row per sequence

    def __post_init__(self) -> None:
        # Per collated batch: (real tokens, real + padding). The dataloader may collate a batch or two ahead of
        # training, so totals are taken over the batches actually trained (`totals(batches)`).
        self.batches: list[tuple[int, int]] = []

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        ids, labels, positions = [], [], []
        for feature in features:
            row_ids = torch.as_tensor(feature["input_ids"], dtype=torch.long)
            row_labels = torch.as_tensor(feature["labels"], dtype=torch.long).clone()
            lengths = feature.get("seq_lengths") or [len(row_ids)]
            row_positions = torch.cat([torch.arange(n, dtype=torch.long) for n in lengths])
            row_labels[row_positions == 0] = IGNORE  # a document's first token is not predicted from another's
            ids.append(row_ids)
            labels.append(row_labels)
            positions.append(row_positions)
        if self.flatten:
            ids, labels, positions = [torch.cat(ids)], [torch.cat(labels)], [torch.cat(positions)]
        width = max(len(row) for row in ids)
        batch_ids = torch.full((len(ids), width), self.pad_token_id, dtype=torch.long)
        batch_labels = torch.full((len(ids), width), IGNORE, dtype=torch.long)
        # Padding gets positions 0.. of its own, so it forms a separate (ignored) segment nobody attends to.
        batch_positions = torch.arange(width, dtype=torch.long).repeat(len(ids), 1)
        for index, (row_ids, row_labels, row_positions) in enumerate(zip(ids, labels, positions)):
            n = len(row_ids)
            batch_ids[index, :n] = row_ids
            batch_labels[index, :n] = row_labels
            batch_positions[index, :n] = row_positions
            batch_positions[index, n:] = torch.arange(width - n)
        self.batches.append((sum(len(row) for row in ids), batch_ids.numel()))
        return {"input_ids": batch_ids, "labels": batch_labels, "position_ids": batch_positions}

    def totals(self, batches: int | None = None) -> tuple[int, int]:
        """(real tokens, slots) over the first `batches` collated batches (all when None)."""
        chosen = self.batches if batches is None else self.batches[:batches]
        return sum(real for real, _ in chosen), sum(slots for _, slots in chosen)

    def padding_fraction(self, batches: int | None = None) -> float:
        real, slots = self.totals(batches)
        return 1 - real / slots if slots else 0.0
