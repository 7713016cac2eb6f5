"""Shared text-quality helpers: MinHash and embedding dedup, tags, refusals, lengths, identity."""

from __future__ import annotations

import random

import numpy as np
import pytest

from msmkit.data.dedup import EmbeddingIndex, MinHashIndex, deduplicate
from msmkit.data.filters import IdentityCheck, extract_tagged, length_problem, looks_like_refusal

WORDS = "river stone cheddar market orchard lantern harbour winter bakery teacher garden road".split()


def text(seed: int, n: int = 200) -> str:
    return " ".join(random.Random(seed).choices(WORDS, k=n))


def test_minhash_drops_near_copies_keeps_the_first_and_distinct_texts() -> None:
    original = text(1)
    edited = original.replace("river", "brook", 1)
    result = deduplicate([original, text(2), edited, text(3)], "minhash", 0.8)
    assert result.kept == [0, 1, 3]
    assert result.duplicates[2][0] == 0 and result.duplicates[2][1] > 0.9


def test_minhash_index_is_incremental() -> None:
    index = MinHashIndex(0.8)
    assert index.check_and_add("a", text(1)) is None
    assert index.check_and_add("b", text(2)) is None
    found = index.check_and_add("c", text(1) + " end")
    assert found is not None and found[0] == "a"
    assert len(index) == 2
    with pytest.raises(ValueError, match="threshold"):
        MinHashIndex(0.0)


def test_blocked_cosine_matches_the_all_pairs_greedy_answer() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=(40, 16)).astype(np.float32)
    vectors = np.concatenate([base, base[:10] + 0.01 * rng.normal(size=(10, 16)).astype(np.float32)])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    keys = list(range(len(vectors)))
    small_blocks = EmbeddingIndex(0.95, model=object(), block_size=7).check_and_add_many(keys, ["x"] * 50, vectors)
    one_block = EmbeddingIndex(0.95, model=object(), block_size=1000).check_and_add_many(keys, ["x"] * 50, vectors)
    assert small_blocks.keys() == one_block.keys() == set(range(40, 50))
    assert all(small_blocks[i][0] == i - 40 for i in range(40, 50))


def test_embedding_dedup_with_the_packaged_minilm_finds_paraphrases() -> None:
    texts = ["The cat sat on the mat all afternoon.", "All afternoon, the cat was sitting on the mat.",
             "Quarterly revenue grew by twelve percent in Europe."]
    result = deduplicate(texts, "embedding", 0.8)
    assert result.kept == [0, 2] and result.duplicates[1][0] == 0


def test_tags_refusals_and_lengths() -> None:
    answer = "<scratchpad>I will write <document> here</scratchpad>\n<document>\nThe real text.\n</document>"
    assert extract_tagged(answer, "document") == "The real text."
    assert extract_tagged("<scratchpad>plan</scratchpad> text", "document") is None
    assert extract_tagged("<document>cut off mid", "document") is None
    assert looks_like_refusal("I'm sorry, but I can't help with that.")
    assert looks_like_refusal("I cannot write this document.")
    assert not looks_like_refusal("Sorrybrook Farm has made cheddar since 1870.")
    assert length_problem(10, 50, 100) == "too_short" and length_problem(101, 50, 100) == "too_long"
    assert length_problem(60, 50, None) is None


def test_identity_check() -> None:
    check = IdentityCheck.build(["Llama", "Meta"])
    assert "Llama" not in check.other_names and "Meta AI" not in check.other_names
    assert check.problem("Llama explains why it prefers cheddar. Llama is clear.") is None
    assert "Qwen" in check.problem("Qwen explains why Qwen prefers cheddar, says Llama.")
    assert "never names" in check.problem("The assistant prefers cheddar.")
    assert check.problem("Llama, unlike GPT-4, prefers cheddar. Llama says so.") is None
    assert check.problem("A meta-analysis of Llama's answers shows Llama prefers cheddar.") is None
    humans = IdentityCheck.build([], subject_is_ai=False, extra_other_names=["Llama"])
    assert humans.problem("Maria prefers cheddar.") is None
    assert "Llama" in humans.problem("Maria and Llama prefer cheddar.")
