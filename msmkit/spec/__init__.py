"""Model Specs: loading and templating, structure, excerpt checks, lint, and variants for ablations."""

from msmkit.spec.excerpt import ExcerptMatch, find_excerpt
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
    "ACCEPTED_SUFFIXES", "ContextFit", "ExcerptMatch", "ModelSpec", "SpecRule", "SpecSection", "SpecStructure",
    "SpecWarning", "check_fits_context", "find_excerpt", "load_spec", "parse_structure", "spec_from_text",
]
