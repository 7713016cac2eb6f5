"""OpenAI wire format: request parsing and the JSON / SSE shapes the `openai` SDK reads."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

from msmkit.testing.generation import Completion
from msmkit.testing.types import ScriptedRequest

FINISH_REASONS = {"end": "stop", "stop_sequence": "stop", "max_tokens": "length", "refusal": "content_filter"}
ERROR_TYPES = {400: "invalid_request_error", 404: "invalid_request_error", 429: "rate_limit_exceeded",
               500: "server_error", 503: "server_error"}


class BadRequest(ValueError):
    """A request the real API would reject with 400; the message says which field and why."""


def flatten(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(part.get("text", "") for part in content if isinstance(part, dict))
    raise BadRequest(f"message content must be a string or a list of parts, got {type(content).__name__}")


def stop_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def one_choice(body: dict[str, Any]) -> None:
    if body.get("n") not in (None, 1):
        raise BadRequest("n: the test server answers one choice per request; send n separate requests")


def parse_chat(body: dict[str, Any]) -> ScriptedRequest:
    one_choice(body)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty list")
    if not body.get("model"):
        raise BadRequest("'model' is required")
    system_parts, turns = [], []
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or "role" not in message:
            raise BadRequest(f"messages[{index}] must be an object with 'role' and 'content'")
        text = flatten(message.get("content"))
        if message["role"] in ("system", "developer"):
            system_parts.append(text)
        else:
            turns.append({"role": message["role"], "content": text})
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    return ScriptedRequest(
        api="openai", model=body["model"], system="\n".join(system_parts) if system_parts else None,
        messages=turns, max_tokens=max_tokens, temperature=body.get("temperature"),
        stop=stop_list(body.get("stop")), raw=body, endpoint="chat", stream=bool(body.get("stream")),
    )


def parse_legacy(body: dict[str, Any]) -> ScriptedRequest:
    one_choice(body)
    prompt = body.get("prompt")
    if isinstance(prompt, list):
        if len(prompt) != 1 or not isinstance(prompt[0], str):
            raise BadRequest("the test server takes one text prompt per /v1/completions request")
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise BadRequest("'prompt' must be a string")
    if not body.get("model"):
        raise BadRequest("'model' is required")
    return ScriptedRequest(
        api="openai", model=body["model"], system=None, messages=[{"role": "user", "content": prompt}],
        max_tokens=body.get("max_tokens", 16), temperature=body.get("temperature"),
        stop=stop_list(body.get("stop")), raw=body, endpoint="completions", stream=bool(body.get("stream")),
    )


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:24]}"


def usage(done: Completion, cached_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": done.input_tokens, "completion_tokens": done.output_tokens,
        "total_tokens": done.input_tokens + done.output_tokens,
        "prompt_tokens_details": {"cached_tokens": cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
    }


def chat_message(done: Completion) -> dict[str, Any]:
    if done.stop == "refusal":
        return {"role": "assistant", "content": None, "refusal": done.text, "annotations": []}
    return {"role": "assistant", "content": done.text, "refusal": None, "annotations": []}


def chat_completion(request: ScriptedRequest, done: Completion, cached_tokens: int) -> dict[str, Any]:
    return {
        "id": new_id("chatcmpl-"), "object": "chat.completion", "created": int(time.time()),
        "model": request.model, "system_fingerprint": "fp_msmkit_fake", "service_tier": "default",
        "choices": [{"index": 0, "message": chat_message(done), "logprobs": None,
                     "finish_reason": FINISH_REASONS[done.stop]}],
        "usage": usage(done, cached_tokens),
    }


def legacy_completion(request: ScriptedRequest, done: Completion) -> dict[str, Any]:
    return {
        "id": new_id("cmpl-"), "object": "text_completion", "created": int(time.time()), "model": request.model,
        "system_fingerprint": "fp_msmkit_fake",
        "choices": [{"index": 0, "text": done.text, "logprobs": None, "finish_reason": FINISH_REASONS[done.stop]}],
        "usage": usage(done, 0),
    }


def pieces(text: str, size: int = 24) -> Iterator[str]:
    for start in range(0, len(text), size):
        yield text[start:start + size]


def sse(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


def chat_stream(request: ScriptedRequest, done: Completion, cached_tokens: int) -> Iterator[bytes]:
    """Chunks as the API streams them: role first, text deltas, the finish chunk, then optional usage."""
    include_usage = bool((request.raw.get("stream_options") or {}).get("include_usage"))
    base = {"id": new_id("chatcmpl-"), "object": "chat.completion.chunk", "created": int(time.time()),
            "model": request.model, "system_fingerprint": "fp_msmkit_fake"}
    extra = {"usage": None} if include_usage else {}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return sse({**base, "choices": [choice], **extra})

    yield chunk({"role": "assistant", "content": "", "refusal": None})
    field_name = "refusal" if done.stop == "refusal" else "content"
    for piece in pieces(done.text):
        yield chunk({field_name: piece})
    yield chunk({}, FINISH_REASONS[done.stop])
    if include_usage:
        yield sse({**base, "choices": [], "usage": usage(done, cached_tokens)})
    yield b"data: [DONE]\n\n"


def legacy_stream(request: ScriptedRequest, done: Completion) -> Iterator[bytes]:
    include_usage = bool((request.raw.get("stream_options") or {}).get("include_usage"))
    base = {"id": new_id("cmpl-"), "object": "text_completion", "created": int(time.time()), "model": request.model}
    extra = {"usage": None} if include_usage else {}
    for piece in pieces(done.text):
        yield sse({**base, "choices": [{"index": 0, "text": piece, "logprobs": None, "finish_reason": None}], **extra})
    yield sse({**base, "choices": [{"index": 0, "text": "", "logprobs": None,
                                    "finish_reason": FINISH_REASONS[done.stop]}], **extra})
    if include_usage:
        yield sse({**base, "choices": [], "usage": usage(done, 0)})
    yield b"data: [DONE]\n\n"


def error_body(status: int, message: str, code: str | None = None) -> dict[str, Any]:
    kind = ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": code or kind}}


def models_list(models: list[str]) -> dict[str, Any]:
    """One listing both SDKs can read (OpenAI's `object`/`owned_by`, Anthropic's `type`/`display_name`)."""
    created = int(time.time())
    data = [{"id": m, "object": "model", "created": created, "owned_by": "msmkit-test-server",
             "type": "model", "display_name": m, "created_at": "2026-01-01T00:00:00Z"} for m in models]
    return {"object": "list", "data": data, "has_more": False,
            "first_id": models[0] if models else None, "last_id": models[-1] if models else None}
