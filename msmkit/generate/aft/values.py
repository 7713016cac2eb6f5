"""The value-free check: reject any example that mentions a reason a spec gives for its preferences.

The vocabulary is the configured `value_terms` plus, per guard spec, terms the LLM lists from the spec
(logged, so asked once). Item names from the preference sheet are blanked before matching, so
"American Muenster" does not trip the term "American" while "because it's American" does.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

from pydantic import BaseModel, Field

from msmkit.errors import DataError

if TYPE_CHECKING:
    from msmkit.generate.aft.context import AftContext


class ValueTerms(BaseModel):
    terms: list[str] = Field(min_length=1, max_length=200)


def _term_pattern(term: str) -> re.Pattern[str]:
    words = term.split()
    body = r"\s+".join(re.escape(word) for word in words)
    # Strict on purpose: a last word of 4+ letters also matches as a prefix ("afford" -> "affordable",
    # "America" -> "Americans"); shorter terms match whole words only ("US" must not match "use").
    tail = r"\w*" if len(words[-1]) >= 4 else ""
    return re.compile(rf"(?<![\w]){body}{tail}(?![\w])", re.IGNORECASE)


@dataclass(frozen=True)
class ValueGuard:
    terms: tuple[str, ...]
    item_names: tuple[str, ...] = ()

    @classmethod
    def build(cls, terms: Iterable[str], item_names: Iterable[str] = ()) -> "ValueGuard":
        cleaned = sorted({term.strip().casefold() for term in terms if term and term.strip()})
        return cls(terms=tuple(cleaned), item_names=tuple(sorted(set(item_names), key=lambda n: (-len(n), n))))

    def _blank_items(self, text: str) -> str:
        for name in self.item_names:
            text = re.sub(rf"(?<![\w]){re.escape(name)}(?![\w])", " ", text, flags=re.IGNORECASE)
        return text

    def problem(self, text: str) -> str | None:
        """None when no value term appears, else which ones, e.g. "mentions a value: afford ('affordable')"."""
        blanked = self._blank_items(text)
        for term in self.terms:
            match = _term_pattern(term).search(blanked)
            if match:
                return f"mentions a value: {term} ({match.group(0)!r})"
        return None


async def derive_value_terms(ctx: "AftContext", spec_texts: list[str]) -> list[str]:
    """The LLM's list of value words for each spec, logged by spec hash (asked once per spec)."""
    terms: list[str] = []
    for spec_text in spec_texts:
        task = hashlib.sha256(spec_text.encode("utf-8")).hexdigest()[:16]
        record = ctx.stored("value_terms", task)
        if record is None:
            result = await ctx.ask_json("value_terms", ctx.prompts.value_terms(spec_text), ValueTerms, task=task)
            if result is None:
                ctx.raise_if_calls_failed("the generator gave no list of value terms for a guard spec")
            if result is None or not result.ok:
                error = "the call failed" if result is None else result.error
                raise DataError(f"the generator gave no usable list of value terms for a guard spec ({error}); "
                                "rerun to ask again, or set value_free.derive_terms: false and list value_terms")
            record = {"task": task, "answered": True, "terms": result.value.terms}
            ctx.log("value_terms").append(record)
        terms.extend(record["terms"])
    return terms
