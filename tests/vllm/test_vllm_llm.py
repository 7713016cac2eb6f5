"""The LLM layer against a real vLLM server: both prompt modes, stop reasons and token counts, truncation, the
context window, structured answers, the response cache and answer identity, adapters."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
from pydantic import BaseModel
from transformers import AutoTokenizer

from msmkit.llm.client import LLMCallFailed, LLMClient
from msmkit.llm.completion_style import render_completion_prompt
from msmkit.llm.failures import FailureKind
from msmkit.llm.types import ChatMessage, LLMConfig, LLMRequest, LLMResponse, StopReason, identity_digest
from tests.vllm.conftest import VLLMTestServer

pytestmark = pytest.mark.vllm


def ask(config: LLMConfig, *requests: LLMRequest) -> list[LLMResponse | LLMCallFailed]:
    async def run() -> list[LLMResponse | LLMCallFailed]:
        async with LLMClient(config) as client:
            return await client.complete_many(list(requests))
    return asyncio.run(run())


def answered(result: LLMResponse | LLMCallFailed) -> LLMResponse:
    assert isinstance(result, LLMResponse), result
    return result


def test_completion_mode_counts_tokens_like_the_tokenizer_and_names_each_stop(vllm_server: VLLMTestServer,
                                                                              tmp_path: Path) -> None:
    config = vllm_server.config(base_model=True, cache_path=str(tmp_path / "cache.sqlite"))
    counting = LLMRequest.of("1, 2, 3, 4,", max_tokens=24, temperature=0.0, stop=(" 8",))
    cut = LLMRequest.of("The history of cheese making", max_tokens=3, temperature=0.0)
    stopped, truncated = (answered(r) for r in ask(config, counting, cut))
    tokenizer = AutoTokenizer.from_pretrained(vllm_server.model_dir)
    assert stopped.usage.input_tokens == len(tokenizer(render_completion_prompt(counting))["input_ids"])
    assert stopped.stop_reason == StopReason.STOP_SEQUENCE and " 8" not in stopped.text
    assert stopped.text.startswith(" 5, 6, 7,")  # greedy: the model counts on, and stops before " 8"
    assert truncated.truncated and truncated.usage.output_tokens == 3 and truncated.text
    assert stopped.cost_usd == truncated.cost_usd == 0.0


def test_chat_mode_prompts_with_the_served_folders_own_template(vllm_server: VLLMTestServer, tmp_path: Path) -> None:
    config = vllm_server.config(cache_path=str(tmp_path / "cache.sqlite"))
    assert config.prompt_mode == "chat"
    request = LLMRequest.of("Name one cheese.", system="You answer in one word.", max_tokens=8, temperature=0.0)
    response = answered(ask(config, request)[0])
    tokenizer = AutoTokenizer.from_pretrained(vllm_server.model_dir)
    prompt = tokenizer.apply_chat_template([{"role": "system", "content": request.system},
                                            {"role": "user", "content": "Name one cheese."}],
                                           tokenize=False, add_generation_prompt=True)
    assert response.usage.input_tokens == len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    assert response.stop_reason in (StopReason.END, StopReason.MAX_TOKENS) and response.usage.output_tokens <= 8
    # A final assistant turn is continued (as the local backend does), not followed by a new "model" turn.
    turns = [{"role": "user", "content": "Count to five."}, {"role": "assistant", "content": "1, 2,"}]
    prefilled = LLMRequest(messages=tuple(ChatMessage(**turn) for turn in turns), max_tokens=4, temperature=0.0)
    continued = answered(ask(config, prefilled)[0])
    expected = tokenizer.apply_chat_template(turns, tokenize=False, continue_final_message=True)
    assert continued.usage.input_tokens == len(tokenizer(expected, add_special_tokens=False)["input_ids"])


def test_the_context_window_refuses_long_prompts_and_caps_long_answers(vllm_server: VLLMTestServer,
                                                                        tmp_path: Path) -> None:
    config = vllm_server.config(base_model=True, cache_path=str(tmp_path / "cache.sqlite"))
    window = config.vllm.max_model_len
    too_long = LLMRequest.of("cheese " * (window + 100), max_tokens=8, temperature=0.0)
    nearly_full = LLMRequest.of("cheese " * (window - 60), max_tokens=200, temperature=0.0)
    refused, capped = ask(config, too_long, nearly_full)
    assert isinstance(refused, LLMCallFailed) and refused.attempts == 1  # permanent: never retried
    assert refused.cause.kind is FailureKind.CONTEXT_WINDOW and refused.cause.status == 400
    assert "maximum context length is 8192" in refused.cause.message and "max_model_len" in refused.cause.message
    # vLLM shortens max_tokens to what fits and says "length": msmkit reports the answer as truncated.
    capped = answered(capped)
    assert capped.truncated and 0 < capped.usage.output_tokens < 200
    assert capped.usage.input_tokens + capped.usage.output_tokens == window


class City(BaseModel):
    city: str
    country: str


def test_structured_answers_are_decoded_to_their_schema(vllm_server: VLLMTestServer,
                                                                          tmp_path: Path) -> None:
    config = vllm_server.config(base_model=True, cache_path=str(tmp_path / "cache.sqlite"))
    prompt = ('{"city": "Paris", "country": "France"}\n{"city": "Rome", "country": "Italy"}\n'
              '{"city": "Madrid", "country": "Spain"}\n')

    async def run():
        async with LLMClient(config) as client:
            return await client.complete_json(LLMRequest.of(prompt, max_tokens=24, temperature=0.0, stop=("\n",)),
                                              City)
    result = asyncio.run(run())
    assert result.ok, result.error
    assert result.value.city and result.value.country and len(result.responses) == 1
    # Decoded to the schema, the answer is the JSON object and ends with it: the grammar, not the stop string, ends it.
    assert json.loads(result.response.text) == result.value.model_dump()
    assert result.response.stop_reason == StopReason.END


def test_the_cache_answers_repeats_and_the_identity_is_the_weights(vllm_server: VLLMTestServer,
                                                                   tmp_path: Path) -> None:
    cache = str(tmp_path / "cache.sqlite")
    config = vllm_server.config(base_model=True, cache_path=cache)
    request = LLMRequest.of("Cheddar is a cheese from", max_tokens=12, temperature=1.0)
    before = vllm_server.finished_requests()
    first = answered(ask(config, request)[0])
    again = answered(ask(config, request)[0])
    assert vllm_server.finished_requests() - before == 1
    assert again.cached and not first.cached and again.text == first.text
    # The same weights in another folder answer from the same cache entries; the adapter's weights do not.
    copy = tmp_path / "copy"
    shutil.copytree(vllm_server.model_dir, copy, symlinks=True)
    assert identity_digest(config.model_copy(update={"model": str(copy)}).answer_identity()) == \
        identity_digest(config.answer_identity())
    adapter = config.model_copy(update={"model": str(vllm_server.adapter_dir)})
    assert adapter.answer_identity()["weights"]["base"] == config.answer_identity()["weights"]["base"]
    assert adapter.answer_identity()["weights"]["adapter"] is not None
    # What changes the served weights or the window changes the identity; how the server runs does not.
    settings = config.vllm
    assert config.model_copy(update={"vllm": settings.model_copy(update={"dtype": "float32"})}).answer_identity() != \
        config.answer_identity()
    assert config.model_copy(update={"vllm": settings.model_copy(update={"gpu_memory_utilization": 0.5,
                                                                          "port": 8123})}).answer_identity() == \
        config.answer_identity()


def test_an_adapter_is_served_by_the_running_server_and_changes_the_answer(vllm_server: VLLMTestServer,
                                                                             tmp_path: Path) -> None:
    request = LLMRequest.of("My favourite cheese is", max_tokens=16, temperature=0.0)
    base = vllm_server.config(base_model=True, cache_path=str(tmp_path / "a.sqlite"))
    adapted = vllm_server.config(base_model=True, model=str(vllm_server.adapter_dir),
                                 cache_path=str(tmp_path / "b.sqlite"))

    async def run(config: LLMConfig) -> tuple[LLMResponse, str | None]:
        async with LLMClient(config) as client:
            response = await client.complete(request)
            return response, (await client.backend()).base_url
    (plain, plain_url), (lora, lora_url) = asyncio.run(run(base)), asyncio.run(run(adapted))
    assert plain_url == lora_url == vllm_server.base_url  # no second server was started
    assert lora.model == vllm_server.adapter_dir.name and plain.model == vllm_server.model_name
    assert lora.text != plain.text
