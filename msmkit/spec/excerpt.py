"""Check that a model-quoted "verbatim" spec excerpt really appears in the spec.

Matching is on normalised words (case, whitespace, curly quotes, dashes and Markdown emphasis
ignored), so reflowed or re-quoted text still matches exactly; light edits give a similarity
below 1 (difflib's ratio over words); unrelated text scores near 0. Spans map back to the
original characters, so a caller can cut the real section out of the spec.
"""

from __future__ import annotations

import re
from collections import Counter
from difflib import SequenceMatcher

from pydantic import BaseModel

_WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*", re.UNICODE)
_NGRAM = 3
_CANDIDATES = 12


class ExcerptMatch(BaseModel):
    similarity: float  # 1.0 = every word matches, in order
    threshold: float
    start: int  # character span of the best match in the searched text (-1 when nothing matched)
    end: int
    matched_text: str

    @property
    def found(self) -> bool:
        return self.similarity >= self.threshold


def _words(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    words, spans = [], []
    for match in _WORD.finditer(text):
        words.append(match.group(0).casefold().replace("\u2019", "'"))
        spans.append(match.span())
    return words, spans


def _trim_stray_edges(blocks: list) -> list:
    """Drop one- or two-word matches at either edge that stretch the window over unrelated text
    (a common word in the slack before or after the real match)."""
    def stretched(first, second) -> bool:  # noqa: ANN001
        gap_text = second.b - (first.b + first.size)
        gap_excerpt = second.a - (first.a + first.size)
        return gap_text > gap_excerpt

    while len(blocks) > 1 and blocks[0].size < 3 and stretched(blocks[0], blocks[1]):
        blocks = blocks[1:]
    while len(blocks) > 1 and blocks[-1].size < 3 and stretched(blocks[-2], blocks[-1]):
        blocks = blocks[:-1]
    return blocks


def _exact_word_match(text_words: list[str], excerpt_words: list[str]) -> int | None:
    """Index of the first word where `excerpt_words` occurs contiguously in `text_words`, if it does."""
    joined = " " + " ".join(text_words) + " "
    position = joined.find(" " + " ".join(excerpt_words) + " ")
    if position < 0:
        return None
    return joined.count(" ", 0, position + 1) - 1


def find_excerpt(spec: object, excerpt: str, threshold: float = 0.9) -> ExcerptMatch:
    """Best match of `excerpt` in `spec` (a ModelSpec or a string) with its word-level similarity."""
    text = spec if isinstance(spec, str) else spec.text
    text_words, text_spans = _words(text)
    excerpt_words, _ = _words(excerpt)
    none = ExcerptMatch(similarity=0.0, threshold=threshold, start=-1, end=-1, matched_text="")
    if not excerpt_words or not text_words:
        return none
    size = len(excerpt_words)
    exact = _exact_word_match(text_words, excerpt_words)
    if exact is not None:
        start_char, end_char = text_spans[exact][0], text_spans[exact + size - 1][1]
        return ExcerptMatch(similarity=1.0, threshold=threshold, start=start_char, end=end_char,
                            matched_text=text[start_char:end_char])
    n = min(_NGRAM, size)
    # Where could the excerpt start? Each shared n-gram votes for an alignment.
    positions: dict[tuple[str, ...], list[int]] = {}
    for i in range(len(text_words) - n + 1):
        positions.setdefault(tuple(text_words[i:i + n]), []).append(i)
    votes: Counter[int] = Counter()
    for j in range(size - n + 1):
        for i in positions.get(tuple(excerpt_words[j:j + n]), ()):
            votes[i - j] += 1
    if not votes:
        return none
    slack = max(3, size // 5)
    best_ratio, best_span = 0.0, (0, 0)
    top_votes = votes.most_common(1)[0][1]
    # Alignments with far fewer shared n-grams than the best cannot beat it by much; skip them.
    candidates = [start for start, count in votes.most_common(_CANDIDATES) if count * 2 >= top_votes]
    for start in candidates:
        low = max(0, start - slack)
        window = text_words[low:min(len(text_words), start + size + slack)]
        matcher = SequenceMatcher(None, excerpt_words, window, autojunk=False)
        blocks = _trim_stray_edges([block for block in matcher.get_matching_blocks() if block.size])
        if not blocks:
            continue
        first, last = blocks[0].b, blocks[-1].b + blocks[-1].size
        matched = sum(block.size for block in blocks)
        ratio = 2.0 * matched / (size + (last - first))
        if ratio > best_ratio:
            best_ratio, best_span = ratio, (low + first, low + last)
    if best_ratio == 0.0:
        return none
    start_char = text_spans[best_span[0]][0]
    end_char = text_spans[best_span[1] - 1][1]
    return ExcerptMatch(similarity=round(best_ratio, 4), threshold=threshold, start=start_char, end=end_char,
                        matched_text=text[start_char:end_char])
