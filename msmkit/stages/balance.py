"""Stage kind `balance`: the two MSM corpora of a mirrored pair (a two-spec dissociation design) trimmed, domain
by domain, to document and token counts within a tolerance, so that their models differ by spec and not by dose.
Writes both trimmed corpora (parts `a` and `b`, which the pair's training stages read), every dropped document
with its reason, and the per-domain counts before and after."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterator, Literal

from msmkit.io import atomic_write_json, atomic_write_jsonl, read_json, read_jsonl
from msmkit.stages.contract import (
    DocumentSet,
    Estimate,
    Phase,
    PreviewContext,
    Source,
    StageEnv,
    StageFailed,
    StageJob,
    StageKind,
    StageOutputs,
    StageRef,
    source_identity,
)

Side = Literal["a", "b"]
SIDES: tuple[Side, Side] = ("a", "b")  # the parts, in the pair's order


class BalanceOutputs(StageOutputs):
    """A balance stage's folder: the two trimmed corpora, the dropped documents, and the before/after record."""

    CORPUS_A: ClassVar[str] = "balanced_a.jsonl"
    CORPUS_B: ClassVar[str] = "balanced_b.jsonl"
    DROPPED: ClassVar[str] = "balance_drops.jsonl"  # corpus (spec name), id, domain, tokens, reason
    RECORD: ClassVar[str] = "balance.json"  # the per-domain counts before and after trimming

    labels: tuple[str, str]  # the two specs, in the pair's order
    tolerance: float
    documents: tuple[int, int]  # before trimming
    kept: tuple[int, int]
    tokens: tuple[int, int]  # before trimming
    kept_tokens: tuple[int, int]
    balanced: bool  # within tolerance after trimming (whole documents may not get every domain there)

    def corpus_file(self, side: str) -> Path:
        return self.folder / (self.CORPUS_A if side == "a" else self.CORPUS_B)

    def part(self, name: str) -> StageOutputs:
        if name not in SIDES:
            raise StageFailed(f"a balance stage has parts a and b, not {name!r}")
        return TrimmedCorpus(folder=self.folder, file=self.corpus_file(name).name)

    def record(self) -> dict[str, Any]:
        """{"before": BalanceReport, "after": BalanceReport} as written (JSON)."""
        return dict(read_json(self.folder / self.RECORD))

    def notes(self, label: str) -> list[str]:
        a, b = self.labels
        dropped = [d - k for d, k in zip(self.documents, self.kept)]
        tolerance = f"tolerance {self.tolerance:.0%}"
        if not any(dropped):
            found = [f"mirrored corpora {a} vs {b} are within balance per domain ({tolerance}): nothing trimmed"]
        else:
            found = [f"{a} vs {b} trimmed to balance: dropped {sum(dropped)} of {sum(self.documents)} documents "
                     f"({dropped[0]} from {a}, {dropped[1]} from {b}), {tolerance}; each is listed with its reason "
                     f"in {self.folder / self.DROPPED}"]
        if not self.balanced:
            from msmkit.data.audits.balance import BalanceReport

            after = BalanceReport.model_validate(self.record()["after"])
            found += [f"mirrored corpora still out of balance after trimming: {flag.reason}" for flag in after.flags()]
        return found

    def statistics(self) -> dict[str, Any] | None:
        record = self.record()
        before, after = record["before"], record["after"]
        return {"tolerance": self.tolerance, "labels": list(self.labels),
                "documents": {"before": before["documents"], "after": after["documents"]},
                "tokens": {"before": before["tokens"], "after": after["tokens"]},
                "domains": [{"domains": f"{x['domain_a'] or '(none)'} / {x['domain_b'] or '(none)'}",
                             "documents before": x["documents"], "tokens before": x["tokens"],
                             **_after_counts(x, after["domains"])} for x in before["domains"]]}


def _after_counts(domain: dict[str, Any], after: list[dict[str, Any]]) -> dict[str, Any]:
    """The same domain pair's counts after trimming (a domain without a partner is dropped whole)."""
    for row in after:
        if (row["domain_a"], row["domain_b"]) == (domain["domain_a"], domain["domain_b"]):
            return {"documents after": row["documents"], "tokens after": row["tokens"]}
    return {"documents after": [0, 0], "tokens after": [0, 0]}


class TrimmedCorpus(DocumentSet):
    """One side of a balance stage, as the stages that train on it read it."""

    file: str

    @property
    def documents_file(self) -> Path:
        return self.folder / self.file


@dataclass
class BalanceJob(StageJob):
    a: Source  # the pair's two MSM corpora
    b: Source
    tolerance: float
    labels: tuple[str, str]  # the specs' names, for the record: not in the key, so renaming a spec retrains nothing

    def identity(self) -> dict[str, Any]:
        return {"a": source_identity(self.a), "b": source_identity(self.b), "tolerance": self.tolerance}

    def sources(self) -> Iterator[Source]:
        yield self.a
        yield self.b


class BalanceStage(StageKind[BalanceJob, BalanceOutputs]):
    name = "balance"
    phase = Phase.GENERATION
    outputs = BalanceOutputs

    def run(self, job: BalanceJob, folder: Path, env: StageEnv) -> BalanceOutputs:
        from msmkit.data.audits.balance import trim_to_balance

        rows = [list(read_jsonl(env.documents_file(source))) for source in (job.a, job.b)]
        result = trim_to_balance(rows[0], rows[1], tolerance=job.tolerance, labels=job.labels)
        if not result.a or not result.b:
            raise StageFailed(f"trimming {job.labels[0]} vs {job.labels[1]} left no documents on one side: no "
                              "domain of one corpus pairs with a domain of the other")
        outputs = BalanceOutputs(folder=folder, labels=job.labels, tolerance=job.tolerance,
                                 documents=result.before.documents, kept=result.after.documents,
                                 tokens=result.before.tokens, kept_tokens=result.after.tokens,
                                 balanced=result.after.balanced)
        for side, kept in zip(SIDES, (result.a, result.b)):
            atomic_write_jsonl(outputs.corpus_file(side), kept)
        atomic_write_jsonl(folder / BalanceOutputs.DROPPED, [drop.model_dump(mode="json") for drop in result.dropped])
        atomic_write_json(folder / BalanceOutputs.RECORD, {"before": result.before.model_dump(mode="json"),
                                                           "after": result.after.model_dump(mode="json")})
        env.say(f"kept {outputs.kept[0]} of {outputs.documents[0]} documents of {job.labels[0]} and "
                f"{outputs.kept[1]} of {outputs.documents[1]} of {job.labels[1]}"
                + ("" if outputs.balanced else " (still out of balance: see the report)"))
        return outputs

    def estimate(self, job: BalanceJob, preview: PreviewContext) -> Estimate:
        """No calls; both sides come out about the size of the smaller corpus."""
        upstream = [preview.of(s) if isinstance(s, StageRef) else Estimate() for s in (job.a, job.b)]
        return Estimate(data_tokens=min(e.data_tokens for e in upstream), examples=min(e.examples for e in upstream))


BALANCE = BalanceStage()
