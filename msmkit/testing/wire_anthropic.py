"""Anthropic wire format: request parsing, the Messages JSON and the SSE event sequence the SDK reads."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from msmkit.testing.generation import Completion
from msmkit.testing.types import ScriptedRequest, estimate_tokens
from msmkit.testing.wire_openai import BadRequest, flatten, new_id

STOP_REASONS = {"end": "end_turn", "max_tokens": "max_tokens", "refusal": "refusal", "stop_sequence": "stop_sequence"}
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
               429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}


def system_text_and_cached_prefix(system: Any) -> tuple[str | None, str | None]:
    """The system prompt as text, and the prefix up to the last block marked with cache_control."""
    if system is None:
        return None, None
    if isinstance(system, str):
        return system, None
    if not isinstance(system, list):
        raise BadRequest("'system' must be a string or a list of text blocks")
    texts, cached_upto = [], 0
    for index, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise BadRequest(f"system[{index}] must be a text block {{'type': 'text', 'text': ...}}")
        texts.append(str(block.get("text", "")))
        if block.get("cache_control"):
            cached_upto = index + 1
    return "\n".join(texts), ("\n".join(texts[:cached_upto]) if cached_upto else None)


def parse_messages(body: dict[str, Any], require_max_tokens: bool = True) -> tuple[ScriptedRequest, str | None]:
    """The request, and the cacheable system prefix (None when nothing is marked with cache_control)."""
    if not body.get("model"):
        raise BadRequest("model: Field required")
    if require_max_tokens and not isinstance(body.get("max_tokens"), int):
        raise BadRequest("max_tokens: Field required (an integer)")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages: must be a non-empty list")
    turns = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise BadRequest(f"messages.{index}.role: must be 'user' or 'assistant' (system goes in 'system')")
        turns.append({"role": message["role"], "content": flatten(message.get("content"))})
    system, cached_prefix = system_text_and_cached_prefix(body.get("system"))
    stops = body.get("stop_sequences") or []
    request = ScriptedRequest(
        api="anthropic", model=body["model"], system=system, messages=turns, max_tokens=body.get("max_tokens"),
        temperature=body.get("temperature"), stop=[str(s) for s in stops], raw=body, endpoint="messages",
        stream=bool(body.get("stream")),
    )
    return request, cached_prefix


def usage(done: Completion, cache_created: int, cache_read: int) -> dict[str, Any]:
    return {
        "input_tokens": max(0, done.input_tokens - cache_created - cache_read),
        "output_tokens": done.output_tokens,
        "cache_creation_input_tokens": cache_created, "cache_read_input_tokens": cache_read,
        "cache_creation": {"ephemeral_5m_input_tokens": cache_created, "ephemeral_1h_input_tokens": 0},
        "service_tier": "standard",
    }


def message(request: ScriptedRequest, done: Completion, cache_created: int, cache_read: int,
            message_id: str | None = None) -> dict[str, Any]:
    return {
        "id": message_id or new_id("msg_"), "type": "message", "role": "assistant", "model": request.model,
        "content": [{"type": "text", "text": done.text}] if done.text or done.stop != "refusal" else [],
        "stop_reason": STOP_REASONS[done.stop], "stop_sequence": done.stop_sequence,
        "usage": usage(done, cache_created, cache_read),
    }


def event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: ".encode() + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


def message_stream(request: ScriptedRequest, done: Completion, cache_created: int, cache_read: int) -> Iterator[bytes]:
    """message_start, content_block_start, ping, text deltas, content_block_stop, message_delta, message_stop."""
    start = message(request, done, cache_created, cache_read)
    start.update(content=[], stop_reason=None, stop_sequence=None)
    start["usage"] = {**start["usage"], "output_tokens": 1}
    yield event("message_start", {"type": "message_start", "message": start})
    yield event("content_block_start", {"type": "content_block_start", "index": 0,
                                        "content_block": {"type": "text", "text": ""}})
    yield event("ping", {"type": "ping"})
    for begin in range(0, len(done.text), 24):
        yield event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                            "delta": {"type": "text_delta", "text": done.text[begin:begin + 24]}})
    yield event("content_block_stop", {"type": "content_block_stop", "index": 0})
    final_usage = usage(done, cache_created, cache_read)
    yield event("message_delta", {
        "type": "message_delta",
        "delta": {"stop_reason": STOP_REASONS[done.stop], "stop_sequence": done.stop_sequence},
        "usage": {"output_tokens": done.output_tokens, "input_tokens": final_usage["input_tokens"],
                  "cache_creation_input_tokens": cache_created, "cache_read_input_tokens": cache_read},
    })
    yield event("message_stop", {"type": "message_stop"})


def count_tokens(body: dict[str, Any]) -> dict[str, int]:
    request, _ = parse_messages(body, require_max_tokens=False)
    return {"input_tokens": max(1, estimate_tokens(request.text))}


def error_body(status: int, message_text: str) -> dict[str, Any]:
    kind = ERROR_TYPES.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message_text}}
