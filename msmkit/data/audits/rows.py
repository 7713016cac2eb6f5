"""The audited unit: one corpus document or one AFT demonstration, as the text it trains on plus the parts some
checks read on their own."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable

from msmkit.data.filters import estimate_tokens

_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL)


@dataclass(frozen=True)
class AuditedRow:
    id: str
    text: str  # everything the row trains on
    opening: str  # where its opening is read: a document's start, an assistant reply's start
    probes: tuple[str, ...] = ()  # short parts compared whole with the eval items (an AFT row's user message)
    domain: str = ""
    tokens: int = 0


def corpus_rows(rows: Iterable[dict[str, Any]]) -> list[AuditedRow]:
    """Corpus JSONL rows (`id`, `text`, optional `domain` and `token_count`)."""
    found = []
    for number, row in enumerate(rows):
        text = str(row.get("text") or "")
        found.append(AuditedRow(id=str(row.get("id") or number), text=text, opening=text,
                                domain=str(row.get("domain") or ""),
                                tokens=int(row.get("token_count") or estimate_tokens(text))))
    return found


def aft_rows(rows: Iterable[dict[str, Any]]) -> list[AuditedRow]:
    """AFT chat rows (`id`, `messages`, `metadata`): the user turns are probes, the opening is the assistant's
    reply after its chain of thought."""
    found = []
    for number, row in enumerate(rows):
        messages = row.get("messages") or []
        users = tuple(str(m["content"]) for m in messages if m.get("role") == "user")
        replies = [str(m["content"]) for m in messages if m.get("role") == "assistant"]
        text = "\n\n".join(str(m["content"]) for m in messages if m.get("role") in ("user", "assistant"))
        reply = _THINK.sub("", replies[-1]).strip() if replies else ""
        metadata = row.get("metadata") or {}
        found.append(AuditedRow(id=str(row.get("id") or number), text=text, opening=reply, probes=users,
                                domain=str(metadata.get("domain") or ""),
                                tokens=int(metadata.get("assistant_tokens") or estimate_tokens(text))))
    return found
