"""`msm doctor`: the machine checks, and every endpoint a config names, against the project's real test server
(reachable, model served, wrong key, unknown model) and a refused port. Key values never appear."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from msmkit.cli.app import app
from msmkit.doctor import exit_code, run_doctor
from msmkit.doctor.endpoints import scan_config
from msmkit.testing import FakeLLMServer

KEY = "sk-doctor-test-0123456789abcdef"


def _refused_url() -> str:
    with socket.socket() as probe:  # a port nothing listens on once this socket is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _by_name(checks) -> dict:
    return {check.name: check for check in checks}


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCTOR_TEST_KEY", KEY)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)


def test_the_machine_checks_cover_what_a_run_needs() -> None:
    checks = _by_name(run_doctor())
    for name in ("python", "torch", "gpu", "cpu", "cache", "embedded model", "network", "inspect-ai",
                 "inspect-evals", "API keys"):
        assert name in checks, name
    assert checks["python"].status == "ok" and checks["torch"].status == "ok"
    assert "build" in checks["torch"].detail and "core" in checks["cpu"].detail
    assert checks["network"].status == "ok" and "offline" in checks["network"].detail  # conftest sets it
    assert checks["embedded model"].status in ("ok", "info") and "gemma3-270m" in checks["embedded model"].detail


def test_every_llm_section_of_an_experiment_is_found(tmp_path: Path) -> None:
    path = _write(tmp_path, {
        "name": "x", "specs": {"a": "a.md"}, "arms": [{"name": "base"}],
        "generator": {"provider": "openai_compatible", "model": "g", "base_url": "http://127.0.0.1:1/v1"},
        "aft_data": {"judge": {"llm": {"provider": "anthropic", "model": "claude-haiku-4-5",
                                       "api_key_env": "DOCTOR_TEST_KEY"}}},
        "evals": [{"suite": "values"}, {"suite": "agentic", "agentic": {"grid": "paper"}}],
    })
    scan = scan_config(path)
    found = {endpoint.where: endpoint for endpoint in scan.endpoints}
    assert set(found) == {"config.yaml: generator", "config.yaml: aft_data.judge.llm",
                          "config.yaml: evals[1].agentic.grader"}
    assert found["config.yaml: aft_data.judge.llm"].key_env == "DOCTOR_TEST_KEY"
    grader = found["config.yaml: evals[1].agentic.grader"]  # the published task's default grader
    assert (grader.provider, grader.model, grader.key_env) == ("anthropic", "claude-sonnet-4-6", "ANTHROPIC_API_KEY")
    assert scan.agentic and not scan.problems


def test_reachable_endpoints_that_serve_the_model_pass(tmp_path: Path) -> None:
    with FakeLLMServer(api_key=KEY, served_models=["served-model"]) as server:
        path = _write(tmp_path, {
            "generator": {"provider": "openai_compatible", "model": "served-model", "base_url": server.openai_base_url,
                          "api_key_env": "DOCTOR_TEST_KEY"},
            "judge": {"provider": "anthropic", "model": "served-model", "base_url": server.anthropic_base_url,
                      "api_key_env": "DOCTOR_TEST_KEY"},
        })
        checks = run_doctor([path])
    named = _by_name(checks)
    assert named["config.yaml: generator"].status == "ok", named["config.yaml: generator"]
    assert named["config.yaml: judge"].status == "ok", named["config.yaml: judge"]
    assert named["key DOCTOR_TEST_KEY"].status == "ok"
    assert exit_code(checks) == 0


def test_each_broken_endpoint_is_named_with_its_cause_and_fix(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WRONG_KEY", "sk-wrong-key-0123456789abcdef")
    refused = _refused_url()
    with FakeLLMServer(api_key=KEY, served_models=["served-model"]) as server:
        path = _write(tmp_path, {
            "refused": {"provider": "openai_compatible", "model": "m", "base_url": refused},
            "unknown": {"provider": "openai_compatible", "model": "other-model", "base_url": server.openai_base_url,
                        "api_key_env": "DOCTOR_TEST_KEY"},
            "wrong_key": {"provider": "anthropic", "model": "served-model", "base_url": server.anthropic_base_url,
                          "api_key_env": "WRONG_KEY"},
            "no_key": {"provider": "anthropic", "model": "claude-sonnet-4-6"},
            "broken": {"provider": "openai", "model": 5, "tempo": 1},
        })
        checks = run_doctor([path])
    named = _by_name(checks)
    assert "connection refused" in named["config.yaml: refused"].detail
    assert refused in named["config.yaml: refused"].detail and "base_url" in named["config.yaml: refused"].fix
    assert "does not serve 'other-model' (it serves: served-model)" in named["config.yaml: unknown"].detail
    assert "authentication failed (401)" in named["config.yaml: wrong_key"].detail
    assert "WRONG_KEY" in named["config.yaml: wrong_key"].fix
    assert named["key ANTHROPIC_API_KEY"].status == "fail" and "not contacted" in named["config.yaml: no_key"].detail
    assert "unknown key 'tempo'" in named["config.yaml: broken"].detail
    assert all(named[name].failed for name in ("config.yaml: refused", "config.yaml: unknown",
                                                "config.yaml: wrong_key", "config.yaml: no_key"))
    assert exit_code(checks) == 1
    shown = " ".join(f"{check.detail} {check.fix}" for check in checks)
    assert KEY not in shown and "sk-wrong-key" not in shown


def test_the_command_exits_1_with_the_fix_and_0_when_all_is_well(tmp_path: Path) -> None:
    runner = CliRunner()
    bad = _write(tmp_path, {"generator": {"provider": "openai_compatible", "model": "m", "base_url": _refused_url()}})
    result = runner.invoke(app, ["doctor", "--config", str(bad), "--timeout", "5"])
    assert result.exit_code == 1, result.output
    assert "fail" in result.output and "connection refused" in result.output and "fix:" in result.output
    assert "1 problem(s) to fix: config.yaml: generator" in result.output
    with FakeLLMServer(served_models=["m"]) as server:
        good = tmp_path / "good.yaml"
        good.write_text(yaml.safe_dump({"generator": {"provider": "openai_compatible", "model": "m",
                                                      "base_url": server.openai_base_url}}), encoding="utf-8")
        result = runner.invoke(app, ["doctor", "--config", str(good)])
    assert result.exit_code == 0, result.output
    assert "nothing broken" in result.output
