"""The test server in another process: `python -m msmkit.testing.server` and `msm llm serve-fake`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import openai
import pytest

from msmkit.errors import ConfigError
from msmkit.testing import FakeServerProcess, Fault, load_script

KEY = "test-key"
RULES = """\
- match: "(?i)list the domains"
  reply: '["law", "art"]'
- match: essay
  reply: "It was a dark and stormy night, and the rain fell in torrents"
  stop: max_tokens
"""


def test_subprocess_server_with_script_stats_and_remote_injection(tmp_path: Path) -> None:
    script = tmp_path / "rules.yaml"
    script.write_text(RULES)
    with FakeServerProcess(latency_s=0.01, script=str(script)) as server:
        client = openai.OpenAI(api_key=KEY, base_url=server.openai_base_url, max_retries=0)
        ask = lambda text, **kw: client.chat.completions.create(  # noqa: E731
            model="m", messages=[{"role": "user", "content": text}], **kw).choices[0]
        assert ask("Please LIST THE DOMAINS").message.content == '["law", "art"]'
        essay = ask("write an essay", max_tokens=2)
        assert essay.finish_reason == "length" and essay.message.content == "It was a"
        assert "You said: something else" in ask("something else").message.content
        server.inject(Fault.RATE_LIMIT, retry_after=0.5, match="limited")
        with pytest.raises(openai.RateLimitError) as caught:
            ask("limited")
        assert caught.value.response.headers["retry-after"] == "0.5"
        stats = server.stats()
        assert stats["requests"] == 4 and stats["completions"] == 3 and stats["faults"] == {"rate_limit": 1}
        assert len(stats["by_prompt"]) == 3 and stats["pending_faults"] == []
        server.reset_stats()
        assert server.stats()["requests"] == 0


def test_cli_serve_fake_prints_ready_and_serves(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "from msmkit.cli.app import main; main()", "llm", "serve-fake", "--port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline().strip()
        assert line.startswith("READY http://127.0.0.1:"), process.stderr.read()
        client = openai.OpenAI(api_key=KEY, base_url=line.split()[1] + "/v1", max_retries=0)
        answer = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "dry run"}])
        assert "dry run" in answer.choices[0].message.content
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert process.returncode == 0


def test_bad_script_files_name_the_file_and_the_rule(tmp_path: Path) -> None:
    bad = tmp_path / "rules.yaml"
    bad.write_text('- match: "("\n  reply: x\n- match: ok\n  reply: y\n  stopp: end\n')
    with pytest.raises(ConfigError) as caught:
        load_script(bad)
    message = str(caught.value)
    assert str(bad) in message and "rules.0.match" in message and "not a valid regular expression" in message
    assert "did you mean 'stop'" in message
    (tmp_path / "scalar.yaml").write_text("just text\n")
    with pytest.raises(ConfigError, match="expected a list of rules"):
        load_script(tmp_path / "scalar.yaml")
    result = subprocess.run([sys.executable, "-c", "from msmkit.cli.app import main; main()", "llm", "serve-fake",
                             "--script", str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "rules.0.match" in result.stderr


def test_script_with_a_default(tmp_path: Path) -> None:
    script = tmp_path / "rules.yaml"
    script.write_text('rules:\n  - match: hi\n    reply: hello\ndefault: "fallback"\n')
    responder = load_script(script)
    from msmkit.testing import ScriptedRequest
    ask = lambda text: responder(ScriptedRequest(api="openai", model="m", system=None,  # noqa: E731
                                                 messages=[{"role": "user", "content": text}]))
    assert ask("oh hi").text == "hello" and ask("bye") == "fallback"


def test_subprocess_server_checks_the_key_named_by_its_variable_and_serves_only_given_models(monkeypatch) -> None:
    monkeypatch.setenv("FAKE_SERVER_KEY", "the-right-key")
    with FakeServerProcess(api_key_env="FAKE_SERVER_KEY", served_models=["m"]) as server:
        right = openai.OpenAI(api_key="the-right-key", base_url=server.openai_base_url, max_retries=0)
        assert right.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}]).choices
        with pytest.raises(openai.NotFoundError):
            right.chat.completions.create(model="other", messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(api_key=KEY, base_url=server.openai_base_url, max_retries=0).models.list()
        assert "the-right-key" not in " ".join(server.command)
