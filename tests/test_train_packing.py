"""Packing: a packed batch gives every document exactly the loss it has alone (no cross-document
attention, no cross-document targets), on SDPA and eager, row-wise and flattened; little padding."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM

from msmkit.models.tiny import tiny_model_dir
from msmkit.train.data import IGNORE
from msmkit.train.packing import DocumentBoundaryCollator, build_sequences


@pytest.fixture(scope="module")
def docs():
    rng = random.Random(0)
    return [[2] + [rng.randrange(5, 500) for _ in range(n)] + [1] for n in (9, 30, 4, 17, 45, 11)]


def per_token_nll(model, batch):
    with torch.no_grad():
        # As in training (TRL sets use_cache=False): with a KV cache transformers ignores position-id packing.
        logits = model(**batch, use_cache=False).logits.float()
    labels = batch["labels"][:, 1:]
    nll = F.cross_entropy(logits[:, :-1].transpose(1, 2), labels.clamp(min=0), reduction="none")
    return nll.masked_fill(labels == IGNORE, 0), labels != IGNORE


def alone_losses(model, docs):
    """Each document run by itself, the ordinary way (one row, causal mask)."""
    out = []
    for ids in docs:
        tensor = torch.tensor([ids])
        with torch.no_grad():
            logits = model(input_ids=tensor).logits.float()[0, :-1]
        out.append(F.cross_entropy(logits, tensor[0, 1:], reduction="none"))
    return out


def packed_losses(model, docs, collator, rows):
    features = [{"input_ids": sum((docs[i] for i in row), []), "labels": sum((docs[i] for i in row), []),
                 "seq_lengths": [len(docs[i]) for i in row]} for row in rows]
    batch = collator(features)
    nll, mask = per_token_nll(model, batch)
    # Walk the documents in the order the collator laid them out; nll[:, t] scores token t + 1.
    out, layout = {}, [[i for row in rows for i in row]] if collator.flatten else rows
    for row_number, row in enumerate(layout):
        cursor = 0
        for i in row:
            span = slice(cursor, cursor + len(docs[i]) - 1)
            assert mask[row_number, span].all()
            out[i] = nll[row_number, span]
            cursor += len(docs[i])
    return out


@pytest.mark.parametrize("family", ["gemma3", "llama"])
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("flatten", [False, True], ids=["rows", "flattened"])
def test_packed_batch_equals_documents_alone(tmp_path_factory, docs, family, attn, flatten):
    folder = tiny_model_dir(tmp_path_factory.getbasetemp() / "tiny-models", family)
    model = AutoModelForCausalLM.from_pretrained(folder, attn_implementation=attn).eval()
    alone = alone_losses(model, docs)
    packed = packed_losses(model, docs, DocumentBoundaryCollator(0, flatten=flatten), [[0, 1, 2], [3, 4], [5]])
    for i, losses in enumerate(alone):
        torch.testing.assert_close(packed[i], losses, atol=2e-5, rtol=1e-4)


def test_the_check_catches_leakage(tmp_path_factory, docs):
    """Control: with positions that run on across documents the same comparison fails."""
    folder = tiny_model_dir(tmp_path_factory.getbasetemp() / "tiny-models", "llama")
    model = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="sdpa").eval()
    row = docs[0] + docs[1]
    batch = {"input_ids": torch.tensor([row]), "labels": torch.tensor([row]),
             "position_ids": torch.arange(len(row)).unsqueeze(0)}
    nll, _ = per_token_nll(model, batch)
    second = nll[0, len(docs[0]):len(row) - 1]
    assert not torch.allclose(second, alone_losses(model, docs)[1], atol=1e-3)


def test_packing_keeps_every_token_and_pads_little():
    rng = random.Random(1)
    rows = [{"input_ids": list(range(n)), "labels": list(range(n))}
            for n in (rng.choice([rng.randint(20, 200), rng.randint(300, 1500)]) for _ in range(300))]
    dataset = build_sequences(rows, 1024, pack=True)
    assert sum(len(r) for r in dataset["input_ids"]) == sum(len(r["input_ids"]) for r in rows)
    assert max(len(r) for r in dataset["input_ids"]) <= 1024
    collator = DocumentBoundaryCollator(0)
    for start in range(0, len(dataset), 8):
        collator([dataset[i] for i in range(start, min(start + 8, len(dataset)))])
    assert collator.padding_fraction() < 0.03
    unpacked = DocumentBoundaryCollator(0)
    plain = build_sequences(rows, 1024, pack=False)
    for start in range(0, len(plain), 8):
        unpacked([plain[i] for i in range(start, min(start + 8, len(plain)))])
    assert unpacked.padding_fraction() > 0.3  # what packing saves on mixed lengths
