"""Overlap checks, one flag per row: copies of the generator's prompt text, and contamination with the evaluation
(an eval item's wording, a paraphrase of an item by embedding similarity, the agentic scenarios' names)."""

from __future__ import annotations

from collections import Counter
from typing import Callable, Sequence

import numpy as np

from msmkit.data.audits.findings import Flag
from msmkit.data.audits.references import EvalText, ItemSet, ScenarioEntity, entity_pattern
from msmkit.data.audits.rows import AuditedRow
from msmkit.data.audits.settings import AuditSettings
from msmkit.data.audits.text import NgramIndex, content_words, sentence_windows, words

_SHOWN_CHARS = 300  # evidence text is cut to this


def _cut(text: str) -> str:
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "..."


def prompt_copies(rows: Sequence[AuditedRow], fragments: Sequence[tuple[str, str]],
                  settings: AuditSettings) -> tuple[list[Flag], float]:
    """(flags, share of rows flagged): rows repeating `prompt_min_words`+ consecutive words of a template."""
    index = NgramIndex(settings.prompt_ngram)
    for name, fragment in fragments:
        index.add(name, words(fragment).tokens)
    flags = []
    for row in rows:
        text = words(row.text)
        runs = index.runs(text, settings.prompt_min_words)
        if runs:
            longest = runs[0]
            flags.append(Flag(
                check="prompt_copy", id=row.id,
                reason=f"repeats {longest.length} consecutive words of the prompt template {longest.source}: "
                       f"\"{_cut(longest.text)}\"",
                evidence={"template": longest.source, "words": longest.length, "span": _cut(longest.text),
                          "at_start": longest.start == 0, "runs": len(runs),
                          "containment": round(index.containment(text), 4)}))
    return flags, len(flags) / len(rows) if rows else 0.0


def eval_ngram_overlap(rows: Sequence[AuditedRow], item_sets: Sequence[ItemSet],
                       settings: AuditSettings) -> list[Flag]:
    """Rows repeating `eval_ngram` consecutive words of an item's question or of one of its options."""
    index = NgramIndex(settings.eval_ngram)
    for item_set in item_sets:
        for item in item_set.items:
            for part in item.parts:
                index.add(f"{item_set.name}/{item.id}", words(part).tokens)
    flags = []
    for row in rows:
        runs = index.runs(words(row.text), settings.eval_ngram)
        if runs:
            longest = runs[0]
            items = sorted({run.source for run in runs})
            flags.append(Flag(check="eval_ngram", id=row.id,
                              reason=f"repeats {longest.length} words of eval item {longest.source}: "
                                     f"\"{_cut(longest.text)}\"",
                              evidence={"item": longest.source, "words": longest.length, "span": _cut(longest.text),
                                        "items": items}))
    return flags


class _SharedWords:
    """Which items a passage shares at least two content words with (an inverted index over the items)."""

    def __init__(self, items: Sequence[tuple[str, EvalText]]) -> None:
        self._items_of: dict[str, set[int]] = {}
        for index, (_, item) in enumerate(items):
            for word in content_words(item.text):
                self._items_of.setdefault(word, set()).add(index)

    def any_item(self, passage: str) -> bool:
        counts: Counter[int] = Counter()
        for word in content_words(passage):
            counts.update(self._items_of.get(word, ()))
        return any(count >= 2 for count in counts.values())


def _windows(row: AuditedRow, size: int, shared: _SharedWords) -> list[str]:
    """Each sentence and each run of up to `size` sentences that shares two content words with some item (others
    cannot be anchored, and their cosine stays far below the alone threshold: 0.61 at most on 1,600 passages of
    spec and general text), and each probe."""
    runs = [window for width in range(1, size + 1) for window in sentence_windows(row.text, width)
            if shared.any_item(window)]
    return list(dict.fromkeys([*runs, *(probe for probe in row.probes if probe.strip())]))


def anchored(passage: str, item: EvalText) -> bool:
    """The passage shares at least two content words with each option of the item (all of a shorter option's),
    or three with the question of an item without options: a paraphrase keeps the item's substance."""
    have = content_words(passage)
    options = [words_of for words_of in map(content_words, item.parts[1:]) if words_of]
    if options:
        return all(len(have & option) >= min(2, len(option)) for option in options)
    return len(have & content_words(item.parts[0])) >= 3


Encode = Callable[[Sequence[str]], np.ndarray]  # texts -> unit vectors, one row each


def eval_embedding_overlap(rows: Sequence[AuditedRow], items: Sequence[tuple[str, EvalText]],
                           item_vectors: np.ndarray, baseline: np.ndarray, settings: AuditSettings,
                           encode: Encode) -> list[Flag]:
    """Rows with a passage (up to `window_sentences` sentences, or a probe) that paraphrases an item (question and
    options together): cosine of `embedding_threshold` with the item's content words kept, or of
    `embedding_alone_threshold` without. `baseline` is each item's best cosine with the spec's own passages: a
    row is flagged only when it is `spec_margin` closer to the item than the spec is, so that restating the spec
    (which an in-distribution item set quotes) is not contamination."""
    if not items or not rows:
        return []
    floor = np.maximum(settings.embedding_threshold, baseline + settings.spec_margin)
    alone = np.maximum(settings.embedding_alone_threshold, baseline + settings.spec_margin)
    shared = _SharedWords(items)
    windows: list[tuple[int, str]] = [(position, window) for position, row in enumerate(rows)
                                      for window in _windows(row, settings.window_sentences, shared)]
    best: dict[int, tuple[float, str, int]] = {}  # row position -> (cosine, passage, item index)
    block = 2048
    for start in range(0, len(windows), block):
        chunk = windows[start:start + block]
        scores = encode([text for _, text in chunk]) @ item_vectors.T
        for (position, window), row_scores in zip(chunk, scores):
            for column in np.flatnonzero(row_scores >= floor):
                score = float(row_scores[column])
                if score <= best.get(position, (-2.0, "", 0))[0]:
                    continue
                if score >= alone[column] or anchored(window, items[column][1]):
                    best[position] = (score, window, int(column))
    flags = []
    for position in sorted(best):
        score, window, column = best[position]
        item_id, item = items[column]
        flags.append(Flag(check="eval_embedding", id=rows[position].id,
                          reason=f"a passage paraphrases eval item {item_id} (cosine {score:.2f}): \"{_cut(window)}\"",
                          evidence={"item": item_id, "item_text": item.text, "cosine": round(score, 4),
                                    "spec_baseline": round(float(baseline[column]), 4), "passage": _cut(window)}))
    return flags


def scenario_mentions(rows: Sequence[AuditedRow], entities: Sequence[ScenarioEntity],
                      exclude: Sequence[str] = ()) -> list[Flag]:
    """Rows naming a person or company of the agentic eval scenarios (documents that rehearse the test)."""
    excluded = {name.casefold() for name in exclude}
    names = {entity.name: entity.scenario for entity in entities if entity.name.casefold() not in excluded}
    pattern = entity_pattern(names)
    canonical = {_key(name): name for name in names}
    flags = []
    for row in rows:
        found = Counter(canonical.get(_key(match.group(0)), match.group(0)) for match in pattern.finditer(row.text))
        if found:
            listed = ", ".join(f"{name} ({count}x)" for name, count in found.most_common())
            scenarios = sorted({names.get(name, "") for name in found} - {""})
            flags.append(Flag(check="scenario_entity", id=row.id,
                              reason=f"names the agentic eval scenarios' {listed}",
                              evidence={"names": dict(found.most_common()), "scenarios": scenarios}))
    return flags


def _key(name: str) -> str:
    return "".join(ch for ch in name.casefold() if ch.isalnum())
