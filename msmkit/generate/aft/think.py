"""Split a response into its `<think>` reasoning and the reply; anything malformed is rejected.

A response must be exactly one `<think>...</think>` block at the start followed by a non-empty reply.
An unclosed block, a stray tag, a second block or an empty part returns a reason instead: the example
is dropped rather than leaking reasoning into the no-CoT dataset.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TAG = re.compile(r"</?\s*think\s*>", re.IGNORECASE)
_OPEN = re.compile(r"^\s*<think>", re.IGNORECASE)


@dataclass(frozen=True)
class SplitResponse:
    reasoning: str | None = None
    reply: str | None = None
    problem: str | None = None  # unclosed_think | malformed_think | missing_think | empty_reasoning | empty_reply
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.problem is None

    def with_cot(self) -> str:
        return f"<think>\n{self.reasoning}\n</think>\n\n{self.reply}"


def split_think(text: str) -> SplitResponse:
    tags = [match.group(0).replace(" ", "").lower() for match in _TAG.finditer(text)]
    if not tags:
        return SplitResponse(problem="missing_think", detail="no <think> block")
    if not _OPEN.match(text):
        return SplitResponse(problem="malformed_think", detail="the answer does not open with <think>")
    if tags == ["<think>"]:
        return SplitResponse(problem="unclosed_think", detail="<think> is never closed")
    if tags != ["<think>", "</think>"]:
        return SplitResponse(problem="malformed_think",
                             detail=f"expected one <think>...</think>, found {' '.join(tags)}")
    opening, closing = list(_TAG.finditer(text))
    reasoning, reply = text[opening.end():closing.start()].strip(), text[closing.end():].strip()
    if not reasoning:
        return SplitResponse(problem="empty_reasoning", detail="the <think> block is empty")
    if not reply:
        return SplitResponse(problem="empty_reply", detail="nothing after </think>")
    return SplitResponse(reasoning=reasoning, reply=reply)
