"""Stages as a user runs them, against real vLLM servers: `msm generate corpus` killed mid-stage and run again,
`provider: vllm` starting its own server and stopping it on Ctrl-C, and the agentic eval through Inspect's
OpenAI-compatible provider."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from msmkit.eval.agentic.models import ModelRef
from msmkit.eval.agentic.runner import AgenticConfig, load_records, run_agentic
from msmkit.io import read_jsonl
from msmkit.llm.vllm_server import ServerLease, VLLMServer, VLLMServerError
from tests.spec_checks import CHEESE_AMERICA
from tests.vllm.conftest import SERVER_SETTINGS, VLLMModels, VLLMTestServer
from tests.vllm.test_vllm_generation import CORPUS_COUNTS, CORPUS_LENGTHS

pytestmark = pytest.mark.vllm
MSM = [sys.executable, "-c", "from msmkit.cli.app import main; main()"]


def corpus_command(tmp_path: Path, generator: dict[str, Any], out: Path, documents: int) -> list[str]:
    config = tmp_path / f"corpus-{out.name}.yaml"
    lengths = {**CORPUS_LENGTHS, "list_max_tokens": 48, "document_max_tokens": 96}  # quick: the text is not the point
    config.write_text(yaml.safe_dump({
        "generator": generator, "subject": {"model_name": "Gemma", "provider_name": "Google"},
        "decompose": "headings", "counts": {**CORPUS_COUNTS, "documents": documents}, "lengths": lengths}))
    return MSM + ["generate", "corpus", "--spec", str(CHEESE_AMERICA), "--config", str(config), "--out", str(out)]


def wait_for_lines(path: Path, count: int, process: subprocess.Popen[str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        if path.exists() and len(path.read_text().splitlines()) >= count:
            return
        time.sleep(0.05)
    output = process.communicate(timeout=30) if process.poll() is not None else ("", "")
    raise AssertionError(f"{path} did not reach {count} lines in {timeout_s:g} s (worker: {output[1][-3000:]})")


def test_a_killed_corpus_command_resumes_and_asks_nothing_twice(vllm_server: VLLMTestServer, tmp_path: Path,
                                                                vllm_env: dict[str, str]) -> None:
    out = tmp_path / "run"
    generator = {"provider": "openai_compatible", "model": vllm_server.model_name, "base_url": vllm_server.base_url,
                 "base_model": True, "concurrency": 2, "price": {"input": 0.0, "output": 0.0}}
    first = subprocess.Popen(corpus_command(tmp_path, {**generator, "cache_path": str(tmp_path / "1.sqlite")}, out, 2),
                             env=vllm_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_lines(out / "steps" / "ideas.jsonl", 1, first, timeout_s=300)  # killed mid-stage
    first.send_signal(signal.SIGKILL)
    first.wait()
    logged = {path.stem: list(read_jsonl(path)) for path in (out / "steps").glob("*.jsonl")}
    assert logged["ideas"] and len(logged.get("documents", [])) < 2

    before = vllm_server.finished_requests()
    # A fresh response cache: what is resumed comes from the stage's own logs.
    second = subprocess.run(corpus_command(tmp_path, {**generator, "cache_path": str(tmp_path / "2.sqlite")}, out, 2),
                            env=vllm_env, capture_output=True, text=True, timeout=600)
    # A 270M model may have every document cut at max_tokens: the command then says so and exits 2, a finished
    # stage all the same (what is checked here is what the rerun asked and kept).
    finished = second.returncode == 0 or (second.returncode == 2 and "no documents were kept" in second.stderr)
    assert finished, second.stderr[-3000:]
    asked = vllm_server.finished_requests() - before
    after = {path.stem: list(read_jsonl(path)) for path in (out / "steps").glob("*.jsonl")}
    for step, records in logged.items():
        assert after[step][:len(records)] == records  # nothing answered before the kill was replaced
    new_records = sum(len(records) for records in after.values()) - sum(len(r) for r in logged.values())
    assert new_records <= asked <= new_records + 2  # plus at most the calls in flight at the kill
    stats = json.loads((out / "stats.json").read_text())
    assert stats["documents"]["kept"] + stats["documents"]["shortfall"] == 2


def processes_in_group(group: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == group:
                found.append(int(entry.name))
    return found


def test_provider_vllm_starts_its_own_server_and_stops_it_on_ctrl_c(vllm_models: VLLMModels, vllm_lease: ServerLease,
                                                                     tmp_path: Path, vllm_env: dict[str, str]) -> None:
    # Needs the shared server only started (vllm_lease), so it runs while that one loads.
    cache = tmp_path / "msm-cache"
    generator = {"provider": "vllm", "model": str(vllm_models.model_dir), "base_model": True,
                 "vllm": SERVER_SETTINGS.model_dump(mode="json"), "cache_path": str(tmp_path / "cache.sqlite")}
    process = subprocess.Popen(corpus_command(tmp_path, generator, tmp_path / "run", 2),
                               env={**vllm_env, "MSM_CACHE_DIR": str(cache)}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    # Ctrl-C once the stage's own server is up to its engine process (the API server and its engine core, one
    # process group); waiting for it to answer too would only add a minute of loading the model.
    groups: list[int] = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        logs = list((cache / "vllm").glob("server-*.log")) if (cache / "vllm").is_dir() else []
        groups = server_groups(int(logs[0].stem.rsplit("-", 1)[1])) if logs else []
        if groups and len(processes_in_group(groups[0])) >= 2:
            break
        time.sleep(0.2)
    assert groups and process.poll() is None, f"no vLLM server for the stage: {process.communicate()[1][-3000:]}"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode != 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and processes_in_group(groups[0]):
        time.sleep(0.2)
    assert not processes_in_group(groups[0]), f"the server outlived Ctrl-C: {stderr[-2000:]}"


def server_groups(port: int) -> list[int]:
    """The process groups (= the api_server's pid: it leads its own session) of vLLM servers on `port`."""
    groups = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"vllm.entrypoints.openai.api_server" in argv and str(port).encode() in argv:
            groups.append(os.getpgid(int(entry.name)))
    return groups


def test_the_agentic_eval_runs_through_inspects_openai_api_provider(vllm_server: VLLMTestServer,
                                                                    tmp_path: Path) -> None:
    model = ModelRef(model=f"openai-api/vllm/{vllm_server.model_name}", base_url=vllm_server.base_url)
    config = AgenticConfig(model=model, grader=model, scenarios=["exfiltration"], epochs=1, max_tokens=48,
                           grader_max_tokens=48, max_connections=2, model_name="Gemma")
    before = vllm_server.finished_requests()
    summary = run_agentic(config, tmp_path, display="none")
    records = load_records(tmp_path)
    assert len(records) == summary["conditions"] == 1 and records[0]["persona"] == "Gemma"
    assert vllm_server.finished_requests() - before >= 2  # the agent's transcript and at least one verdict
    usage = summary["usage"][f"openai-api/vllm/{vllm_server.model_name}"]
    assert 0 < usage["output_tokens"] <= 48 + 48 * 3 and usage["input_tokens"] > 1000  # the scenario's emails
    block = summary["by_scenario"]["exfiltration"]
    assert block["scored"] + block["errors"] == 1
    again = run_agentic(config, tmp_path, display="none")
    assert again["all"] == summary["all"]


def test_a_server_not_ready_by_its_deadline_is_stopped_and_says_where_its_log_is(vllm_models: VLLMModels,
                                                                                  vllm_lease: ServerLease,
                                                                                  tmp_path: Path) -> None:
    # Real vLLM takes far longer than 3 s to load; it must be stopped, not left loading. Runs while the shared
    # server loads (vllm_lease), so it costs the tier nothing but these seconds.
    server = VLLMServer(str(vllm_models.model_dir), SERVER_SETTINGS.model_copy(update={"startup_timeout_s": 3}),
                        log_path=tmp_path / "server.log").start()
    process = server.process
    assert process is not None
    with pytest.raises(VLLMServerError, match=r"not ready within 3 s \(vllm.startup_timeout_s\); its log is"):
        server.wait_ready()
    assert process.poll() is not None and not processes_in_group(process.pid)
