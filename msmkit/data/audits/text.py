"""Word-level text helpers for the audits: words with their character spans, sentences, and runs of a text that
also occur in reference texts (found through their word n-grams)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator, Sequence

_WORD = re.compile(r"\w+(?:['\u2019]\w+)*", re.UNICODE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


@dataclass(frozen=True)
class Words:
    """A text's words (casefolded) with where each one starts and ends in the text."""

    text: str
    tokens: tuple[str, ...]
    starts: tuple[int, ...]
    ends: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.tokens)

    def excerpt(self, first: int, count: int) -> str:
        """The original text of `count` words from word `first`."""
        return self.text[self.starts[first]:self.ends[first + count - 1]]


def words(text: str) -> Words:
    found = list(_WORD.finditer(text))
    return Words(text, tuple(m.group(0).casefold() for m in found), tuple(m.start() for m in found),
                 tuple(m.end() for m in found))


def sentences(text: str) -> list[str]:
    return [part.strip() for part in _SENTENCE_END.split(text) if part.strip()]


def sentence_windows(text: str, size: int) -> list[str]:
    """Every run of `size` consecutive sentences (the whole text when it has fewer)."""
    parts = sentences(text)
    if len(parts) <= size:
        return [" ".join(parts)] if parts else []
    return [" ".join(parts[i:i + size]) for i in range(len(parts) - size + 1)]


# Common words of four letters or more that carry no topic: left out of `content_words`.
_FUNCTION_WORDS = frozenset("""which what would should could about their there these those with from that this your
have more most than them they into over when where while some very just also only other such each every been being
were will does doing make makes made like much many even because after before between""".split())


def content_words(text: str) -> set[str]:
    """Words of four letters or more that are not function words, a plural 's' dropped."""
    return {token.removesuffix("s") for token in words(text).tokens
            if len(token) >= 4 and token not in _FUNCTION_WORDS}


@dataclass(frozen=True)
class Run:
    """Words `start` .. `start + length - 1` of a text, all inside n-grams that a reference text has too."""

    start: int
    length: int
    source: str  # the reference the run's first n-gram came from
    text: str  # the run as the audited text writes it


class NgramIndex:
    """The word n-grams of some reference texts, for finding where another text repeats them."""

    def __init__(self, n: int) -> None:
        if n < 1:
            raise ValueError(f"n-gram size must be at least 1, got {n}")
        self.n = n
        self._sources: dict[tuple[str, ...], str] = {}

    def add(self, source: str, tokens: Sequence[str]) -> None:
        for gram in self._grams(tokens):
            self._sources.setdefault(gram, source)

    def __len__(self) -> int:
        return len(self._sources)

    def _grams(self, tokens: Sequence[str]) -> Iterator[tuple[str, ...]]:
        for i in range(len(tokens) - self.n + 1):
            yield tuple(tokens[i:i + self.n])

    def runs(self, text: Words, min_words: int) -> list[Run]:
        """Maximal runs of consecutive shared n-grams that cover at least `min_words` words, longest first."""
        hits = [self._sources.get(gram) for gram in self._grams(text.tokens)]
        found: list[Run] = []
        i = 0
        while i < len(hits):
            if hits[i] is None:
                i += 1
                continue
            j = i
            while j + 1 < len(hits) and hits[j + 1] is not None:
                j += 1
            length = j - i + self.n
            if length >= min_words:
                found.append(Run(i, length, hits[i] or "", text.excerpt(i, length)))
            i = j + 1
        return sorted(found, key=lambda run: (-run.length, run.start))

    def containment(self, text: Words) -> float:
        """The share of the text's n-grams that the references have."""
        grams = list(self._grams(text.tokens))
        return sum(gram in self._sources for gram in grams) / len(grams) if grams else 0.0
