"""Is a model-quoted "verbatim" spec passage really in the spec?"""

from __future__ import annotations

from dataclasses import dataclass

from msmkit.spec import ModelSpec, find_excerpt


@dataclass(frozen=True)
class ExcerptCheck:
    verified: bool
    similarity: float
    spec_text: str  # the matching passage cut from the spec ("" when nothing matched)


def check_excerpt(spec: ModelSpec, quoted: str, threshold: float) -> ExcerptCheck:
    """Fuzzy word-level match (case, whitespace, quotes and dashes ignored) via `msmkit.spec.find_excerpt`."""
    match = find_excerpt(spec, quoted, threshold=threshold)
    return ExcerptCheck(verified=match.found, similarity=match.similarity, spec_text=match.matched_text)
