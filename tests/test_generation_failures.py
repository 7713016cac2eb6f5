"""When every call of a generation command fails, the error the user sees names the endpoint, the first cause in
plain words, how many calls failed and where the log is (not "the decomposition produced no subdomains")."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from msmkit.cli.app import app
from msmkit.errors import MsmError
from msmkit.experiment.quickstart import quickstart_config
from msmkit.testing import FakeLLMServer, Reply

SPEC = quickstart_config().parent / "specs" / "cheese_pro_america.md"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again when the block ends: nothing listens there


def _config(tmp_path: Path, base_url: str, counts: dict[str, int], **extra: object) -> Path:
    llm = {"provider": "openai_compatible", "model": "served", "base_url": base_url, "api_key_env": "MSM_TEST_KEY",
           "max_retries": 1, "retry_base_delay_s": 0.01, "timeout_s": 5}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"generator": llm, "counts": counts, **extra}),
                    encoding="utf-8")
    return path


def _error(result) -> str:  # noqa: ANN001
    """The MsmError the command raised (`msm` prints it as `error: ...` and exits with 2)."""
    assert isinstance(result.exception, MsmError), result.output
    return str(result.exception)


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSM_TEST_KEY", "sk-test-failures")


def test_a_refused_endpoint_is_named_in_the_corpus_error(tmp_path) -> None:
    base_url = f"http://127.0.0.1:{_closed_port()}/v1"
    result = CliRunner().invoke(app, ["generate", "corpus", "--spec", str(SPEC), "--config",
                                      str(_config(tmp_path, base_url, {"domains": 2, "documents": 2})),
                                      "--out", str(tmp_path / "run")])
    message = _error(result)
    assert "the decomposition produced no subdomains" in message
    assert "connection refused" in message and base_url in message and "timed out" not in message
    assert "all 1 calls" in message or "1 call" in message
    assert str(tmp_path / "run" / "log.txt") in message


def test_an_unknown_model_is_named_in_the_aft_error(tmp_path) -> None:
    with FakeLLMServer(lambda request: Reply("unused"), served_models=["other-model"]) as server:
        base_url = server.openai_base_url
        config = _config(tmp_path, base_url, {"domains": 2, "examples": 2}, domains_from="llm")
        result = CliRunner().invoke(app, ["generate", "aft", "--spec", str(SPEC), "--config", str(config),
                                          "--out", str(tmp_path / "run")])
    message = _error(result)
    assert "model not found (404)" in message and "served" in message and base_url in message
