"""One document per idea: ask, retry a truncated answer once with a larger budget, and decide keep or drop.

Raw answers are logged under the task ids `<idea id>` and `<idea id>#retry`; the keep/drop decision is
recomputed from them on every run, so changing a length bound needs no new calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from msmkit.data.filters import IdentityCheck, extract_tagged, length_problem, looks_like_refusal, word_count
from msmkit.generate.corpus.context import CorpusContext
from msmkit.generate.corpus.prompting import DOCUMENT_CLOSE
from msmkit.generate.corpus.records import Assertion, DocType, Idea, Subdomain
from msmkit.llm.types import LLMRequest, StopReason


@dataclass(frozen=True)
class DocumentJob:
    idea: Idea
    subdomain: Subdomain
    doc_type: DocType
    assertions: Sequence[Assertion]


@dataclass(frozen=True)
class Outcome:
    text: str | None  # the document, when kept so far
    reason: str | None = None  # drop reason
    detail: str = ""
    excerpt: str = ""


def _record(task: str, idea_id: str, request: LLMRequest, response: Any) -> dict[str, Any]:
    if response is None:
        return {"task": task, "idea_id": idea_id, "answered": False, "max_tokens": request.max_tokens}
    return {"task": task, "idea_id": idea_id, "answered": True, "text": response.text,
            "stop_reason": response.stop_reason, "max_tokens": request.max_tokens,
            "output_tokens": response.usage.output_tokens, "model": response.model}


async def _answer(ctx: CorpusContext, job: DocumentJob, task: str, max_tokens: int) -> dict[str, Any]:
    log = ctx.log("documents")
    stored = log.get(task)
    if stored is not None and stored.get("answered"):
        ctx.counters["documents"].reused += 1
        return stored
    request = ctx.prompts.document(job.subdomain, job.doc_type, job.idea, job.assertions, max_tokens)
    record = _record(task, job.idea.id, request, await ctx.ask("documents", request))
    if record["answered"]:
        log.append(record)
    return record


async def write_document(ctx: CorpusContext, job: DocumentJob) -> None:
    """Answer one job unless a usable answer is logged; a truncated answer is asked once more with a larger budget."""
    lengths = ctx.config.lengths
    first = await _answer(ctx, job, job.idea.id, lengths.document_max_tokens)
    if first.get("answered") and first["stop_reason"] == StopReason.MAX_TOKENS:
        # A new request (larger budget = different request), asked once, never a silent cut.
        retry_budget = int(lengths.document_max_tokens * lengths.retry_max_tokens_factor)
        await _answer(ctx, job, f"{job.idea.id}#retry", retry_budget)


def final_answer(ctx: CorpusContext, idea_id: str) -> dict[str, Any] | None:
    """The answer that decides the document: the retry when there was one, else the first."""
    log = ctx.log("documents")
    retry = log.get(f"{idea_id}#retry")
    if retry is not None and retry.get("answered"):
        return retry
    return log.get(idea_id)


def judge_outcome(record: dict[str, Any] | None, *, base_model: bool, min_words: int, max_words: int | None,
                  identity: IdentityCheck | None, base_opening: str = "") -> Outcome:
    """Keep or drop one answer; the first failing check names the reason."""
    if record is None or not record.get("answered"):
        return Outcome(None, "call_failed", "no answer (the call failed; a rerun asks again)")
    raw = record["text"]
    excerpt = raw[:300]
    if record["stop_reason"] == StopReason.REFUSAL or looks_like_refusal(raw):
        return Outcome(None, "refusal", f"stop_reason={record['stop_reason']}", excerpt)
    if record["stop_reason"] == StopReason.MAX_TOKENS:
        return Outcome(None, "truncated", f"still cut at max_tokens={record['max_tokens']} after one larger retry",
                       excerpt)
    if base_model:
        text = (base_opening + raw.split(DOCUMENT_CLOSE)[0]).strip()
    else:
        found = extract_tagged(raw, "document")
        if found is None:
            return Outcome(None, "missing_document_tags", "no complete <document>...</document> in the answer", excerpt)
        text = found
    if looks_like_refusal(text):
        return Outcome(None, "refusal", "the document itself declines", excerpt)
    problem = length_problem(word_count(text), min_words, max_words)
    if problem:
        return Outcome(None, problem, f"{word_count(text)} words (bounds {min_words}..{max_words})", excerpt)
    if identity is not None:
        issue = identity.problem(text)
        if issue:
            return Outcome(None, "identity", issue, excerpt)
    return Outcome(text)
