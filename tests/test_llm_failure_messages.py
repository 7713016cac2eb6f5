"""What a user reads when calls fail, through the real openai and anthropic SDKs against the local test server:
the endpoint, the cause in plain words (refused, 401, unknown model, 429 with its time), and how many failed."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from pathlib import Path

import pytest

from msmkit.llm.client import LLMCallFailed, LLMClient
from msmkit.llm.failures import FailureCause, FailureKind, summarize_failures
from msmkit.llm.types import LLMConfig, LLMRequest
from msmkit.testing import FakeLLMServer, Fault, Reply

WRONG_KEY = "sk-test-wrong-key-0123456789abcdef"


def config_for(api: str, url_or_server: str | FakeLLMServer, tmp_path: Path, **overrides: object) -> LLMConfig:
    if isinstance(url_or_server, FakeLLMServer):
        url = url_or_server.anthropic_base_url if api == "anthropic" else url_or_server.openai_base_url
    else:
        url = url_or_server
    values = dict(provider="anthropic" if api == "anthropic" else "openai_compatible",
                  model="claude-sonnet-4-6" if api == "anthropic" else "served", base_url=url,
                  api_key_env="TEST_LLM_KEY", cache_path=str(tmp_path / "cache.sqlite"), timeout_s=5.0,
                  max_retries=1, retry_base_delay_s=0.01, retry_max_delay_s=0.02)
    values.update(overrides)
    return LLMConfig(**values)  # type: ignore[arg-type]


def failure(config: LLMConfig) -> LLMCallFailed:
    async def go() -> LLMCallFailed:
        async with LLMClient(config) as client:
            try:
                await client.complete(LLMRequest.of("hello"))
            except LLMCallFailed as exc:
                return exc
        raise AssertionError("the call was expected to fail")
    return asyncio.run(go())


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_LLM_KEY", WRONG_KEY)


@pytest.fixture()
def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


APIS = ["openai", "anthropic"]


@pytest.mark.parametrize("api", APIS)
def test_a_refused_connection_is_called_refused_not_a_timeout(api, tmp_path, closed_port, caplog) -> None:
    url = f"http://127.0.0.1:{closed_port}" + ("/v1" if api == "openai" else "")
    config = config_for(api, url, tmp_path)
    with caplog.at_level(logging.INFO, logger="msmkit.llm.client"):
        error = failure(config)
    message = str(error)
    assert error.cause.kind is FailureKind.CONNECTION_REFUSED and error.attempts == 2
    assert message.startswith(f"{config.describe()}: connection refused")
    assert f"127.0.0.1:{closed_port}" in message and "gave up after 2 attempts" in message
    assert "timed out" not in message.lower() and "timed out" not in caplog.text.lower()  # the log says it too


@pytest.mark.parametrize("api", APIS)
def test_a_rejected_key_is_authentication_failed_named_and_not_retried(api, tmp_path) -> None:
    with FakeLLMServer(lambda req: Reply("ok"), api_key="the-right-key") as server:
        error = failure(config_for(api, server, tmp_path, max_retries=3))
        assert server.stats.requests == 1  # permanent: asked once
    message = str(error)
    assert error.cause.kind is FailureKind.AUTHENTICATION_FAILED and error.cause.status == 401
    assert "authentication failed (401)" in message and "$TEST_LLM_KEY" in message
    assert WRONG_KEY not in message


@pytest.mark.parametrize("api", APIS)
def test_an_unknown_model_is_model_not_found(api, tmp_path) -> None:
    with FakeLLMServer(lambda req: Reply("ok"), served_models=["some-other-model"]) as server:
        error = failure(config_for(api, server, tmp_path, model="no-such-model"))
        assert server.stats.requests == 1
    assert error.cause.kind is FailureKind.MODEL_NOT_FOUND
    assert "model not found (404)" in str(error) and "no-such-model" in str(error)


@pytest.mark.parametrize("api", APIS)
def test_rate_limited_says_until_when(api, tmp_path) -> None:
    with FakeLLMServer(lambda req: Reply("ok")) as server:
        server.inject(Fault.RATE_LIMIT, times=5, retry_after=0.05)
        error = failure(config_for(api, server, tmp_path))
        assert server.stats.faults[Fault.RATE_LIMIT] == 2
    assert error.cause.kind is FailureKind.RATE_LIMITED and error.cause.retry_after_s == pytest.approx(0.05)
    assert re.search(r"rate limited \(429\) until \d\d:\d\d:\d\d \(retry-after 0\.05 s\)", str(error)), str(error)


def test_many_failures_become_one_sentence(tmp_path, closed_port) -> None:
    url = f"http://127.0.0.1:{closed_port}/v1"
    config = config_for("openai", url, tmp_path, max_retries=0)

    async def go() -> list:
        async with LLMClient(config) as client:
            return await client.complete_many([LLMRequest.of(f"q{i}") for i in range(3)])

    outcomes = asyncio.run(go())
    sentence = summarize_failures([o for o in outcomes if isinstance(o, LLMCallFailed)], total=3, log="run/log.txt")
    assert sentence.startswith(f"all 3 calls to openai_compatible:served @ {url} failed; first error: "
                               "connection refused")
    assert sentence.endswith("(details in run/log.txt)")

    other = FailureCause(FailureKind.AUTHENTICATION_FAILED, "authentication failed (401): bad key", "anthropic:c")
    timeout = FailureCause(FailureKind.TIMED_OUT, "timed out: no answer within 5 s", outcomes[0].cause.endpoint)
    mixed = summarize_failures([outcomes[0], timeout, other], total=10)
    assert mixed.startswith("3 of 10 calls failed: 2 to openai_compatible:served")
    assert "also timed out x1" in mixed and "1 to anthropic:c (first error: authentication failed (401)" in mixed
    assert summarize_failures([]) == ""
