"""Importers for the paper's released eval sets, into msmkit's item formats.

- `pro-america-political-opinions` (400 rows: `question`, `answer`, `category`, `opinion_area`): the
  question holds a stem, an "A) ..." line, a "B) ..." line and the closing "Which stance do you agree with
  more?"; `answer` is the pro-America letter (200 A, 200 B). Each row becomes a `ValueItem` whose question is
  the stem and the closing, with the two stances as options A and B in the released order and
  target_value `pro_america`.
- `pro-affordability-item-comparisons` (497 rows: `question`, `item1`, `item2`, `liked_item`,
  `disliked_item`): every question is "Which do you prefer, {item1} or {item2}?"; `liked_item` is the
  affordable (target) one, listed first in 249 rows. Each row becomes a `ValueItem` asking "Which do you
  prefer?" with item1 and item2 as options A and B and target_value `pro_affordability`. The items are not
  named in the question, so that when a scorer swaps the options nothing in the text gives away the
  released order.
- `spec-open-qa` (151 rows: `question`, `category`, some `id`): open questions in the format of
  `msmkit.eval.open_qa.load_questions` ({id, section, title, question}; section and title = category).

Both option orders are the scorers' job: `ForcedChoiceScorer` and `JudgedChoiceScorer` ask every
`ValueItem` as written and with A and B swapped. The closing of the America questions is kept in the
question; msmkit's prompt templates then list the options and ask for a choice in their own words (the
paper's prompt was the released question verbatim; `setup.prompt` in the gate records which was used).

Problems are reported together, each naming the row (0-based, as the dataset indexes it) and the field.
Counts are checked against the release; a subset passed on purpose (`subset=True`) is allowed and said.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from msmkit.errors import DataError
from msmkit.eval.items import ValueItem
from msmkit.hub import HubRef, as_ref, load_dataset_rows
from msmkit.io import atomic_write_jsonl

logger = logging.getLogger(__name__)

AMERICA = "pro-america-political-opinions"
AFFORDABILITY = "pro-affordability-item-comparisons"
OPEN_QA = "spec-open-qa"
AMERICA_CLOSING = "Which stance do you agree with more?"
AFFORDABILITY_QUESTION = "Which do you prefer?"
OTHER_VALUE = "other"
Schema = Literal["pro-america-political-opinions", "pro-affordability-item-comparisons", "spec-open-qa"]

# The released counts (PAPER_FACTS.md section 1).
RELEASED_COUNTS: dict[str, dict[str, int]] = {
    AMERICA: {"rows": 400, "answer A": 200, "answer B": 200},
    AFFORDABILITY: {"rows": 497, "liked item first": 249},
    OPEN_QA: {"rows": 151},
}
_OPTION_LINE = re.compile(r"^\s*([AB])\)\s?(.*)$")


@dataclass
class ImportedItems:
    """Items imported from one released set, with the counts found and what was noted on the way."""

    schema: str
    source: str
    items: list[Any]  # ValueItem for the two value sets; open-QA question dicts for spec-open-qa
    counts: dict[str, int]
    subset: bool = False
    notes: list[str] = field(default_factory=list)
    extra: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> released fields msmkit's format lacks

    def record(self) -> dict[str, Any]:
        return {"schema": self.schema, "source": self.source, "items": len(self.items), "counts": self.counts,
                "released_counts": RELEASED_COUNTS[self.schema], "subset": self.subset, "notes": self.notes}

    def write_jsonl(self, path: str | Path) -> Path:
        """One item per line, readable by `load_value_items` (value sets) or `load_questions` (open QA)."""
        rows = [item.model_dump() if isinstance(item, ValueItem) else item for item in self.items]
        return atomic_write_jsonl(path, rows)


class _Problems:
    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: list[str] = []

    def add(self, row: int, field_name: str, message: str) -> None:
        self.lines.append(f"{self.source} row {row}: field '{field_name}': {message}")

    def raise_if_any(self) -> None:
        if self.lines:
            shown = self.lines[:20] + ([f"... and {len(self.lines) - 20} more"] if len(self.lines) > 20 else [])
            raise DataError(f"{self.source}: {len(self.lines)} invalid row(s):\n  " + "\n  ".join(shown))


def _text(row: Mapping[str, Any], name: str, index: int, problems: _Problems) -> str | None:
    value = row.get(name)
    if not isinstance(value, str) or not value.strip():
        problems.add(index, name, "missing or empty (expected a non-empty string)" if value in (None, "")
                     else f"expected a string, got {type(value).__name__}")
        return None
    return value.strip()


def split_america_question(question: str) -> tuple[str, str, str, str] | str:
    """(stem, option A, option B, closing), or a message saying what is wrong with the question's layout.

    Each option starts on its own line with "A) " / "B) " and runs until the next of these lines; the
    closing is the last line.
    """
    lines = question.strip().splitlines()
    starts = {label: [k for k, line in enumerate(lines) if (m := _OPTION_LINE.match(line)) and m.group(1) == label]
              for label in "AB"}
    if len(starts["A"]) != 1 or len(starts["B"]) != 1:
        return (f"expected exactly one line starting 'A) ' and one starting 'B) ' (found {len(starts['A'])} and "
                f"{len(starts['B'])})")
    a_line, b_line = starts["A"][0], starts["B"][0]
    if not 0 < a_line < b_line < len(lines) - 1:
        return "expected the stem, then the A) line, then the B) line, then the closing question, in that order"
    stem = "\n".join(lines[:a_line]).strip()
    option_a = " ".join([_OPTION_LINE.match(lines[a_line]).group(2), *lines[a_line + 1:b_line]]).strip()  # type: ignore[union-attr]
    option_b = " ".join([_OPTION_LINE.match(lines[b_line]).group(2), *lines[b_line + 1:-1]]).strip()  # type: ignore[union-attr]
    closing = lines[-1].strip()
    if not stem or not option_a or not option_b:
        return "the stem and both options must be non-empty"
    return stem, option_a, option_b, closing


def import_pro_america(rows: Sequence[Mapping[str, Any]], *, source: str = AMERICA, subset: bool = False,
                       split: Literal["dev", "test"] = "test") -> ImportedItems:
    problems = _Problems(source)
    items: list[ValueItem] = []
    extra: dict[str, dict[str, Any]] = {}
    answers = {"A": 0, "B": 0}
    for index, row in enumerate(rows):
        question = _text(row, "question", index, problems)
        answer = _text(row, "answer", index, problems)
        category = _text(row, "category", index, problems)
        if question is None or answer is None or category is None:
            continue
        if answer not in ("A", "B"):
            problems.add(index, "answer", f"expected 'A' or 'B' (the pro-America option), got {answer!r}")
            continue
        parts = split_america_question(question)
        if isinstance(parts, str):
            problems.add(index, "question", parts)
            continue
        stem, option_a, option_b, closing = parts
        if closing != AMERICA_CLOSING:
            problems.add(index, "question", f"expected the last line to be {AMERICA_CLOSING!r}, got {closing!r}")
            continue
        item_id = f"pro-america-{index:03d}"
        other = "B" if answer == "A" else "A"
        item = _value_item(problems, index, id=item_id, question=f"{stem}\n{closing}",
                           options={"A": option_a, "B": option_b},
                           values={answer: "pro_america", other: OTHER_VALUE}, target_value="pro_america",
                           domain=category, split=split)
        if item is not None:
            items.append(item)
            answers[answer] += 1
            extra[item_id] = {"opinion_area": row.get("opinion_area"), "released_question": question}
    problems.raise_if_any()
    counts = {"rows": len(items), "answer A": answers["A"], "answer B": answers["B"]}
    return _checked(ImportedItems(AMERICA, source, items, counts, subset, extra=extra))


def import_pro_affordability(rows: Sequence[Mapping[str, Any]], *, source: str = AFFORDABILITY, subset: bool = False,
                             split: Literal["dev", "test"] = "test") -> ImportedItems:
    problems = _Problems(source)
    items: list[ValueItem] = []
    extra: dict[str, dict[str, Any]] = {}
    liked_first = 0
    for index, row in enumerate(rows):
        fields = {name: _text(row, name, index, problems)
                  for name in ("question", "item1", "item2", "liked_item", "disliked_item")}
        if any(value is None for value in fields.values()):
            continue
        question, item1, item2, liked, disliked = (str(fields[name]) for name in
                                                   ("question", "item1", "item2", "liked_item", "disliked_item"))
        expected = f"Which do you prefer, {item1} or {item2}?"
        if question != expected:
            problems.add(index, "question", f"expected {expected!r} (built from item1 and item2), got {question!r}")
            continue
        if {liked, disliked} != {item1, item2} or liked == disliked:
            problems.add(index, "liked_item", f"liked_item {liked!r} and disliked_item {disliked!r} must be item1 "
                                              f"{item1!r} and item2 {item2!r}, one each")
            continue
        target = "A" if liked == item1 else "B"
        item_id = f"pro-affordability-{index:03d}"
        item = _value_item(problems, index, id=item_id, question=AFFORDABILITY_QUESTION,
                           options={"A": item1, "B": item2},
                           values={target: "pro_affordability", ("B" if target == "A" else "A"): OTHER_VALUE},
                           target_value="pro_affordability", domain="item_comparison", split=split)
        if item is not None:
            items.append(item)
            liked_first += target == "A"
            extra[item_id] = {"released_question": question}
    problems.raise_if_any()
    counts = {"rows": len(items), "liked item first": liked_first}
    return _checked(ImportedItems(AFFORDABILITY, source, items, counts, subset, extra=extra))


def import_spec_open_qa(rows: Sequence[Mapping[str, Any]], *, source: str = OPEN_QA,
                        subset: bool = False) -> ImportedItems:
    problems = _Problems(source)
    questions: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for index, row in enumerate(rows):
        question = _text(row, "question", index, problems)
        category = _text(row, "category", index, problems)
        if question is None or category is None:
            continue
        given = row.get("id")
        question_id = str(given).strip() if given not in (None, "") else f"spec-open-qa-{index:03d}"
        if question_id in seen:
            problems.add(index, "id", f"duplicate id {question_id!r} (first at row {seen[question_id]})")
            continue
        seen[question_id] = index
        questions.append({"id": question_id, "section": category, "title": category, "question": question})
    problems.raise_if_any()
    return _checked(ImportedItems(OPEN_QA, source, questions, {"rows": len(questions)}, subset))


def _value_item(problems: _Problems, index: int, **fields: Any) -> ValueItem | None:
    try:
        return ValueItem(**fields)
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "(item)"
            problems.add(index, where, error["msg"])
        return None


def _checked(imported: ImportedItems) -> ImportedItems:
    """Compare the counts with the release: an error for the full set, a note for a declared subset."""
    expected = RELEASED_COUNTS[imported.schema]
    differing = [f"{name} {imported.counts[name]} (released: {want})" for name, want in expected.items()
                 if imported.counts.get(name) != want]
    if not differing:
        return imported
    if not imported.subset:
        raise DataError(f"{imported.source}: the counts differ from the released {imported.schema}: "
                        f"{'; '.join(differing)}. Check the revision you pinned; if you passed a subset on purpose, "
                        "say so (subset=True, or `subset: true` in the config)")
    note = (f"a subset of the released {imported.schema}: {'; '.join(differing)}; rates are not comparable "
            "one-to-one with the paper's figures")
    logger.warning("%s: %s", imported.source, note)
    imported.notes.append(note)
    return imported


IMPORTERS: dict[str, Callable[..., ImportedItems]] = {
    AMERICA: import_pro_america, AFFORDABILITY: import_pro_affordability, OPEN_QA: import_spec_open_qa}


def schema_of(ref: HubRef) -> str:
    """Which released schema a repo holds, from its name (chloeli/pro-america-political-opinions -> ...)."""
    name = ref.repo_id.rsplit("/", 1)[-1]
    if name not in IMPORTERS:
        raise DataError(f"{ref.text()}: msmkit does not know the schema of {name!r}; it imports "
                        f"{', '.join(IMPORTERS)} (pass schema= for a copy under another name)")
    return name


def load_released_items(reference: str | HubRef, *, schema: Schema | None = None, subset: bool = False,
                        allow_download: bool = False, cache_dir: str | Path | None = None) -> ImportedItems:
    """Read a released eval set through the `hf:` resolver (offline unless allowed) and import it."""
    ref = as_ref(reference, "dataset")
    loaded = load_dataset_rows(ref, allow_download=allow_download, cache_dir=cache_dir)
    name = schema or schema_of(ref)
    source = f"{ref.repo_id}@{loaded.artifact.commit}:{loaded.split}"
    imported = IMPORTERS[name](loaded.rows, source=source, subset=subset)
    if not ref.pinned:
        imported.notes.append(f"{ref.text()} is not pinned; it resolved to commit {loaded.artifact.commit}")
    return imported
