"""The response cache never hands one model's answers to another: endpoint, chat/completion mode and local
weights are part of the key (`LLMConfig.answer_identity`), and caches written under the old key scheme
are never read."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import sqlite3
from pathlib import Path

import pytest

from msmkit import fingerprint
from msmkit.errors import MsmError
from msmkit.llm import weights
from msmkit.llm.cache import SCHEMA_VERSION, ResponseCache
from msmkit.llm.client import LLMCallFailed, LLMClient
from msmkit.llm.types import LLMConfig, LLMRequest, LLMResponse, Price
from msmkit.models.tiny import build_tiny_model
from msmkit.testing import FakeLLMServer, Reply

SECRET = "sk-test-identity-0123456789abcdef"


def ask(config: LLMConfig, request: LLMRequest) -> LLMResponse:
    async def go() -> LLMResponse:
        async with LLMClient(config) as client:
            return await client.complete(request)
    return asyncio.run(go())


def remote(server: FakeLLMServer, cache: Path, **overrides: object) -> LLMConfig:
    values = dict(provider="openai_compatible", model="served", base_url=server.openai_base_url,
                  cache_path=str(cache), max_retries=0)
    values.update(overrides)
    return LLMConfig(**values)  # type: ignore[arg-type]


def test_two_servers_under_one_model_name_never_share_answers(tmp_path: Path) -> None:
    cache = tmp_path / "cache.sqlite"
    request = LLMRequest.of("which checkpoint are you?", temperature=0.0)
    with FakeLLMServer(lambda req: Reply("checkpoint A")) as first, \
            FakeLLMServer(lambda req: Reply("checkpoint B")) as second:
        from_first = ask(remote(first, cache), request)
        from_second = ask(remote(second, cache), request)
        again_first = ask(remote(first, cache), request)
        assert (first.stats.completions, second.stats.completions) == (1, 1)
    assert (from_first.text, from_first.cached) == ("checkpoint A", False)
    assert (from_second.text, from_second.cached) == ("checkpoint B", False)
    assert (again_first.text, again_first.cached) == ("checkpoint A", True)


def test_chat_and_completion_mode_never_share_answers(tmp_path: Path) -> None:
    cache = tmp_path / "cache.sqlite"
    request = LLMRequest.of("Continue: once upon a time", temperature=0.0)
    with FakeLLMServer(lambda req: Reply(f"answered on /{req.endpoint}")) as server:
        chat = ask(remote(server, cache, base_model=False), request)
        completion = ask(remote(server, cache, base_model=True), request)
        chat_again = ask(remote(server, cache, base_model=False), request)
        assert [r.endpoint for r in server.requests] == ["chat", "completions"]
    assert chat.text == "answered on /chat" and completion.text == "answered on /completions"
    assert not completion.cached and chat_again.cached


def test_a_retrained_local_checkpoint_is_not_served_from_the_cache(tmp_path: Path) -> None:
    checkpoint = build_tiny_model(tmp_path / "checkpoint", seed=0)
    config = LLMConfig(provider="local", model=str(checkpoint), base_model=True, cache_path=str(tmp_path / "c.sqlite"),
                       device="cpu")
    request = LLMRequest.of("The cheese of the day is", max_tokens=6, temperature=0.0)
    first = ask(config, request)
    assert not first.cached and ask(config, request).cached

    copy = shutil.copytree(checkpoint, tmp_path / "copy")  # the same weights elsewhere: the same answers
    assert ask(config.model_copy(update={"model": str(copy)}), request).cached

    build_tiny_model(checkpoint, seed=1)  # retrained in place: same path, same sizes, new weights
    retrained = ask(config, request)
    assert not retrained.cached
    assert config.answer_identity()["weights"] != LLMConfig(provider="local", model=str(copy),
                                                             base_model=True).answer_identity()["weights"]


def test_answer_identity_is_json_secret_free_and_ignores_runtime_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_KEY", SECRET)
    base = LLMConfig(provider="openai_compatible", model="m", base_url="http://Server.example:80/v1/",
                     api_key_env="MY_KEY")
    identity = base.answer_identity()
    assert identity == {"provider": "openai_compatible", "mode": "chat", "model": "m",
                        "endpoint": "http://server.example/v1"}
    assert SECRET not in json.dumps(identity)
    runtime = base.model_copy(update=dict(
        concurrency=3, timeout_s=5.0, max_retries=0, retry_base_delay_s=9.0, requests_per_minute=10.0,
        tokens_per_minute=100.0, use_batch_api=True, batch_poll_interval_s=1.0, cache_path="/elsewhere.sqlite",
        price=Price(input=1.0, output=2.0), api_key_env="OTHER_KEY", local_batch_size=2))
    assert runtime.answer_identity() == identity

    def endpoint(url: str) -> str | None:
        return base.model_copy(update={"base_url": url}).answer_identity()["endpoint"]

    assert endpoint("http://user:password@server.example/v1") == "http://server.example/v1"
    assert endpoint("http://server.example:8001/v1") != endpoint("http://server.example:8002/v1")
    assert endpoint("https://server.example:443/v1") == "https://server.example/v1"
    assert base.model_copy(update={"base_model": True}).answer_identity()["mode"] == "completion"
    claude = LLMConfig(provider="anthropic", model="claude-sonnet-4-6", base_model=True)
    assert claude.answer_identity()["mode"] == "chat"  # the Messages API has no completion mode
    assert claude.answer_identity()["endpoint"] == "https://api.anthropic.com"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://proxy.internal:9000/v1")  # what the SDK would use
    assert LLMConfig(provider="openai", model="gpt-4.1").answer_identity()["endpoint"] == "http://proxy.internal:9000/v1"


def test_a_local_model_that_is_missing_fails_the_call_with_its_reason(tmp_path: Path) -> None:
    config = LLMConfig(provider="local", model=str(tmp_path / "not-trained-yet"), cache_path=str(tmp_path / "c.sqlite"))
    with pytest.raises(LLMCallFailed, match="local model failed: .*not-trained-yet") as caught:
        ask(config, LLMRequest.of("hello"))
    assert caught.value.cause.kind.value == "local_model"


def test_weights_are_hashed_once_per_file_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[Path] = []
    real = fingerprint._sha256
    monkeypatch.setattr(fingerprint, "_sha256", lambda path: reads.append(path) or real(path))
    monkeypatch.setattr(fingerprint, "_memory", {})
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"weights v1")
    (folder / "config.json").write_text("{}")
    (folder / "training_args.bin").write_bytes(b"not part of the identity")
    first = weights.folder_digest(folder)
    assert weights.folder_digest(folder) == first and len(reads) == 2  # two model files, each read once

    monkeypatch.setattr(fingerprint, "_memory", {})  # a new process: the digests come from the msmkit cache
    assert weights.folder_digest(folder) == first and len(reads) == 2

    (folder / "training_args.bin").write_bytes(b"changed")
    assert weights.folder_digest(folder) == first
    (folder / "model.safetensors").write_bytes(b"weights v2")
    assert weights.folder_digest(folder) != first and len(reads) == 3


def _old_cache(path: Path) -> None:
    """A cache file as msmkit wrote it before keys named the endpoint: no version row."""
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE responses (key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL NOT NULL)")
    stale = LLMResponse(text="an answer from some other server", stop_reason="end", model="served")
    connection.execute("INSERT INTO responses VALUES (?, ?, 0)", ("old-key", stale.model_dump_json()))
    connection.commit()
    connection.close()


def test_a_cache_from_the_old_key_scheme_is_never_read(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "old.sqlite"
    _old_cache(path)
    with caplog.at_level(logging.WARNING, logger="msmkit.llm.cache"):
        cache = ResponseCache(path)
    assert len(cache) == 0 and cache.get("old-key") is None
    assert "key scheme 1" in caplog.text and "1 answers" in caplog.text
    caplog.clear()
    ResponseCache(path)  # now current: opened quietly
    assert "key scheme" not in caplog.text
    with FakeLLMServer(lambda req: Reply("fresh")) as server:
        assert ask(remote(server, path), LLMRequest.of("hi")).text == "fresh"

    connection = sqlite3.connect(path)
    connection.execute("UPDATE meta SET value = ? WHERE name = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    connection.commit()
    connection.close()
    with pytest.raises(MsmError, match="newer msmkit"):
        ResponseCache(path)


def test_the_identity_is_worked_out_once_per_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = LLMConfig.answer_identity
    monkeypatch.setattr(LLMConfig, "answer_identity", lambda self: calls.append(1) or real(self))
    with FakeLLMServer(lambda req: Reply("ok")) as server:
        async def go() -> None:
            async with LLMClient(remote(server, tmp_path / "c.sqlite")) as client:
                await client.complete_many([LLMRequest.of(f"q{i}") for i in range(5)])
                await client.with_stage("other").complete(LLMRequest.of("q0"))
        asyncio.run(go())
    assert calls == [1]

