"""The LLM layer through the real openai/anthropic SDKs against the local test server."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from pydantic import BaseModel

from msmkit.llm.client import LLMCallFailed, LLMClient
from msmkit.llm.types import LLMConfig, LLMRequest, Price, StopReason
from msmkit.runs import RunDir
from msmkit.testing import FakeLLMServer, Fault, Reply, ScriptedRequest

SECRET = "sk-test-0123456789abcdefSECRETKEY"


class Verdict(BaseModel):
    keep: bool
    reason: str


def echo(req: ScriptedRequest) -> Reply:
    if "json please" in req.last_user or "corrected JSON" in req.last_user:
        return Reply('Sure! ```json\n{"keep": true, "reason": "fine"}\n```')
    return Reply(f"answer to: {req.last_user} (max_tokens={req.max_tokens})")


def openai_config(server: FakeLLMServer, tmp_path: Path, **overrides: object) -> LLMConfig:
    values = dict(provider="openai_compatible", model="scripted", base_url=server.openai_base_url,
                  cache_path=str(tmp_path / "cache.sqlite"), timeout_s=2.0, max_retries=3,
                  retry_base_delay_s=0.01, retry_max_delay_s=0.05)
    values.update(overrides)
    return LLMConfig(**values)  # type: ignore[arg-type]


def anthropic_config(server: FakeLLMServer, tmp_path: Path, **overrides: object) -> LLMConfig:
    values = dict(provider="anthropic", model="claude-sonnet-4-6", base_url=server.anthropic_base_url,
                  cache_path=str(tmp_path / "cache.sqlite"), timeout_s=2.0, max_retries=3,
                  retry_base_delay_s=0.01, retry_max_delay_s=0.05)
    values.update(overrides)
    return LLMConfig(**values)  # type: ignore[arg-type]


def run(coro):  # noqa: ANN001, ANN201
    return asyncio.run(coro)


@pytest.fixture()
def server():  # noqa: ANN201
    with FakeLLMServer(echo) as fake:
        yield fake


@pytest.fixture(autouse=True)
def api_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)


@pytest.mark.parametrize("make_config", [openai_config, anthropic_config], ids=["openai", "anthropic"])
def test_answers_are_cached_and_a_second_ask_pays_nothing(server, tmp_path, make_config) -> None:
    async def go():
        async with LLMClient(make_config(server, tmp_path)) as client:
            first = await client.complete(LLMRequest.of("hello", system="the spec"))
            second = await client.complete(LLMRequest.of("hello", system="the spec"))
            other_sample = await client.complete(LLMRequest.of("hello", system="the spec", sample_index=1))
            return first, second, other_sample

    first, second, other_sample = run(go())
    assert first.text.startswith("answer to: hello") and not first.cached
    assert first.usage.output_tokens > 0 and first.stop_reason == StopReason.END
    assert second.cached and second.text == first.text
    assert not other_sample.cached
    assert server.stats.completions == 2


def test_anthropic_marks_the_system_prefix_cacheable_and_streams_large_budgets(tmp_path) -> None:
    seen: list[ScriptedRequest] = []

    def record(req: ScriptedRequest) -> Reply:
        seen.append(req)
        return Reply("ok")

    with FakeLLMServer(record) as fake:
        async def go():
            async with LLMClient(anthropic_config(fake, tmp_path)) as client:
                await client.complete(LLMRequest.of("a", system="SPEC " * 50))
                return await client.complete(LLMRequest.of("b", system="SPEC " * 50, max_tokens=20000))

        big = run(go())
    assert seen[0].raw["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert seen[1].raw.get("stream") is True and big.text == "ok"
    assert big.usage.cache_read_tokens > 0  # the second call read the cached prefix


@pytest.mark.parametrize("fault", [Fault.RATE_LIMIT, Fault.SERVER_ERROR, Fault.DROP, Fault.HANG])
@pytest.mark.parametrize("make_config", [openai_config, anthropic_config], ids=["openai", "anthropic"])
def test_transient_faults_are_retried_without_changing_the_request(tmp_path, fault, make_config, caplog) -> None:
    seen: list[int | None] = []

    def record(req: ScriptedRequest) -> Reply:
        seen.append(req.max_tokens)
        return Reply("recovered")

    with FakeLLMServer(record) as fake:
        fake.inject(fault, times=2, retry_after=0.3)
        caplog.set_level(logging.INFO, logger="msmkit.llm.client")
        config = make_config(fake, tmp_path, timeout_s=0.5)
        response = run(LLMClient(config).complete(LLMRequest.of("x", max_tokens=321)))
        assert fake.stats.faults[fault] == 2
    assert response.text == "recovered" and seen == [321]
    delays = [float(r.getMessage().split(" in ")[1].split("s after")[0])
              for r in caplog.records if "retrying" in r.getMessage()]
    assert len(delays) == 2
    if fault == Fault.RATE_LIMIT:
        assert all(d >= 0.3 for d in delays)  # retry-after honoured


def test_retries_exhausted_raises_call_failed_and_nothing_is_cached(server, tmp_path) -> None:
    server.inject(Fault.SERVER_ERROR, times=10)
    config = openai_config(server, tmp_path, max_retries=2)
    with pytest.raises(LLMCallFailed, match="gave up after 3 attempts"):
        run(LLMClient(config).complete(LLMRequest.of("x")))
    server.reset_stats()
    response = run(LLMClient(config).complete(LLMRequest.of("x")))  # remaining faults still injected
    assert not response.cached


def test_permanent_error_is_not_retried(server, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    config = LLMConfig(provider="openai", model="gpt-4o", base_url=server.openai_base_url,
                       cache_path=str(tmp_path / "c.sqlite"))
    with pytest.raises(LLMCallFailed, match="OPENAI_API_KEY"):
        run(LLMClient(config).complete(LLMRequest.of("x")))
    assert server.stats.requests == 0


@pytest.mark.parametrize("make_config", [openai_config, anthropic_config], ids=["openai", "anthropic"])
def test_truncation_and_refusal_are_reported_not_hidden(server, tmp_path, make_config) -> None:
    server.inject(Fault.TRUNCATED, times=1)
    server.inject(Fault.REFUSAL, times=1, match="refuse me")
    client = LLMClient(make_config(server, tmp_path))
    truncated = run(client.complete(LLMRequest.of("long one", max_tokens=5)))
    refused = run(LLMClient(make_config(server, tmp_path)).complete(LLMRequest.of("refuse me")))
    assert truncated.truncated and truncated.stop_reason == StopReason.MAX_TOKENS
    assert refused.stop_reason == StopReason.REFUSAL


def test_structured_output_reasks_once_then_fails_the_item_only(server, tmp_path) -> None:
    client = LLMClient(openai_config(server, tmp_path))
    good = run(client.complete_json(LLMRequest.of("json please"), Verdict))
    assert good.ok and good.value == Verdict(keep=True, reason="fine")

    server.inject(Fault.MALFORMED_JSON, times=1)
    repaired = run(LLMClient(openai_config(server, tmp_path)).complete_json(
        LLMRequest.of("json please", sample_index=1), Verdict))
    assert repaired.ok and len(repaired.responses) == 2
    assert "Your answer could not be used" in server.requests[-1].last_user

    server.inject(Fault.MALFORMED_JSON, times=2)
    failed = run(LLMClient(openai_config(server, tmp_path)).complete_json(
        LLMRequest.of("json please", sample_index=2), Verdict))
    assert not failed.ok and "JSON" in failed.error and len(failed.responses) == 2


def test_complete_many_keeps_order_and_returns_failures_in_place(server, tmp_path) -> None:
    server.inject(Fault.SERVER_ERROR, times=100, match="poison")
    client = LLMClient(openai_config(server, tmp_path, max_retries=1, concurrency=4))
    requests = [LLMRequest.of(f"q{i}") for i in range(10)] + [LLMRequest.of("poison")]
    outcomes = run(client.complete_many(requests))
    assert [o.text.split(": ")[1].split(" ")[0] for o in outcomes[:10]] == [f"q{i}" for i in range(10)]
    assert isinstance(outcomes[10], LLMCallFailed)


def test_concurrency_limit_is_respected(tmp_path) -> None:
    with FakeLLMServer(echo, latency_s=0.05) as fake:
        client = LLMClient(openai_config(fake, tmp_path, concurrency=3))
        run(client.complete_many([LLMRequest.of(f"q{i}") for i in range(12)]))
        assert fake.stats.max_in_flight == 3


def test_usage_and_cost_recorded_and_no_key_reaches_the_run_folder(server, tmp_path) -> None:
    run_dir = RunDir(tmp_path / "run")
    config = anthropic_config(server, tmp_path, price=Price(input=3.0, output=15.0))
    run_dir.write_config(config)
    async def go():
        async with LLMClient(config, run=run_dir, stage="corpus/documents") as client:
            await client.complete_many([LLMRequest.of(f"q{i}") for i in range(5)])
            await client.complete(LLMRequest.of("q0"))

    run(go())
    run_dir.close()
    usage = (run_dir.path / "usage.json").read_text()
    assert '"calls": 6' in usage and '"cached_calls": 1' in usage
    import json
    total = json.loads(usage)["total"]
    assert total["cost_usd"] == pytest.approx((total["input_tokens"] * 3 + total["output_tokens"] * 15) / 1e6)
    for path in list(run_dir.path.rglob("*")) + [tmp_path / "cache.sqlite"]:
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def openai_platform_config(server: FakeLLMServer, tmp_path: Path, **overrides: object) -> LLMConfig:
    return openai_config(server, tmp_path, provider="openai", model="gpt-4.1-mini", **overrides)


@pytest.mark.parametrize("make_config", [openai_platform_config, anthropic_config], ids=["openai", "anthropic"])
def test_batch_api_submits_once_and_resumes_polling_after_a_restart(tmp_path, make_config) -> None:
    with FakeLLMServer(echo, batch_delay_s=0.6) as fake:
        config = make_config(fake, tmp_path, use_batch_api=True, batch_poll_interval_s=0.1)
        requests = [LLMRequest.of(f"b{i}") for i in range(6)]

        async def interrupted():
            task = asyncio.create_task(LLMClient(config).complete_many(requests))
            await asyncio.sleep(0.3)  # submitted, still processing: the "process" dies here
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        run(interrupted())
        outcomes = run(LLMClient(config).complete_many(requests))
        assert [o.text.split(": ")[1].split(" ")[0] for o in outcomes] == [f"b{i}" for i in range(6)]
        assert fake.stats.batches_created == 1
        assert all(not o.cached for o in outcomes)
        again = run(LLMClient(config).complete_many(requests))
        assert all(o.cached for o in again) and fake.stats.batches_created == 1


def test_a_stream_dropped_mid_way_is_retried(tmp_path) -> None:
    with FakeLLMServer(lambda req: Reply("streamed " * 20)) as fake:
        fake.inject(Fault.DROP, times=1)
        config = anthropic_config(fake, tmp_path)
        response = run(LLMClient(config).complete(LLMRequest.of("big", max_tokens=20000)))
        assert response.text.startswith("streamed") and fake.stats.faults[Fault.DROP] == 1
