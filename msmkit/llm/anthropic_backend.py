"""Anthropic through the official SDK, with prompt caching of the long (spec) system prefix."""

from __future__ import annotations

from typing import Any

import anthropic

from msmkit.llm.backend import PermanentLLMError, RawCompletion
from msmkit.llm.errors_map import map_sdk_error
from msmkit.llm.failures import FailureKind
from msmkit.llm.types import LLMConfig, LLMRequest, StopReason, Usage
from msmkit.secrets import get_secret

_STOP_REASONS = {
    "end_turn": StopReason.END,
    "max_tokens": StopReason.MAX_TOKENS,
    "stop_sequence": StopReason.STOP_SEQUENCE,
    "refusal": StopReason.REFUSAL,
    "pause_turn": StopReason.END,
    "tool_use": StopReason.END,
}
# The SDK refuses non-streaming calls it expects to run past ~10 minutes; stream large budgets.
STREAM_ABOVE_MAX_TOKENS = 8192


def messages_body(request: LLMRequest, model: str) -> dict[str, Any]:
    """The Messages API body (also used for Message Batches). The system prefix is marked cacheable.

    The Messages API of SDK 2.x takes no sampling parameters (temperature, top_p): the model samples
    at its own settings, so those request fields only distinguish cache entries for Anthropic.
    """
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": request.max_tokens,
        "messages": [{"role": m.role, "content": m.content} for m in request.messages if m.role != "system"],
    }
    system_parts = [m.content for m in request.messages if m.role == "system"]
    system = "\n\n".join(([request.system] if request.system else []) + system_parts)
    if system:
        body["system"] = [{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}]
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    return body


def parse_message(data: dict[str, Any], fallback_model: str) -> RawCompletion:
    text = "".join(block.get("text", "") for block in data.get("content") or [] if block.get("type") == "text")
    usage = data.get("usage") or {}
    return RawCompletion(
        text=text,
        stop_reason=_STOP_REASONS.get(data.get("stop_reason") or "end_turn", StopReason.END),
        usage=Usage(
            input_tokens=usage.get("input_tokens") or 0,
            output_tokens=usage.get("output_tokens") or 0,
            cache_read_tokens=usage.get("cache_read_input_tokens") or 0,
            cache_write_tokens=usage.get("cache_creation_input_tokens") or 0,
        ),
        model=data.get("model") or fallback_model,
    )


class AnthropicBackend:
    def __init__(self, config: LLMConfig) -> None:
        self.provider = "anthropic"
        self.model = config.model
        self.timeout_s = config.timeout_s
        key_env = config.api_key_env or "ANTHROPIC_API_KEY"
        api_key = get_secret(key_env)
        if api_key is None:
            raise PermanentLLMError(f"no API key: set the environment variable {key_env}", FailureKind.NO_API_KEY)
        # aiohttp transport: httpx's connection pool costs O(connections) CPU per request at high concurrency.
        self.client = anthropic.AsyncAnthropic(
            api_key=api_key, base_url=config.base_url, timeout=config.timeout_s, max_retries=0,
            http_client=anthropic.DefaultAioHttpClient(timeout=config.timeout_s),
        )

    async def complete(self, request: LLMRequest) -> RawCompletion:
        body = messages_body(request, self.model)
        try:
            if request.max_tokens > STREAM_ABOVE_MAX_TOKENS:
                async with self.client.messages.stream(**body) as stream:
                    message = await stream.get_final_message()
                return parse_message(message.model_dump(), self.model)
            # Raw `post` skips the SDK's per-call type transforms (see the OpenAI backend).
            data = await self.client.post("/v1/messages", body=body, cast_to=object)
        except Exception as exc:  # SDK errors and unwrapped transport errors
            raise map_sdk_error(exc, anthropic, timeout_s=self.timeout_s) from exc
        return parse_message(data, self.model)

    async def aclose(self) -> None:
        await self.client.close()
