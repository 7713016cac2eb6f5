"""Cells of the corpus (one subdomain x one document type) and how many documents each must deliver."""

from __future__ import annotations

from dataclasses import dataclass, field

from msmkit.generate.corpus.records import Assertion, DocType, Domain, Idea, Subdomain


@dataclass
class DocTypeCell:
    domain: Domain
    subdomain: Subdomain
    doc_type: DocType
    assertions: list[Assertion]
    quota: int
    ideas: list[Idea] = field(default_factory=list)  # every idea asked for, all rounds, in order

    @property
    def id(self) -> str:
        return self.doc_type.id  # a document type belongs to exactly one subdomain


def allocate_quotas(cell_count: int, documents: int | None, each: int) -> list[int]:
    """Spread a total evenly over `cell_count` slots (earlier slots take the remainder), or `each` per slot."""
    if documents is None:
        return [each] * cell_count
    if cell_count == 0:
        return []
    base, extra = divmod(documents, cell_count)
    return [base + (1 if number < extra else 0) for number in range(cell_count)]
