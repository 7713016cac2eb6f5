"""From a responder's reply to the answer the server sends: stop sequences, truncation, content faults,
token counts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from msmkit.testing.types import Fault, Reply, ScriptedRequest, StopKind, estimate_tokens

Responder = Callable[[ScriptedRequest], "Reply | str"]
REFUSAL_TEXT = "I can't help with that request."


@dataclass(frozen=True)
class Completion:
    text: str
    stop: StopKind
    stop_sequence: str | None
    input_tokens: int
    output_tokens: int


def as_reply(value: object) -> Reply:
    if isinstance(value, Reply):
        return value
    if isinstance(value, str):
        return Reply(value)
    raise TypeError(f"a responder must return Reply or str, got {type(value).__name__}")


def break_json(text: str) -> str:
    """Deterministically broken JSON: the object loses its closing brace and gains a dangling comma."""
    end = text.rfind("}")
    if text.find("{") != -1 and end != -1:
        return text[:end].rstrip() + ","
    return '{"answer": "' + text.replace('"', "'")[:80] + '",'


def apply_content_fault(reply: Reply, fault: Fault | None) -> Reply:
    if fault is Fault.TRUNCATED:
        return Reply(reply.text, "max_tokens", reply.input_tokens, None)
    if fault is Fault.MALFORMED_JSON:
        return Reply(break_json(reply.text), reply.stop, reply.input_tokens, None)
    if fault is Fault.REFUSAL:
        return Reply(REFUSAL_TEXT, "refusal", reply.input_tokens, None)
    return reply


def finish(request: ScriptedRequest, reply: Reply) -> Completion:
    """Apply the request's stop sequences and token budget the way a real server would report them."""
    text, stop, matched = reply.text, reply.stop, None
    if stop in ("end", "stop_sequence") and request.stop:
        hits = [(text.find(s), s) for s in request.stop if s and s in text]
        if hits:
            position, matched = min(hits)
            text, stop = text[:position], "stop_sequence"
    if stop == "stop_sequence" and matched is None and request.stop:
        matched = request.stop[0]
    output_tokens = reply.output_tokens
    if stop == "max_tokens" and request.max_tokens is not None:
        text = text[: request.max_tokens * 4]
        if output_tokens is None:
            output_tokens = request.max_tokens  # a truncated answer used its whole budget
    input_tokens = reply.input_tokens if reply.input_tokens is not None else max(1, estimate_tokens(request.text))
    if output_tokens is None:
        output_tokens = estimate_tokens(text)
    return Completion(text, stop, matched, input_tokens, output_tokens)
