"""Model Specs: loading and templating, structure, excerpt checks, lint, and variants for ablations.

Variants (which need the LLM client) live in `msmkit.spec.variants`: make_variant, make_llm_variant,
invert_spec, write_variant.
"""

from msmkit.spec.excerpt import ExcerptMatch, find_excerpt
from msmkit.spec.lint import Finding, LintReport, lint_spec
from msmkit.spec.load import (
    ACCEPTED_SUFFIXES,
    ContextFit,
    ModelSpec,
    SpecWarning,
    check_fits_context,
    load_spec,
    spec_from_text,
)
from msmkit.spec.structure import SpecRule, SpecSection, SpecStructure, parse_structure

__all__ = [
    "ACCEPTED_SUFFIXES", "ContextFit", "ExcerptMatch", "Finding", "LintReport", "ModelSpec", "SpecRule",
    "SpecSection", "SpecStructure", "SpecWarning", "check_fits_context", "find_excerpt", "lint_spec", "load_spec",
    "parse_structure", "spec_from_text",
]
