"""The in-process local backend on tiny random models: stop reasons, usage, seeding, micro-batching, prompts."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from pathlib import Path

import pytest
import torch

from msmkit.llm.backend import PermanentLLMError
from msmkit.llm.client import LLMClient
from msmkit.llm.completion_style import render_completion_prompt
from msmkit.llm.local import LocalBackend, render_prompt
from msmkit.llm.types import ChatMessage, LLMConfig, LLMRequest, StopReason
from msmkit.models.loading import load_causal_lm
from msmkit.models.tiny import build_tiny_model, tiny_model_dir

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<start_of_turn>{{ m.role }}\n{{ m.content }}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>assistant\n{% endif %}"
)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model_dir(tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture(scope="module")
def tokenizer(tiny_dir: Path):
    return load_causal_lm(str(tiny_dir))[1]


def config_for(model: Path, **overrides: object) -> LLMConfig:
    fields = {"provider": "local", "model": str(model), "base_model": True, "local_batch_size": 8, **overrides}
    return LLMConfig(**fields)  # type: ignore[arg-type]


async def run_all(backend: LocalBackend, requests: list[LLMRequest]) -> list:
    try:
        return await asyncio.gather(*(backend.complete(r) for r in requests))
    finally:
        await backend.aclose()


def complete(config: LLMConfig, *requests: LLMRequest) -> list:
    return asyncio.run(run_all(LocalBackend(config), list(requests)))


def test_max_tokens_is_reported_with_real_usage(tiny_dir: Path, tokenizer) -> None:
    request = LLMRequest.of("The spec explains the reasons behind each rule.", system="A memo.",
                            max_tokens=7, temperature=0)
    [out] = complete(config_for(tiny_dir), request)
    assert out.stop_reason == StopReason.MAX_TOKENS
    assert out.usage.output_tokens == 7
    assert out.usage.input_tokens == len(tokenizer(render_completion_prompt(request)).input_ids)
    assert out.text == tokenizer.decode(tokenizer(out.text, add_special_tokens=False).input_ids)
    assert out.model == str(tiny_dir)


def test_end_of_sequence_stops_early(tiny_dir: Path, tmp_path: Path) -> None:
    request = LLMRequest.of("Once upon a time", max_tokens=5, temperature=0)
    [probe] = complete(config_for(tiny_dir), request)
    _, tokenizer = load_causal_lm(str(tiny_dir))
    first_token = tokenizer(probe.text, add_special_tokens=False).input_ids[0]
    # Same weights, but the token the model picks first now also ends a sequence.
    model = shutil.copytree(tiny_dir, tmp_path / "eos-model")
    generation = json.loads((model / "generation_config.json").read_text())
    generation["eos_token_id"] = [tokenizer.eos_token_id, first_token]
    (model / "generation_config.json").write_text(json.dumps(generation))

    [out] = complete(config_for(model), request)
    assert out.stop_reason == StopReason.END
    assert out.text == "" and out.usage.output_tokens == 1


def test_stop_strings_cut_the_text(tiny_dir: Path) -> None:
    free = LLMRequest.of("Research notes, day 3:", max_tokens=24, temperature=0)
    [full] = complete(config_for(tiny_dir), free)
    stop = full.text[6:9]
    assert len(stop) == 3 and stop.strip(), full.text
    cut = full.text.find(stop)

    [out] = complete(config_for(tiny_dir), free.model_copy(update={"stop": ("never appears", stop)}))
    assert out.stop_reason == StopReason.STOP_SEQUENCE
    assert out.text == full.text[:cut]
    assert out.usage.output_tokens < 24  # generation stopped once the stop string appeared


def test_same_request_same_sample_and_sample_index_varies(tiny_dir: Path) -> None:
    request = LLMRequest.of("Write a forum post about option order bias.", max_tokens=16, temperature=1.0,
                            top_p=0.95)
    first = complete(config_for(tiny_dir), request, request.model_copy(update={"sample_index": 1}))
    again = complete(config_for(tiny_dir), request)
    assert first[0].text == again[0].text  # fresh backend, same seed from the cache key
    assert first[0].text != first[1].text


def test_a_sample_does_not_depend_on_its_batch(tiny_dir: Path) -> None:
    request = LLMRequest.of("A case study:", max_tokens=12, temperature=0.8)
    # Greedy neighbours: their lengths do not depend on seeds (which come from the tmp model path).
    others = [LLMRequest.of(f"Another, much longer prompt number {i} about training runs and seeds.",
                            max_tokens=3 + i, temperature=0) for i in range(5)]
    [alone] = complete(config_for(tiny_dir), request)
    batched = complete(config_for(tiny_dir), *others, request)
    assert batched[-1].text == alone.text
    assert batched[-1].usage == alone.usage
    assert [o.usage.output_tokens for o in batched[:-1]] == [3, 4, 5, 6, 7]


def test_concurrent_requests_are_micro_batched(tiny_dir: Path) -> None:
    backend = LocalBackend(config_for(tiny_dir, local_batch_size=8))
    requests = [LLMRequest.of(f"Document {i}:", max_tokens=4, temperature=0) for i in range(19)]
    outs = asyncio.run(run_all(backend, requests))
    assert backend.stats.batch_sizes == [8, 8, 3]
    assert all(o.usage.output_tokens == 4 for o in outs)
    assert backend.stats.generated_tokens == 19 * 4


def test_requests_arriving_during_a_batch_form_the_next_batch(tiny_dir: Path) -> None:
    backend = LocalBackend(config_for(tiny_dir, local_batch_size=4))

    async def scenario() -> None:
        first = asyncio.create_task(backend.complete(LLMRequest.of("first", max_tokens=4)))
        while not backend.stats.batch_sizes:  # the first batch is generating in its worker thread
            await asyncio.sleep(0.005)
        later = [backend.complete(LLMRequest.of(f"later {i}", max_tokens=2)) for i in range(6)]
        await asyncio.gather(first, *later)
        await backend.aclose()

    asyncio.run(scenario())
    assert backend.stats.batch_sizes == [1, 4, 2]


def test_client_batches_local_requests_and_charges_nothing(tiny_dir: Path, tmp_path: Path) -> None:
    config = config_for(tiny_dir, cache_path=str(tmp_path / "cache.sqlite"), local_batch_size=4)

    async def scenario() -> tuple[list, list, LocalBackend]:
        async with LLMClient(config) as client:
            requests = [LLMRequest.of(f"Idea {i}:", max_tokens=3, temperature=0) for i in range(8)]
            first = await client.complete_many(requests)
            backend = await client.backend()
            second = await client.complete_many(requests)
            return first, second, backend

    first, second, backend = asyncio.run(scenario())
    assert backend.stats.batch_sizes == [4, 4]
    assert all(r.cost_usd == 0 and not r.cached and r.usage.output_tokens == 3 for r in first)
    assert all(r.cached for r in second) and [r.text for r in second] == [r.text for r in first]


def test_long_prompts_are_cut_from_the_left_or_refused(tiny_dir: Path, tokenizer,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    long_text = " ".join(f"word{i}" for i in range(200))
    config = config_for(tiny_dir, context_window=64)
    with caplog.at_level(logging.WARNING, logger="msmkit.llm.local"):
        [out] = complete(config, LLMRequest.of(long_text, max_tokens=8, temperature=0))
    assert out.usage.input_tokens == 64 - 8
    assert "dropped its first" in caplog.text

    with pytest.raises(PermanentLLMError, match="no room for a prompt"):
        complete(config, LLMRequest.of("short", max_tokens=64))


def test_one_bad_request_does_not_fail_its_batch(tiny_dir: Path) -> None:
    async def scenario() -> list:
        backend = LocalBackend(config_for(tiny_dir, context_window=64))
        try:
            return await asyncio.gather(backend.complete(LLMRequest.of("fine", max_tokens=2, temperature=0)),
                                        backend.complete(LLMRequest.of("too long", max_tokens=100)),
                                        return_exceptions=True)
        finally:
            await backend.aclose()

    ok, bad = asyncio.run(scenario())
    assert ok.usage.output_tokens == 2
    assert isinstance(bad, PermanentLLMError)


def test_missing_model_fails_every_request_clearly(tmp_path: Path) -> None:
    config = config_for(tmp_path / "nothing-here")
    async def scenario() -> list:
        backend = LocalBackend(config)
        try:
            return await asyncio.gather(*(backend.complete(LLMRequest.of("x")) for _ in range(3)),
                                        return_exceptions=True)
        finally:
            await backend.aclose()

    errors = asyncio.run(scenario())
    assert all(isinstance(e, PermanentLLMError) and "never downloads" in str(e) for e in errors)


def test_completion_style_rendering_for_base_models(tokenizer) -> None:
    single = LLMRequest.of("Title: Why oversight matters\n\n", system="An essay collection.")
    text, add_bos = render_prompt(single, tokenizer, base_model=True)
    assert add_bos and text == "An essay collection.\n\nTitle: Why oversight matters\n\n"
    dialogue = LLMRequest(messages=(ChatMessage(role="user", content="Cheese?"),
                                    ChatMessage(role="assistant", content="Cream cheese."),
                                    ChatMessage(role="user", content="Why?")))
    text, _ = render_prompt(dialogue, tokenizer, base_model=True)
    assert text == "User: Cheese?\n\nAssistant: Cream cheese.\n\nUser: Why?\n\nAssistant:"


def test_chat_models_use_their_template(tmp_path: Path) -> None:
    chat_dir = build_tiny_model(tmp_path / "chat", chat_template=CHAT_TEMPLATE)
    _, tokenizer = load_causal_lm(str(chat_dir))
    request = LLMRequest.of("Hello", system="Be brief.", max_tokens=3, temperature=0)
    text, add_bos = render_prompt(request, tokenizer, base_model=False)
    assert not add_bos
    assert text == ("<bos><start_of_turn>system\nBe brief.<end_of_turn>\n<start_of_turn>user\nHello<end_of_turn>\n"
                    "<start_of_turn>assistant\n")
    [out] = complete(config_for(chat_dir, base_model=False), request)
    assert out.usage.input_tokens == len(tokenizer(text, add_special_tokens=False).input_ids)

    plain = build_tiny_model(tmp_path / "plain")
    with pytest.raises(PermanentLLMError, match="base_model: true"):
        complete(config_for(plain, base_model=False), request)


def test_sampling_draws_follow_the_distribution_and_nucleus() -> None:
    from msmkit.llm.local import _sample

    n = 1000
    draws = (torch.arange(n) + 0.5) / n  # evenly spread draws: counts are exactly the probabilities
    probs = torch.tensor([0.5, 0.3, 0.2, 0.0]).repeat(n, 1)
    assert torch.bincount(_sample(probs, draws, torch.ones(n)), minlength=4).tolist() == [500, 300, 200, 0]
    # top_p keeps the smallest set of likeliest tokens reaching the mass, renormalised: 0.5/0.8, 0.3/0.8
    assert torch.bincount(_sample(probs, draws, torch.full((n,), 0.7)), minlength=4).tolist() == [625, 375, 0, 0]
    assert torch.bincount(_sample(probs, draws, torch.full((n,), 0.5)), minlength=4).tolist() == [1000, 0, 0, 0]
    # a nucleus wider than the first top-k window (flat distribution over a large vocabulary)
    flat = torch.full((2, 5000), 1 / 5000)
    picks = _sample(flat, torch.tensor([0.0, 0.999]), torch.tensor([0.9, 0.9]))
    assert picks.unique().numel() == 2


def test_closing_mid_batch_fails_every_waiting_caller(tiny_dir: Path) -> None:
    async def scenario() -> list:
        backend = LocalBackend(config_for(tiny_dir, local_batch_size=2))
        calls = [asyncio.create_task(backend.complete(LLMRequest.of(f"Draft {i}:", max_tokens=400, temperature=0)))
                 for i in range(4)]
        while not backend.stats.batch_sizes:  # the first batch is generating
            await asyncio.sleep(0.005)
        await backend.aclose()
        return await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), timeout=60)

    results = asyncio.run(scenario())
    assert all(isinstance(r, PermanentLLMError) and "closed" in str(r) for r in results)


def test_corrupt_weights_fail_requests_instead_of_hanging(tiny_dir: Path, tmp_path: Path) -> None:
    broken = shutil.copytree(tiny_dir, tmp_path / "broken")
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(PermanentLLMError, match="cannot load"):
        complete(config_for(broken), LLMRequest.of("x"), LLMRequest.of("y"))
