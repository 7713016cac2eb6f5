"""Deliberative-alignment reasoning must quote the spec: every quoted passage is checked against it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from msmkit.spec import find_excerpt

# Straight or curly double quotes around a passage on one paragraph.
_QUOTED = re.compile(r"[\"\u201c]([^\"\u201c\u201d\n]+?)[\"\u201d]")


@dataclass
class QuoteCheck:
    quotes: list[dict[str, object]] = field(default_factory=list)  # {text, similarity, found}
    problem: str | None = None


def check_quotes(reasoning: str, spec_text: str, *, threshold: float, min_words: int, min_quotes: int) -> QuoteCheck:
    """Quoted passages of at least `min_words` words must each match the spec (find_excerpt >= threshold)."""
    check = QuoteCheck()
    for match in _QUOTED.finditer(reasoning):
        text = match.group(1).strip()
        if len(text.split()) < min_words:
            continue
        found = find_excerpt(spec_text, text, threshold=threshold)
        check.quotes.append({"text": text, "similarity": found.similarity, "found": found.found})
    missing = [quote for quote in check.quotes if not quote["found"]]
    if missing:
        shown = str(missing[0]["text"])[:120]
        check.problem = (f"{len(missing)} quote(s) not in the spec, e.g. '{shown}' "
                         f"(similarity {missing[0]['similarity']})")
    elif len(check.quotes) < min_quotes:
        check.problem = (f"{len(check.quotes)} spec quote(s) of {min_words}+ words in the reasoning; "
                         f"{min_quotes} required")
    return check
