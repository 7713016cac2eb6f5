"""Integrity audits of a generated corpus or AFT set, before anyone trains on it.

- overlap with the generator's own prompt text (n-gram runs shared with the packaged templates);
- contamination with the evaluation: an eval item's wording (n-grams), a paraphrase of an item (all-MiniLM-L6-v2
  cosine), the agentic scenarios' people and companies;
- fingerprints: recurring invented names, shared openings, verbatim spec quotation, recurring dates and places;
- balance of mirrored corpora (two specs of one dissociation design), and trimming them to match.

`audit_rows` runs the checks of one set; the corpus and AFT writers call it and write each flag with its reason
to their audit flags file and the counts under "audit" in stats.json. `check_balance` / `trim_to_balance` compare
two corpora.
"""

from msmkit.data.audits.audit import AuditReferences, audit_rows, shared_embedder
from msmkit.data.audits.balance import (
    BalanceReport,
    DomainBalance,
    TrimDrop,
    TrimResult,
    check_balance,
    trim_to_balance,
)
from msmkit.data.audits.findings import (
    CHECKS,
    AuditReport,
    AuditSummary,
    CheckCount,
    Flag,
    Offender,
    summary_from_stats,
    write_audit,
)
from msmkit.data.audits.references import ItemSet, ScenarioEntity, load_item_set, load_item_sets, scenario_entities
from msmkit.data.audits.rows import AuditedRow, aft_rows, corpus_rows
from msmkit.data.audits.settings import AuditSettings

__all__ = [
    "CHECKS", "AuditReferences", "AuditReport", "AuditSettings", "AuditSummary", "AuditedRow", "BalanceReport",
    "CheckCount", "DomainBalance", "Flag", "ItemSet", "Offender", "ScenarioEntity", "TrimDrop", "TrimResult",
    "aft_rows", "audit_rows", "check_balance", "corpus_rows", "load_item_set", "load_item_sets", "scenario_entities",
    "shared_embedder", "summary_from_stats", "trim_to_balance", "write_audit",
]
