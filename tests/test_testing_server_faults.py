"""Every injected fault as the real SDKs surface it, targeting, and fault accounting."""

from __future__ import annotations

import asyncio
import json
import time

import anthropic
import openai
import pytest

from msmkit.testing import FakeLLMServer, Fault, ScriptedRequest

KEY = "test-key"
ASK = dict(model="m", messages=[{"role": "user", "content": "hello"}])
ASK_CLAUDE = dict(model="c", max_tokens=50, messages=[{"role": "user", "content": "hello"}])


@pytest.fixture()
def server():
    with FakeLLMServer(lambda req: f'{{"echo": "{req.last_user}"}}') as fake:
        yield fake


def oai(server: FakeLLMServer, **kw: object) -> openai.OpenAI:
    return openai.OpenAI(api_key=KEY, base_url=server.openai_base_url, max_retries=0, **kw)


def claude(server: FakeLLMServer, **kw: object) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=KEY, base_url=server.anthropic_base_url, max_retries=0, **kw)


def test_rate_limit_is_a_429_with_retry_after_and_the_error_body(server) -> None:
    server.inject(Fault.RATE_LIMIT, times=1, retry_after=0.2)
    with pytest.raises(openai.RateLimitError) as caught:
        oai(server).chat.completions.create(**ASK)
    assert caught.value.response.headers["retry-after"] == "0.2"
    assert caught.value.response.headers["retry-after-ms"] == "200"
    assert caught.value.body["type"] == "rate_limit_exceeded"

    server.inject(Fault.RATE_LIMIT, times=1, retry_after=3)
    with pytest.raises(anthropic.RateLimitError) as caught_claude:
        claude(server).messages.create(**ASK_CLAUDE)
    assert caught_claude.value.response.headers["retry-after"] == "3"
    assert caught_claude.value.body["error"]["type"] == "rate_limit_error"
    # Faults are used up: the next request is answered, and only it counts as paid.
    assert oai(server).chat.completions.create(**ASK).choices[0].message.content == '{"echo": "hello"}'
    assert server.stats.faults == {Fault.RATE_LIMIT: 2}
    assert sum(server.stats.by_prompt.values()) == 1 and server.stats.completions == 1


def test_sdk_retries_honour_retry_after(server) -> None:
    server.inject(Fault.RATE_LIMIT, times=2, retry_after=0.1)
    started = time.monotonic()
    answer = openai.OpenAI(api_key=KEY, base_url=server.openai_base_url, max_retries=2).chat.completions.create(**ASK)
    assert answer.choices[0].message.content and time.monotonic() - started >= 0.2
    assert server.stats.requests == 3


def test_server_error_500_and_anthropic_overloaded_529(server) -> None:
    server.inject(Fault.SERVER_ERROR)
    with pytest.raises(openai.InternalServerError) as caught:
        oai(server).chat.completions.create(**ASK)
    assert caught.value.status_code == 500 and caught.value.body["type"] == "server_error"
    server.inject(Fault.SERVER_ERROR)
    with pytest.raises(anthropic.InternalServerError) as caught_claude:
        claude(server).messages.create(**ASK_CLAUDE)
    assert caught_claude.value.status_code == 500 and caught_claude.value.body["error"]["type"] == "api_error"
    server.inject(Fault.SERVER_ERROR, status=529)
    with pytest.raises(anthropic.OverloadedError) as overloaded:
        claude(server).messages.create(**ASK_CLAUDE)
    assert overloaded.value.body["error"]["type"] == "overloaded_error"
    with pytest.raises(ValueError, match="SERVER_ERROR only"):
        server.inject(Fault.DROP, status=503)


def test_hang_times_out_the_client_without_blocking_other_requests(server) -> None:
    server.inject(Fault.HANG, match="hang me")

    async def go():
        async with openai.AsyncOpenAI(api_key=KEY, base_url=server.openai_base_url, max_retries=0,
                                      timeout=1.0) as client:
            hung = asyncio.create_task(client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hang me"}]))
            await asyncio.sleep(0.2)
            other = await client.chat.completions.create(**ASK)  # answered while the first one hangs
            assert not hung.done()
            with pytest.raises(openai.APITimeoutError):
                await hung
            return other

    assert asyncio.run(go()).choices[0].message.content == '{"echo": "hello"}'
    server.inject(Fault.HANG)
    with pytest.raises(anthropic.APITimeoutError):
        claude(server, timeout=0.3).messages.create(**ASK_CLAUDE)
    assert server.stats.faults[Fault.HANG] == 2
    deadline = time.monotonic() + 5
    while server.stats.in_flight and time.monotonic() < deadline:  # the client's disconnect ends the handler
        time.sleep(0.02)
    assert server.stats.in_flight == 0


def test_drop_closes_the_connection_mid_response(server) -> None:
    server.inject(Fault.DROP, times=2)
    with pytest.raises(openai.APIConnectionError):
        oai(server).chat.completions.create(**ASK)
    with pytest.raises(anthropic.APIConnectionError):
        claude(server).messages.create(**ASK_CLAUDE)
    assert oai(server).chat.completions.create(**ASK).choices[0].finish_reason == "stop"


def test_content_faults_truncated_malformed_json_refusal(server) -> None:
    server.inject(Fault.TRUNCATED)
    truncated = oai(server).chat.completions.create(max_tokens=3, **ASK)
    assert truncated.choices[0].finish_reason == "length" and truncated.choices[0].message.content == '{"echo": "he'
    server.inject(Fault.MALFORMED_JSON)
    malformed = oai(server).chat.completions.create(**ASK).choices[0].message.content
    with pytest.raises(json.JSONDecodeError):
        json.loads(malformed)
    server.inject(Fault.REFUSAL)
    refused = claude(server).messages.create(**ASK_CLAUDE)
    assert refused.stop_reason == "refusal"
    server.inject(Fault.REFUSAL)
    refused_chat = oai(server).chat.completions.create(**ASK).choices[0]
    assert refused_chat.finish_reason == "content_filter" and refused_chat.message.refusal
    # Answered with 200 (counted as completions) but faulted, so never in by_prompt.
    assert server.stats.completions == 4 and not server.stats.by_prompt
    assert server.stats.faults == {Fault.TRUNCATED: 1, Fault.MALFORMED_JSON: 1, Fault.REFUSAL: 2}


def test_streamed_requests_get_content_faults_too(server) -> None:
    server.inject(Fault.TRUNCATED)
    with claude(server).messages.stream(model="c", max_tokens=2, messages=[{"role": "user", "content": "x"}]) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "max_tokens" and final.usage.output_tokens == 2


def test_match_targets_prompts_by_regex_or_callable_in_order(server) -> None:
    server.inject(Fault.SERVER_ERROR, times=5, match="poison")
    server.inject(Fault.REFUSAL, times=1, match=lambda req: req.system == "strict")
    client = oai(server)
    assert client.chat.completions.create(**ASK).choices[0].finish_reason == "stop"
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "a poison pill"}])
    strict = client.chat.completions.create(model="m", messages=[{"role": "system", "content": "strict"},
                                                                 {"role": "user", "content": "x"}])
    assert strict.choices[0].finish_reason == "content_filter"
    assert server.pending_faults() == [(Fault.SERVER_ERROR, 4)]
    server.clear_faults()
    assert server.pending_faults() == []


def test_reset_stats_drops_pending_faults(server) -> None:
    server.inject(Fault.SERVER_ERROR, times=10)
    with pytest.raises(openai.InternalServerError):
        oai(server).chat.completions.create(**ASK)
    server.reset_stats()
    assert server.stats.faults == {} and server.pending_faults() == []
    assert oai(server).chat.completions.create(**ASK).choices[0].finish_reason == "stop"


def test_faults_are_served_concurrently_with_latency() -> None:
    def record(req: ScriptedRequest) -> str:
        return "fine"

    with FakeLLMServer(record, latency_s=0.05) as server:
        server.inject(Fault.SERVER_ERROR, times=3)

        async def go():
            async with openai.AsyncOpenAI(api_key=KEY, base_url=server.openai_base_url, max_retries=0) as client:
                return await asyncio.gather(*(client.chat.completions.create(**ASK) for _ in range(8)),
                                            return_exceptions=True)

        outcomes = asyncio.run(go())
    assert sum(isinstance(o, openai.InternalServerError) for o in outcomes) == 3
    assert server.stats.completions == 5 and server.stats.max_in_flight > 1


def test_drop_during_a_stream_cuts_it_after_the_first_event(server) -> None:
    server.inject(Fault.DROP, times=2)
    with pytest.raises(openai.APIConnectionError):
        list(oai(server).chat.completions.create(stream=True, **ASK))
    # The anthropic SDK lets the transport error through unwrapped once the stream has begun: clients
    # must treat it as transient too.
    with pytest.raises(Exception) as caught:
        with claude(server).messages.stream(**ASK_CLAUDE) as stream:
            stream.get_final_message()
    assert type(caught.value).__name__ == "RemoteProtocolError" and "incomplete chunked read" in str(caught.value)
    assert server.stats.faults[Fault.DROP] == 2 and server.stats.completions == 0


def test_auth_error_and_unknown_model_faults_are_the_providers_401_and_404(server) -> None:
    server.inject(Fault.AUTH_ERROR, times=1)
    with pytest.raises(openai.AuthenticationError) as caught:
        oai(server).chat.completions.create(**ASK)
    assert caught.value.status_code == 401 and caught.value.body["code"] == "invalid_api_key"
    server.inject(Fault.AUTH_ERROR, times=1)
    with pytest.raises(anthropic.AuthenticationError) as caught_claude:
        claude(server).messages.create(**ASK_CLAUDE)
    assert caught_claude.value.body["error"]["type"] == "authentication_error"

    server.inject(Fault.UNKNOWN_MODEL, times=2)
    with pytest.raises(openai.NotFoundError) as missing:
        oai(server).completions.create(model="m", prompt="hello")
    assert missing.value.body["code"] == "model_not_found" and "`m`" in missing.value.body["message"]
    with pytest.raises(anthropic.NotFoundError) as missing_claude:
        claude(server).messages.create(**ASK_CLAUDE)
    assert missing_claude.value.body["error"] == {"type": "not_found_error", "message": "model: c"}
    assert server.stats.faults == {Fault.AUTH_ERROR: 2, Fault.UNKNOWN_MODEL: 2} and server.stats.completions == 0


def test_a_key_and_a_model_list_make_the_server_refuse_like_a_real_one() -> None:
    with FakeLLMServer(lambda req: "ok", api_key="right-key", served_models=["m", "c"]) as guarded:
        right_oai = openai.OpenAI(api_key="right-key", base_url=guarded.openai_base_url, max_retries=0)
        right_claude = anthropic.Anthropic(api_key="right-key", base_url=guarded.anthropic_base_url, max_retries=0)
        assert right_oai.chat.completions.create(**ASK).choices[0].message.content == "ok"
        assert right_claude.messages.create(**ASK_CLAUDE).content[0].text == "ok"
        assert [m.id for m in right_oai.models.list()] == ["c", "m"]
        with pytest.raises(openai.AuthenticationError):
            oai(guarded).models.list()
        with pytest.raises(anthropic.AuthenticationError):
            claude(guarded).messages.create(**ASK_CLAUDE)
        with pytest.raises(openai.NotFoundError, match="model `unserved` does not exist"):
            right_oai.chat.completions.create(**{**ASK, "model": "unserved"})
        with pytest.raises(anthropic.NotFoundError, match="model: unserved"):
            right_claude.messages.create(**{**ASK_CLAUDE, "model": "unserved"})
        with pytest.raises(openai.NotFoundError):
            right_oai.models.retrieve("unserved")
        assert guarded.stats.completions == 2
