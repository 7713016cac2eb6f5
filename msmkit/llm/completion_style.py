"""Render a chat request as a plain text prefix for base models (no chat template).

Stages that target base models write their prompts as document prefixes already (a base model
continues text), so a single user turn is passed through unchanged after the system text. Longer
conversations become a labelled transcript ending with an open assistant turn.
"""

from __future__ import annotations

from msmkit.llm.types import LLMRequest

_LABELS = {"user": "User", "assistant": "Assistant", "system": "System"}


def render_completion_prompt(request: LLMRequest) -> str:
    parts = [request.system.strip()] if request.system else []
    turns = list(request.messages)
    if len(turns) == 1 and turns[0].role == "user":
        parts.append(turns[0].content)
        return "\n\n".join(parts)
    for message in turns:
        parts.append(f"{_LABELS[message.role]}: {message.content.strip()}")
    if not turns or turns[-1].role != "assistant":
        parts.append("Assistant:")
    return "\n\n".join(parts)
