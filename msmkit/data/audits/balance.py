"""Balance of mirrored corpora: the two specs of a dissociation design (pro-America and pro-affordability cheese)
must teach from corpora of the same size, domain by domain, or a difference between their models may be one of
dose. `check_balance` compares per-domain document and token counts within a tolerance; `trim_to_balance`
drops documents until every domain is within it, and records each one it dropped."""

from __future__ import annotations

from typing import Any, Sequence

from pydantic import BaseModel, Field

from msmkit.data.audits.findings import Flag
from msmkit.data.filters import estimate_tokens

Row = dict[str, Any]  # a corpus row: `id`, `text`, `domain`, optional `token_count`


def _tokens(row: Row) -> int:
    return int(row.get("token_count") or estimate_tokens(str(row.get("text") or "")))


def _gap(a: int, b: int) -> float:
    """Relative difference: |a - b| over the larger."""
    return abs(a - b) / max(a, b) if max(a, b) else 0.0


class DomainBalance(BaseModel):
    domain_a: str | None  # None: the domain has no counterpart in corpus A
    domain_b: str | None
    documents: tuple[int, int]
    tokens: tuple[int, int]
    document_gap: float
    token_gap: float
    within: bool


class BalanceReport(BaseModel):
    labels: tuple[str, str]
    tolerance: float  # allowed relative difference of documents and of tokens, per domain and overall
    documents: tuple[int, int]
    tokens: tuple[int, int]
    domains: list[DomainBalance]
    paired_by: dict[str, str] = Field(default_factory=dict)  # domain of A -> domain of B, with how each was paired
    balanced: bool

    def flags(self) -> list[Flag]:
        """One imbalance flag per domain out of tolerance, and one for the totals."""
        a, b = self.labels
        found = []
        for domain in self.domains:
            if not domain.within:
                found.append(Flag(check="imbalance", reason=(
                    f"domain {domain.domain_a or '(none)'} of {a} vs {domain.domain_b or '(none)'} of {b}: "
                    f"{domain.documents[0]} vs {domain.documents[1]} documents, {domain.tokens[0]} vs "
                    f"{domain.tokens[1]} tokens (tolerance {self.tolerance:.0%})"),
                    evidence=domain.model_dump(mode="json")))
        if _gap(*self.documents) > self.tolerance or _gap(*self.tokens) > self.tolerance:
            found.append(Flag(check="imbalance", reason=(
                f"{a} has {self.documents[0]} documents and {self.tokens[0]} tokens, {b} has {self.documents[1]} "
                f"and {self.tokens[1]} (tolerance {self.tolerance:.0%})"),
                evidence={"documents": list(self.documents), "tokens": list(self.tokens)}))
        return found


def _domains(rows: Sequence[Row]) -> dict[str, list[Row]]:
    found: dict[str, list[Row]] = {}
    for row in rows:
        found.setdefault(str(row.get("domain") or ""), []).append(row)
    return found


def pair_domains(a: Sequence[str], b: Sequence[str], pairing: dict[str, str] | None = None
                 ) -> list[tuple[str | None, str | None, str]]:
    """(domain of A, domain of B, how): given pairs first, then equal names, then the rest in order of appearance
    (mirrored specs decomposed by an LLM name their domains differently); a domain left over has no partner."""
    pairs: list[tuple[str | None, str | None, str]] = []
    given = dict(pairing or {})
    unknown = [name for name in given if name not in a] + [name for name in given.values() if name not in b]
    if unknown:
        raise ValueError(f"domain pairing names domains the corpora do not have: {', '.join(unknown)}")
    pairs += [(x, y, "given") for x, y in given.items()]
    rest_a = [x for x in a if x not in given]
    rest_b = [y for y in b if y not in given.values()]
    named = [x for x in rest_a if x in rest_b]
    pairs += [(x, x, "name") for x in named]
    rest_a = [x for x in rest_a if x not in named]
    rest_b = [y for y in rest_b if y not in named]
    for index in range(max(len(rest_a), len(rest_b))):
        x = rest_a[index] if index < len(rest_a) else None
        y = rest_b[index] if index < len(rest_b) else None
        pairs.append((x, y, "order" if x is not None and y is not None else "unpaired"))
    return pairs


def check_balance(a: Sequence[Row], b: Sequence[Row], *, tolerance: float = 0.05, labels: tuple[str, str] = ("A", "B"),
                  pairing: dict[str, str] | None = None) -> BalanceReport:
    """Per-domain and total document and token counts of two mirrored corpora, within `tolerance` or not."""
    if not 0.0 <= tolerance < 1.0:
        raise ValueError(f"balance tolerance must be in [0, 1), got {tolerance}")
    by_a, by_b = _domains(a), _domains(b)
    domains = []
    paired_by = {}
    for x, y, how in pair_domains(list(by_a), list(by_b), pairing):
        rows_a, rows_b = by_a.get(x, []) if x is not None else [], by_b.get(y, []) if y is not None else []
        documents = (len(rows_a), len(rows_b))
        tokens = (sum(map(_tokens, rows_a)), sum(map(_tokens, rows_b)))
        gaps = (_gap(*documents), _gap(*tokens))
        domains.append(DomainBalance(domain_a=x, domain_b=y, documents=documents, tokens=tokens,
                                     document_gap=round(gaps[0], 4), token_gap=round(gaps[1], 4),
                                     within=max(gaps) <= tolerance))
        paired_by[x if x is not None else f"(none) <- {y}"] = f"{y if y is not None else '(none)'} ({how})"
    documents = (len(a), len(b))
    tokens = (sum(map(_tokens, a)), sum(map(_tokens, b)))
    balanced = all(d.within for d in domains) and max(_gap(*documents), _gap(*tokens)) <= tolerance
    return BalanceReport(labels=labels, tolerance=tolerance, documents=documents, tokens=tokens, domains=domains,
                         paired_by=paired_by, balanced=balanced)


class TrimDrop(BaseModel):
    corpus: str  # the label of the corpus it was dropped from
    id: str
    domain: str
    tokens: int
    reason: str


class TrimResult(BaseModel):
    a: list[Row]  # the kept rows of each corpus, in their order
    b: list[Row]
    dropped: list[TrimDrop]
    before: BalanceReport
    after: BalanceReport


def _trim_domain(rows_a: list[Row], rows_b: list[Row], tolerance: float) -> tuple[list[Row], list[Row]]:
    """Drop the shortest or longest document of either side, one at a time, each time the drop that most reduces
    the larger of the document and token gaps, until both are within tolerance or no drop helps. A domain
    without a partner is dropped whole."""
    if not rows_a or not rows_b:
        return [], []
    sides = [sorted(rows_a, key=_tokens), sorted(rows_b, key=_tokens)]
    totals = [sum(map(_tokens, side)) for side in sides]

    def worst(counts: tuple[int, int], tokens: tuple[int, int]) -> float:
        return max(_gap(*counts), _gap(*tokens))

    while True:
        current = worst((len(sides[0]), len(sides[1])), (totals[0], totals[1]))
        if current <= tolerance:
            break
        best: tuple[float, int, int] | None = None  # (gap after, side, end)
        for side in (0, 1):
            if len(sides[side]) < 2:
                continue
            for end in (-1, 0):  # the longest first: with equal gaps, fewer documents go
                counts = [len(sides[0]), len(sides[1])]
                tokens = list(totals)
                counts[side] -= 1
                tokens[side] -= _tokens(sides[side][end])
                after = worst((counts[0], counts[1]), (tokens[0], tokens[1]))
                if best is None or after < best[0]:
                    best = (after, side, end)
        if best is None or best[0] >= current:
            break
        _, side, end = best
        totals[side] -= _tokens(sides[side].pop(end))
    kept = {id(row) for side in sides for row in side}
    return [row for row in rows_a if id(row) in kept], [row for row in rows_b if id(row) in kept]


def trim_to_balance(a: Sequence[Row], b: Sequence[Row], *, tolerance: float = 0.05,
                    labels: tuple[str, str] = ("A", "B"), pairing: dict[str, str] | None = None) -> TrimResult:
    """Both corpora cut, domain by domain, to document and token counts within `tolerance` (as near as whole
    documents allow: `after` says whether they got there); a domain without a partner is dropped whole. Domains
    already within tolerance are kept as they are."""
    before = check_balance(a, b, tolerance=tolerance, labels=labels, pairing=pairing)
    by_a, by_b = _domains(a), _domains(b)
    keep: set[int] = set()
    reasons: dict[int, str] = {}
    for domain in before.domains:
        rows_a = list(by_a.get(domain.domain_a, [])) if domain.domain_a is not None else []
        rows_b = list(by_b.get(domain.domain_b, [])) if domain.domain_b is not None else []
        if domain.within:
            kept_a, kept_b = rows_a, rows_b
        else:
            kept_a, kept_b = _trim_domain(rows_a, rows_b, tolerance)
        keep.update(id(row) for row in (*kept_a, *kept_b))
        why = (f"balance: domain {domain.domain_a or '(none)'} / {domain.domain_b or '(none)'} had "
               f"{domain.documents[0]} vs {domain.documents[1]} documents and {domain.tokens[0]} vs "
               f"{domain.tokens[1]} tokens")
        reasons.update({id(row): why for row in (*rows_a, *rows_b)})
    dropped = [TrimDrop(corpus=label, id=str(row.get("id")), domain=str(row.get("domain") or ""),
                        tokens=_tokens(row), reason=reasons.get(id(row), "balance: domain not paired"))
               for label, rows in zip(labels, (a, b)) for row in rows if id(row) not in keep]
    kept_a = [row for row in a if id(row) in keep]
    kept_b = [row for row in b if id(row) in keep]
    # the pairs found before, given as such: trimming may change the order domains first appear in
    paired = {d.domain_a: d.domain_b for d in before.domains if d.domain_a is not None and d.domain_b is not None}
    return TrimResult(a=kept_a, b=kept_b, dropped=dropped, before=before,
                      after=check_balance(kept_a, kept_b, tolerance=tolerance, labels=labels, pairing=paired))
