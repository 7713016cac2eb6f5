"""OpenAI and OpenAI-compatible servers (vLLM, llama.cpp server, ...) through the official SDK."""

from __future__ import annotations

from typing import Any, Callable

import openai

from msmkit.llm.backend import PermanentLLMError, RawCompletion
from msmkit.llm.errors_map import map_sdk_error
from msmkit.llm.failures import FailureKind
from msmkit.llm.types import LLMConfig, LLMRequest, StopReason, Usage
from msmkit.secrets import get_secret

_FINISH_REASONS = {
    "stop": StopReason.END,
    "length": StopReason.MAX_TOKENS,
    "content_filter": StopReason.REFUSAL,
    "tool_calls": StopReason.END,
}


def openai_messages(request: LLMRequest) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": request.system}] if request.system else []
    messages += [{"role": m.role, "content": m.content} for m in request.messages]
    return messages


def chat_body(request: LLMRequest, model: str) -> dict[str, Any]:
    """The chat-completions request body (also used for Batch API lines)."""
    body: dict[str, Any] = {
        "model": model,
        "messages": openai_messages(request),
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
    }
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop:
        body["stop"] = list(request.stop)
    return body


def finish_reason(choice: dict[str, Any]) -> str:
    """The normalised stop reason of a choice. vLLM answers finish_reason "stop" both at end of sequence and at a
    stop string, and names the string it stopped at in `stop_reason` (an int there is a stop token id)."""
    reason = _FINISH_REASONS.get(choice.get("finish_reason") or "stop", StopReason.END)
    if reason == StopReason.END and isinstance(choice.get("stop_reason"), str):
        return StopReason.STOP_SEQUENCE
    return reason


def parse_chat_completion(data: dict[str, Any], fallback_model: str) -> RawCompletion:
    choice = data["choices"][0]
    message = choice.get("message") or {}
    stop = finish_reason(choice)
    if message.get("refusal"):
        stop = StopReason.REFUSAL
    usage = data.get("usage") or {}
    cached = ((usage.get("prompt_tokens_details") or {}).get("cached_tokens")) or 0
    return RawCompletion(
        text=message.get("content") or message.get("refusal") or "",
        stop_reason=stop,
        usage=Usage(
            input_tokens=(usage.get("prompt_tokens") or 0) - cached,
            output_tokens=usage.get("completion_tokens") or 0,
            cache_read_tokens=cached,
        ),
        model=data.get("model") or fallback_model,
    )


class OpenAIBackend:
    """`extra_body(request)` adds server-specific fields to every request body (vLLM's sampling extras)."""

    def __init__(self, config: LLMConfig, *, extra_body: Callable[[LLMRequest], dict[str, Any]] | None = None) -> None:
        self.provider = config.provider
        self.model = config.model
        self.config = config
        self.extra_body = extra_body
        key_env = config.api_key_env or ("OPENAI_API_KEY" if config.provider == "openai" else None)
        api_key = get_secret(key_env) if key_env else None
        if api_key is None:
            if config.provider == "openai":
                raise PermanentLLMError(
                    f"no API key: set the environment variable {key_env} (or point `api_key_env` at another)",
                    FailureKind.NO_API_KEY)
            api_key = "not-needed"  # local OpenAI-compatible servers usually accept any key
        if config.provider == "openai_compatible" and not config.base_url:
            raise PermanentLLMError("unusable LLM config: provider openai_compatible needs `base_url`, e.g. "
                                    "http://127.0.0.1:8000/v1", FailureKind.CONFIG)
        # aiohttp transport: httpx's connection pool costs O(connections) CPU per request at high concurrency.
        self.client = openai.AsyncOpenAI(
            api_key=api_key, base_url=config.base_url, timeout=config.timeout_s, max_retries=0,
            http_client=openai.DefaultAioHttpClient(timeout=config.timeout_s),
        )

    async def complete(self, request: LLMRequest) -> RawCompletion:
        if self.config.is_base_model:
            return await self._complete_text(request)
        try:
            # The SDK's raw `post` (its documented way to call any endpoint) skips per-call type
            # transforms and response model construction: ~1 ms CPU per request at high concurrency.
            body = chat_body(request, self.model)
            if self.extra_body is not None:
                body.update(self.extra_body(request))
            data = await self.client.post("/chat/completions", body=body, cast_to=object)
        except Exception as exc:  # SDK errors and unwrapped transport errors
            raise map_sdk_error(exc, openai, timeout_s=self.config.timeout_s) from exc
        return parse_chat_completion(data, self.model)

    async def _complete_text(self, request: LLMRequest) -> RawCompletion:
        """Base models behind vLLM/llama.cpp: legacy completions with a completion-style prompt."""
        from msmkit.llm.completion_style import render_completion_prompt

        kwargs: dict[str, Any] = {
            "model": self.model,
            "prompt": render_completion_prompt(request),
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if request.top_p is not None:
            kwargs["top_p"] = request.top_p
        if request.stop:
            kwargs["stop"] = list(request.stop)
        if self.extra_body is not None:
            kwargs["extra_body"] = self.extra_body(request)
        try:
            response = await self.client.completions.create(**kwargs)
        except Exception as exc:  # SDK errors and unwrapped transport errors
            raise map_sdk_error(exc, openai, timeout_s=self.config.timeout_s) from exc
        choice = response.choices[0]
        usage = response.usage
        return RawCompletion(
            text=choice.text,
            stop_reason=finish_reason({"finish_reason": choice.finish_reason,
                                       "stop_reason": getattr(choice, "stop_reason", None)}),
            usage=Usage(input_tokens=usage.prompt_tokens if usage else 0,
                        output_tokens=usage.completion_tokens if usage else 0),
            model=response.model or self.model,
        )

    async def aclose(self) -> None:
        await self.client.close()
