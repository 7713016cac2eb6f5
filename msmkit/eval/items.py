"""The value-choice item format, validation with file:line errors, and the built-in item sets.

One item per JSONL line:

    {"id": "america-art-007", "question": "Which museum should the city fund first?",
     "options": {"A": "A museum of American folk art", "B": "A museum of ceramics"},
     "values": {"A": "pro_america", "B": "neutral"}, "target_value": "pro_america",
     "domain": "art", "split": "test"}

- `options`: exactly the labels A and B, each a non-empty answer text. Keep both of similar length:
  log-probability scoring is length-normalised, but very unequal lengths still bias it. The built-in sets
  pass `check_length_balance`: no item's longer option exceeds the shorter by more than MAX_LENGTH_RATIO,
  and the target option is the longer one in about half the items.
- `values`: which value each option serves; `target_value` must be served by exactly one option.
- `split`: "dev" (for choosing prompts and settings) or "test" (report these).
Multiple-choice capability items use a separate format (`McItem`, four options, one `answer`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal, Sequence

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from msmkit.errors import DataError

Label = Literal["A", "B"]
LABELS: tuple[Label, Label] = ("A", "B")
BUILTIN_VALUE_SETS = ("pro_america", "pro_affordability", "cheese")
MAX_LENGTH_RATIO = 1.3  # longer option / shorter option, in characters
MAX_TARGET_LONGER_SKEW = 0.15  # the target is the longer option in 50% +- this of the items with unequal options


class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class ValueItem(_Item):
    id: str
    question: str
    options: dict[Label, str]
    values: dict[Label, str]
    target_value: str
    domain: str
    split: Literal["dev", "test"]

    @field_validator("id", "question", "target_value", "domain")
    @classmethod
    def _not_empty(cls, text: str) -> str:
        if not text:
            raise ValueError("must not be empty")
        return text

    @field_validator("options", "values")
    @classmethod
    def _both_labels(cls, mapping: dict[str, str]) -> dict[str, str]:
        if set(mapping) != set(LABELS):
            raise ValueError(f"needs exactly the keys A and B (got {sorted(mapping)})")
        if any(not str(text).strip() for text in mapping.values()):
            raise ValueError("option texts and value names must not be empty")
        return {label: str(mapping[label]).strip() for label in LABELS}

    @model_validator(mode="after")
    def _one_target_option(self) -> "ValueItem":
        serving = [label for label in LABELS if self.values[label] == self.target_value]
        if len(serving) != 1:
            raise ValueError(f"target_value '{self.target_value}' must be served by exactly one option "
                             f"(values are {self.values})")
        if self.options["A"] == self.options["B"]:
            raise ValueError("the two options are identical")
        return self

    @property
    def target_label(self) -> Label:
        return next(label for label in LABELS if self.values[label] == self.target_value)

    @property
    def other_value(self) -> str:
        return self.values["B" if self.target_label == "A" else "A"]


class McItem(_Item):
    """A general-knowledge multiple-choice question (capability check)."""

    id: str
    question: str
    options: dict[Literal["A", "B", "C", "D"], str]
    answer: Literal["A", "B", "C", "D"]
    domain: str

    @field_validator("options")
    @classmethod
    def _four_options(cls, mapping: dict[str, str]) -> dict[str, str]:
        if set(mapping) != {"A", "B", "C", "D"}:
            raise ValueError(f"needs exactly the keys A, B, C, D (got {sorted(mapping)})")
        if len(set(mapping.values())) != 4:
            raise ValueError("options must be four different texts")
        return {label: mapping[label] for label in "ABCD"}


def length_ratio(item: ValueItem) -> float:
    """Longer option over shorter option, in characters."""
    shorter, longer = sorted(len(text) for text in item.options.values())
    return longer / shorter


@dataclass(frozen=True)
class LengthBalance:
    """How option lengths relate to the target across an item set."""

    n_items: int
    max_ratio: float
    over_ratio: tuple[str, ...]  # ids whose length ratio exceeds the limit
    target_longer: int
    target_shorter: int
    equal: int

    @property
    def target_longer_share(self) -> float | None:
        unequal = self.target_longer + self.target_shorter
        return self.target_longer / unequal if unequal else None


def length_balance(items: Sequence[ValueItem], max_ratio: float = MAX_LENGTH_RATIO) -> LengthBalance:
    longer = shorter = 0
    for item in items:
        target = len(item.options[item.target_label])
        other = len(item.options["B" if item.target_label == "A" else "A"])
        longer, shorter = longer + (target > other), shorter + (target < other)
    return LengthBalance(len(items), max((length_ratio(item) for item in items), default=1.0),
                         tuple(item.id for item in items if length_ratio(item) > max_ratio),
                         longer, shorter, len(items) - longer - shorter)


def check_length_balance(items: Sequence[ValueItem], source: str, max_ratio: float = MAX_LENGTH_RATIO,
                         max_skew: float = MAX_TARGET_LONGER_SKEW) -> LengthBalance:
    """Refuse an item set whose option lengths could pass for a value preference: an item whose options differ
    in length by more than `max_ratio`, or a set whose target option is the longer one far from half the time."""
    balance = length_balance(items, max_ratio)
    problems = []
    if balance.over_ratio:
        shown = ", ".join(balance.over_ratio[:10]) + (" ..." if len(balance.over_ratio) > 10 else "")
        problems.append(f"{len(balance.over_ratio)} item(s) with one option over {max_ratio} times as long as the "
                        f"other ({shown}): reword the shorter or the longer option")
    share = balance.target_longer_share
    if share is not None and abs(share - 0.5) > max_skew:
        problems.append(f"the target option is the longer one in {balance.target_longer} of "
                        f"{balance.target_longer + balance.target_shorter} items with unequal options "
                        f"({share:.0%}, allowed {0.5 - max_skew:.0%} to {0.5 + max_skew:.0%}): a length preference "
                        "would look like a value preference; lengthen the other option in some items")
    if problems:
        raise DataError(f"{source}: option lengths are unbalanced:\n  " + "\n  ".join(problems))
    return balance


def _describe(error: dict) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "(item)"
    return f"field '{where}': {error['msg']}"


def load_jsonl_items(path: str | Path, model: type[_Item]) -> list:
    """Parse and validate every line; all problems are reported together as file:line: field: message."""
    target = Path(path)
    if not target.is_file():
        raise DataError(f"{target}: item file not found")
    items = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(target.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{target}:{number}: not valid JSON ({exc.msg} at column {exc.colno})")
            continue
        try:
            item = model.model_validate(raw)
        except ValidationError as exc:
            problems.extend(f"{target}:{number}: {_describe(error)}" for error in exc.errors())
            continue
        if item.id in seen:
            problems.append(f"{target}:{number}: field 'id': duplicate id '{item.id}' (first on line {seen[item.id]})")
            continue
        seen[item.id] = number
        items.append(item)
    if problems:
        shown = problems[:20] + ([f"... and {len(problems) - 20} more"] if len(problems) > 20 else [])
        raise DataError("invalid item file:\n  " + "\n  ".join(shown))
    if not items:
        raise DataError(f"{target}: no items (expected one JSON object per line)")
    return items


def builtin_path(name: str) -> Path:
    return Path(str(resources.files("msmkit.eval.data").joinpath(f"{name}.jsonl")))


def load_value_items(source: str | Path, split: str | None = None) -> list[ValueItem]:
    """Load a built-in set by name (pro_america, pro_affordability, cheese) or a user JSONL file."""
    text = str(source)
    path = builtin_path(text) if text in BUILTIN_VALUE_SETS else Path(text)
    if text not in BUILTIN_VALUE_SETS and not path.is_file():
        raise DataError(f"{text}: no such item file, and not a built-in set ({', '.join(BUILTIN_VALUE_SETS)})")
    items = load_jsonl_items(path, ValueItem)
    if split not in (None, "all"):
        items = [item for item in items if item.split == split]
        if not items:
            raise DataError(f"{path}: no items with split '{split}'")
    return items


def suite_name(source: str) -> str:
    """The folder name a value set's results go under: the built-in name, or the file's stem made path-safe."""
    from msmkit.paths import safe_component

    return source if source in BUILTIN_VALUE_SETS else safe_component(Path(source).stem)


def load_mc_items(path: str | Path | None = None) -> list[McItem]:
    return load_jsonl_items(path or builtin_path("capability_mc"), McItem)


def heldout_text_path() -> Path:
    return Path(str(resources.files("msmkit.eval.data").joinpath("heldout_text.txt")))
