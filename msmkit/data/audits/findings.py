"""What an audit finds: flags with reasons (one file line each), counts per check, and the top offenders of each
fingerprint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from msmkit.io import atomic_write_json, atomic_write_jsonl, read_json

# check -> what a flag of it means, in words the report can show
CHECKS: dict[str, str] = {
    "prompt_copy": "copies text of the generator's own prompt (its instructions or one-shot example)",
    "eval_ngram": "repeats an eval item's wording",
    "eval_embedding": "paraphrases an eval item (embedding similarity)",
    "scenario_entity": "names a person or company of the agentic eval scenarios",
    "recurring_name": "an invented name recurs across rows",
    "recurring_opening": "rows open with the same words",
    "spec_quotation": "too many rows quote the spec verbatim",
    "date_cluster": "one date or year recurs across rows",
    "place_cluster": "one place recurs across rows",
    "imbalance": "mirrored corpora differ in size",
}


class Flag(BaseModel):
    """One finding. A row flag names its row in `id`; a flag about the whole set lists the rows in `rows`."""

    check: str
    reason: str
    id: str | None = None
    rows: list[str] = Field(default_factory=list)
    evidence: dict[str, Any] = Field(default_factory=dict)

    def row_ids(self) -> list[str]:
        return [self.id] if self.id is not None else self.rows


class Offender(BaseModel):
    """A recurring fingerprint value and the rows it is in."""

    value: str
    rows: int
    examples: list[str]  # up to five row ids


class CheckCount(BaseModel):
    flags: int
    rows: int  # distinct rows the check's flags cover


class AuditSummary(BaseModel):
    """The counts a stage keeps in its summary and the report shows."""

    rows: int
    flagged_rows: int
    checks: dict[str, CheckCount] = Field(default_factory=dict)  # only checks that flagged something
    skipped: list[str] = Field(default_factory=list)  # checks that could not run, and why

    def notes(self, label: str) -> list[str]:
        """One line per check that flagged something, for the report's notes."""
        return [f"{label}: audit: {count.rows} of {self.rows} rows: {CHECKS.get(check, check)} ({check}, "
                f"{count.flags} flag{'s' if count.flags != 1 else ''})" for check, count in self.checks.items()]


class AuditReport(BaseModel):
    summary: AuditSummary
    flags: list[Flag]
    top: dict[str, list[Offender]] = Field(default_factory=dict)  # fingerprint -> most frequent values
    rates: dict[str, float] = Field(default_factory=dict)  # e.g. spec_quotation: share of rows quoting the spec
    references: dict[str, Any] = Field(default_factory=dict)  # what the set was compared with
    settings: dict[str, Any] = Field(default_factory=dict)

    def statistics(self) -> dict[str, Any]:
        """Everything but the flags themselves: what goes under "audit" in a stage's stats.json."""
        return self.model_dump(mode="json", exclude={"flags"})


def summarise(rows: int, flags: list[Flag], skipped: list[str]) -> AuditSummary:
    covered: dict[str, set[str]] = {}
    counts: dict[str, int] = {}
    for flag in flags:
        counts[flag.check] = counts.get(flag.check, 0) + 1
        covered.setdefault(flag.check, set()).update(flag.row_ids())
    flagged = set().union(*covered.values()) if covered else set()
    return AuditSummary(rows=rows, flagged_rows=len(flagged), skipped=skipped, checks={
        check: CheckCount(flags=counts[check], rows=len(covered[check])) for check in CHECKS if check in counts})


def write_audit(report: AuditReport, flags_file: Path, stats_file: Path | None = None) -> None:
    """The flags as JSONL (one reason per line) and, when given a stats.json, the statistics under "audit"."""
    atomic_write_jsonl(flags_file, [flag.model_dump(mode="json") for flag in report.flags])
    if stats_file is not None:
        stats = read_json(stats_file) if stats_file.is_file() else {}
        stats["audit"] = report.statistics()
        atomic_write_json(stats_file, stats)


def summary_from_stats(stats: dict[str, Any]) -> AuditSummary | None:
    audit = stats.get("audit")
    return AuditSummary.model_validate(audit["summary"]) if isinstance(audit, dict) and "summary" in audit else None
