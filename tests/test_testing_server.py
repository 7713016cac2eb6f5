"""The test server through the real openai and anthropic SDKs: wire formats, streaming, stop reasons,
prompt-cache accounting, concurrency."""

from __future__ import annotations

import asyncio
import hashlib
import json

import anthropic
import httpx
import openai
import pytest

from msmkit.testing import FakeLLMServer, Reply, ScriptedRequest, ScriptedResponder

KEY = "test-key"


def echo(req: ScriptedRequest) -> str:
    return f"echo: {req.last_user}"


@pytest.fixture()
def server():
    with FakeLLMServer(echo) as fake:
        yield fake


def oai(server: FakeLLMServer) -> openai.OpenAI:
    return openai.OpenAI(api_key=KEY, base_url=server.openai_base_url, max_retries=0)


def claude(server: FakeLLMServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=KEY, base_url=server.anthropic_base_url, max_retries=0)


def test_chat_completion_answers_and_the_responder_sees_the_request(server) -> None:
    response = oai(server).chat.completions.create(
        model="gpt-x", max_tokens=77, temperature=0.3, stop=["###"],
        messages=[{"role": "system", "content": "be brief"},
                  {"role": "user", "content": [{"type": "text", "text": "part one"}, {"type": "text", "text": "two"}]},
                  {"role": "assistant", "content": "ok"}, {"role": "user", "content": "hello"}])
    assert response.choices[0].message.content == "echo: hello"
    assert response.choices[0].finish_reason == "stop" and response.model == "gpt-x"
    assert response.usage.completion_tokens == len("echo: hello") // 4 + 1
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens
    seen = server.requests[-1]
    assert (seen.api, seen.endpoint, seen.model, seen.system) == ("openai", "chat", "gpt-x", "be brief")
    assert seen.messages == [{"role": "user", "content": "part one\ntwo"}, {"role": "assistant", "content": "ok"},
                             {"role": "user", "content": "hello"}]
    assert (seen.max_tokens, seen.temperature, seen.stop) == (77, 0.3, ["###"])
    expected_key = hashlib.sha256(b"be brief\x00user\x00part one\ntwo\x00assistant\x00ok\x00user\x00hello").hexdigest()
    assert server.stats.by_prompt == {expected_key: 1}
    assert server.stats.completions == 1 and server.stats.requests == 1


def test_chat_stream_with_usage_chunk(server) -> None:
    chunks = list(oai(server).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "a fairly long question " * 4}], stream=True,
        stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: " + "a fairly long question " * 4
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1  # really streamed in pieces
    assert chunks[0].choices[0].delta.role == "assistant"
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert all(c.usage is None for c in chunks[:-1])


def test_chat_stream_without_usage_has_no_usage_chunk(server) -> None:
    chunks = list(oai(server).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}],
                                                     stream=True))
    assert all(c.choices for c in chunks) and chunks[-1].choices[0].finish_reason == "stop"


def test_legacy_completions_plain_streamed_and_cut_at_stop_sequences() -> None:
    with FakeLLMServer(lambda req: "Answer: yes\n\nQuestion: next") as server:
        client = oai(server)
        plain = client.completions.create(model="base", prompt="Question: ok?\nAnswer:", max_tokens=50)
        assert plain.choices[0].text == "Answer: yes\n\nQuestion: next" and plain.choices[0].finish_reason == "stop"
        cut = client.completions.create(model="base", prompt="Q", max_tokens=50, stop=["\n\nQuestion:"])
        assert cut.choices[0].text == "Answer: yes" and cut.choices[0].finish_reason == "stop"
        streamed = client.completions.create(model="base", prompt="Q", max_tokens=50, stream=True,
                                             stream_options={"include_usage": True})
        chunks = list(streamed)
        assert "".join(c.choices[0].text for c in chunks if c.choices) == "Answer: yes\n\nQuestion: next"
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
        seen = server.requests[0]
        assert (seen.endpoint, seen.system, seen.last_user, seen.max_tokens) == ("completions", None,
                                                                                  "Question: ok?\nAnswer:", 50)


def test_anthropic_message_plain_with_string_and_block_system(server) -> None:
    client = claude(server)
    message = client.messages.create(model="claude-x", max_tokens=100, system="the spec",
                                     messages=[{"role": "user", "content": "hi"}])
    assert message.content[0].text == "echo: hi" and message.stop_reason == "end_turn"
    assert message.usage.output_tokens > 0 and message.usage.cache_read_input_tokens == 0
    assert message.id.startswith("msg_") and message.model == "claude-x"
    client.messages.create(model="claude-x", max_tokens=100,
                           system=[{"type": "text", "text": "part A"}, {"type": "text", "text": "part B"}],
                           messages=[{"role": "user", "content": [{"type": "text", "text": "blocks"}]}])
    assert server.requests[0].system == "the spec"
    assert server.requests[1].system == "part A\npart B" and server.requests[1].last_user == "blocks"
    assert server.requests[1].api == "anthropic" and server.requests[1].max_tokens == 100


def test_anthropic_stream_has_the_real_event_sequence(server) -> None:
    client = claude(server)
    events = list(client.messages.create(model="c", max_tokens=100, stream=True,
                                         messages=[{"role": "user", "content": "stream me " * 6}]))
    kinds = [e.type for e in events]
    deltas = kinds.count("content_block_delta")
    assert kinds == ["message_start", "content_block_start", *["content_block_delta"] * deltas,
                     "content_block_stop", "message_delta", "message_stop"] and deltas > 1
    assert events[-2].delta.stop_reason == "end_turn" and events[-2].usage.output_tokens > 0

    with client.messages.stream(model="c", max_tokens=100, messages=[{"role": "user", "content": "hello"}]) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(pieces) == "echo: hello" == final.content[0].text
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == len("echo: hello") // 4 + 1


def test_async_anthropic_stream_final_message(server) -> None:
    async def go():
        async with anthropic.AsyncAnthropic(api_key=KEY, base_url=server.anthropic_base_url) as client:
            async with client.messages.stream(model="c", max_tokens=10,
                                              messages=[{"role": "user", "content": "async"}]) as stream:
                return await stream.get_final_message()

    assert asyncio.run(go()).content[0].text == "echo: async"


def test_cache_control_system_prefix_is_written_once_then_read(server) -> None:
    client = claude(server)
    spec = "SPEC TEXT " * 40  # 400 chars = 100 tokens
    system = [{"type": "text", "text": spec, "cache_control": {"type": "ephemeral"}},
              {"type": "text", "text": "uncached tail"}]
    first = client.messages.create(model="c", max_tokens=10, system=system, messages=[{"role": "user", "content": "a"}])
    second = client.messages.create(model="c", max_tokens=10, system=system,
                                    messages=[{"role": "user", "content": "b"}])
    with client.messages.stream(model="c", max_tokens=10, system=system,
                                messages=[{"role": "user", "content": "c"}]) as stream:
        streamed = stream.get_final_message()
    assert (first.usage.cache_creation_input_tokens, first.usage.cache_read_input_tokens) == (100, 0)
    assert (second.usage.cache_creation_input_tokens, second.usage.cache_read_input_tokens) == (0, 100)
    assert streamed.usage.cache_read_input_tokens == 100
    # input_tokens counts only the uncached part: the tail, the separator and the message.
    assert second.usage.input_tokens == (len(spec + "\nuncached tail\nb") + 3) // 4 - 100
    unmarked = client.messages.create(model="c", max_tokens=10, system=spec,
                                      messages=[{"role": "user", "content": "d"}])
    assert unmarked.usage.cache_read_input_tokens == 0 and unmarked.usage.cache_creation_input_tokens == 0


def test_openai_caches_long_system_prefixes_automatically(server) -> None:
    client = oai(server)
    long_system = "x" * 4096 * 2
    ask = dict(model="m", messages=[{"role": "system", "content": long_system}, {"role": "user", "content": "q"}])
    first, second = client.chat.completions.create(**ask), client.chat.completions.create(**ask)
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    assert second.usage.prompt_tokens_details.cached_tokens == 2048


@pytest.mark.parametrize("stop,finish,anthropic_stop", [("end", "stop", "end_turn"),
                                                        ("max_tokens", "length", "max_tokens"),
                                                        ("refusal", "content_filter", "refusal"),
                                                        ("stop_sequence", "stop", "stop_sequence")])
def test_stop_reasons_map_to_each_api(stop, finish, anthropic_stop) -> None:
    text = "word " * 100
    with FakeLLMServer(lambda req: Reply(text, stop=stop)) as server:
        chat = oai(server).chat.completions.create(model="m", max_tokens=10, stop=["never"],
                                                   messages=[{"role": "user", "content": "q"}])
        message = claude(server).messages.create(model="c", max_tokens=10, stop_sequences=["never"],
                                                 messages=[{"role": "user", "content": "q"}])
    choice = chat.choices[0]
    assert choice.finish_reason == finish and message.stop_reason == anthropic_stop
    if stop == "max_tokens":  # truncated to the budget, and the whole budget reported as used
        assert choice.message.content == text[:40] and message.content[0].text == text[:40]
        assert chat.usage.completion_tokens == 10 and message.usage.output_tokens == 10
    elif stop == "refusal":
        assert choice.message.refusal == text and choice.message.content is None
    else:
        assert choice.message.content == text
    assert message.stop_sequence == ("never" if stop == "stop_sequence" else None)


def test_reply_token_counts_override_the_estimate_and_stop_sequences_cut_anthropic_text() -> None:
    with FakeLLMServer(lambda req: Reply("alpha END beta", input_tokens=1234, output_tokens=56)) as server:
        message = claude(server).messages.create(model="c", max_tokens=100, stop_sequences=["END"],
                                                 messages=[{"role": "user", "content": "q"}])
        chat = oai(server).chat.completions.create(model="m", messages=[{"role": "user", "content": "q"}])
    assert message.content[0].text == "alpha " and message.stop_reason == "stop_sequence"
    assert message.stop_sequence == "END" and message.usage.input_tokens == 1234
    assert (chat.usage.prompt_tokens, chat.usage.completion_tokens) == (1234, 56)


def test_scripted_responder_rules_default_and_async_responders() -> None:
    responder = ScriptedResponder([(r"(?i)domains", '["law", "art"]'),
                                   ("essay", Reply("cut off", stop="max_tokens")),
                                   ("shout (\\w+)", lambda req: req.last_user.upper())], default="no rule")
    with FakeLLMServer(responder) as server:
        client = oai(server)
        ask = lambda text: client.chat.completions.create(  # noqa: E731
            model="m", max_tokens=50,
            messages=[{"role": "system", "content": "List DOMAINS"}, {"role": "user", "content": text}]
            if text == "q" else [{"role": "user", "content": text}]).choices[0]
        assert ask("q").message.content == '["law", "art"]'  # matched in the system prompt
        assert ask("an essay").finish_reason == "length"
        assert ask("shout this").message.content == "SHOUT THIS"
        assert ask("nothing").message.content == "no rule"

    async def slow(req: ScriptedRequest) -> Reply:
        await asyncio.sleep(0.01)
        return Reply("awaited")

    with FakeLLMServer(slow) as server:
        assert oai(server).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}]
                                                   ).choices[0].message.content == "awaited"


def test_default_responder_is_deterministic_and_says_it_is_fake() -> None:
    with FakeLLMServer() as server:
        answers = {oai(server).chat.completions.create(model="m", messages=[{"role": "user", "content": "ping"}]
                                                       ).choices[0].message.content for _ in range(2)}
    assert len(answers) == 1 and "ping" in answers.pop()


def test_models_and_count_tokens(server) -> None:
    oai(server).chat.completions.create(model="seen-model", messages=[{"role": "user", "content": "x"}])
    assert "seen-model" in [m.id for m in oai(server).models.list()]
    assert "seen-model" in [m.id for m in claude(server).models.list()]
    count = claude(server).messages.count_tokens(model="c", system="12345678",
                                                 messages=[{"role": "user", "content": "abcd"}])
    assert count.input_tokens == 4  # "12345678\nabcd" = 13 chars


def test_bad_requests_get_the_providers_400_and_responder_errors_a_500() -> None:
    def broken(req: ScriptedRequest) -> str:
        raise ValueError("scripted bug")

    with FakeLLMServer(broken) as server:
        missing = httpx.post(f"{server.url}/v1/messages",
                             json={"model": "c", "messages": [{"role": "user", "content": "x"}]})
        assert missing.status_code == 400
        assert missing.json()["error"] == {"type": "invalid_request_error",
                                           "message": "max_tokens: Field required (an integer)"}
        not_json = httpx.post(f"{server.openai_base_url}/chat/completions", content=b"{oops")
        assert not_json.status_code == 400 and not_json.json()["error"]["type"] == "invalid_request_error"
        with pytest.raises(openai.BadRequestError, match="one choice per request"):
            oai(server).chat.completions.create(model="m", n=2, messages=[{"role": "user", "content": "x"}])
        with pytest.raises(openai.InternalServerError, match="scripted bug"):
            oai(server).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        assert server.stats.responder_errors == 1 and server.stats.completions == 0


def test_64_concurrent_requests_are_served_at_once() -> None:
    everyone_arrived = asyncio.Event()
    arrived = 0

    async def wait_for_all(req: ScriptedRequest) -> str:
        # Answers only once all 64 requests are inside the server: a server that serialised them would
        # never get there (the wait_for below would fail the test instead of hanging it).
        nonlocal arrived
        arrived += 1
        if arrived == 64:
            everyone_arrived.set()
        await asyncio.wait_for(everyone_arrived.wait(), timeout=60)
        return f"echo {req.last_user}"

    with FakeLLMServer(wait_for_all, latency_s=0.1) as server:
        async def go():
            async with openai.AsyncOpenAI(api_key=KEY, base_url=server.openai_base_url, max_retries=0,
                                          timeout=90) as client:
                return await asyncio.gather(*(client.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": f"q{i}"}]) for i in range(64)))

        answers = asyncio.run(go())
        assert [a.choices[0].message.content for a in answers] == [f"echo q{i}" for i in range(64)]
        assert server.stats.max_in_flight == 64 and server.stats.in_flight == 0
        assert len(server.stats.by_prompt) == 64


def test_stats_json_and_reset(server) -> None:
    oai(server).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    stats = httpx.get(f"{server.url}/_stats").json()
    assert stats["requests"] == 1 and stats["completions"] == 1 and len(stats["by_prompt"]) == 1
    server.reset_stats()
    assert server.stats.requests == 0 and not server.stats.by_prompt and not server.requests
    assert json.loads(json.dumps(server.stats.to_json()))["completions"] == 0
