"""`msm run` with `executor: {kind: local}`: stages at once as submitit worker processes (its LocalExecutor, real
subprocesses), on tiny models and the test server. Results equal the in-process run's; each GPU stage gets GPUs
no other running stage holds, API-only stages none; a worker SIGKILLed mid-stage leaves that stage failed and
its dependents skipped, and a rerun finishes them recomputing nothing that was done; stages that finish out of
plan order still start only after what they need. Also: the stage lock that tells a live worker from a dead one,
GPU needs by stage kind, and the sbatch a Slurm job would get."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from submitit.slurm.slurm import _make_sbatch_string

from msmkit.errors import ConfigError
from msmkit.experiment.config import ExecutorConfig, SlurmConfig, load_experiment
from msmkit.experiment.distributed import SubmititLauncher, slurm_parameters, stage_gpus
from msmkit.experiment.plan import build_plan
from msmkit.experiment.runner import run_experiment
from msmkit.experiment.store import StageStore
from msmkit.io import read_json
from msmkit.llm.vllm_settings import VLLMSettings
from msmkit.models.tiny import tiny_model_dir
from msmkit.stages.eval_engine import EvalEngine
from msmkit.testing import FakeLLMServer, ScriptedRequest
from tests.experiment_script import ExperimentScript
from tests.test_experiment_run import _results, experiment

KEY = "sk-test-distributed-0123456789"
ARMS = [{"name": "base"}, {"name": "america-msm-aft", "midtrain": "america", "aft": "shared"}]
EVALS = [{"suite": "values", "items": ["pro_america", "pro_affordability"], "limit": 4}]


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model_dir(tmp_path_factory.getbasetemp() / "tiny-models", "llama")


@dataclass
class Reference:
    results: list[str]
    calls: int  # LLM answers the whole grid asked for
    stages: set[str]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, tiny: Path) -> Reference:
    """The grid run in process, the default, with its own fresh LLM cache."""
    tmp = tmp_path_factory.mktemp("in-process")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPENAI_API_KEY", KEY)
        patch.setenv("MSM_CACHE_DIR", str(tmp / "cache"))
        with FakeLLMServer(ExperimentScript()) as server:
            outcome = run_experiment(experiment(tmp, server, tiny, arms=ARMS, seeds=(0,), evals=EVALS), tmp / "run")
            calls = server.stats.completions
    assert not outcome.failed and not outcome.blocked
    return Reference(_results(outcome.report_md), calls, set(outcome.executed))


def _with_executor(path: Path, llm_timeout_s: float | None = None, **executor: Any) -> Path:
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["executor"] = {"kind": "local", "workers": 2, "poll_interval_s": 0.2, **executor}
    if llm_timeout_s is not None:
        config["generator"]["timeout_s"] = llm_timeout_s
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def _done(out: Path) -> dict[str, dict[str, Any]]:
    """done.json of every finished stage, by key."""
    return {d.name: read_json(d / "done.json") for d in (out / "stages").iterdir() if (d / "done.json").exists()}


def _deps(out: Path) -> dict[str, list[str]]:
    return {s["key"]: s["deps"] for s in read_json(out / "plan.json")["stages"]}


def _assert_deps_finished_first(out: Path) -> None:
    done = _done(out)
    for key, deps in _deps(out).items():
        for dep in deps:
            assert done[key]["started"] >= done[dep]["finished"], (key, dep)


def test_two_workers_give_the_in_process_results_with_a_gpu_each_for_model_stages(tmp_path, tiny, reference):
    with FakeLLMServer(ExperimentScript()) as server:
        path = _with_executor(experiment(tmp_path, server, tiny, arms=ARMS, seeds=(0,), evals=EVALS), gpus=[0, 1])
        outcome = run_experiment(path, tmp_path / "run")
        assert server.stats.completions == reference.calls  # every answer asked for once, by the workers
    assert not outcome.failed and not outcome.blocked
    assert _results(outcome.report_md) == reference.results
    assert len(outcome.executed) == len(reference.stages)
    done = _done(tmp_path / "run")
    assert {d["worker"]["pid"] for d in done.values()}.isdisjoint({os.getpid()})  # each ran in a worker process
    assert all(d["worker"]["job_id"] for d in done.values())
    for key, record in done.items():  # CUDA_VISIBLE_DEVICES as the worker saw it
        model_stage = key.startswith(("midtrain-", "aft-", "eval-"))
        assert record["worker"]["gpus"] in (("0", "1") if model_stage else ("",)), (key, record["worker"])
    spans = [(d["started"], d["finished"], d["worker"]["gpus"]) for d in done.values() if d["worker"]["gpus"]]
    for first in spans:  # no GPU held by two stages at the same time
        for second in spans:
            if first is not second and first[0] < second[1] and second[0] < first[1]:
                assert first[2] != second[2], (first, second)
    _assert_deps_finished_first(tmp_path / "run")
    assert not any((tmp_path / "run" / "stages").glob("*/running.json"))


def _spawn_run(path: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "from msmkit.cli.app import main; main()", "run", str(path),
                             "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, start_new_session=True)


def _running_midtrain(out: Path) -> dict[str, Any] | None:
    for folder in (out / "stages").glob("midtrain-*"):
        if (folder / "running.json").exists() and not (folder / "done.json").exists():
            return {"key": folder.name, **read_json(folder / "running.json")}
    return None


def test_a_worker_killed_mid_stage_fails_only_that_branch_and_a_rerun_finishes_it(tmp_path, tiny, reference):
    out = tmp_path / "run"
    with FakeLLMServer(ExperimentScript()) as server:
        path = _with_executor(experiment(tmp_path, server, tiny, arms=ARMS, seeds=(0,), evals=EVALS))
        process = _spawn_run(path, out)
        deadline = time.monotonic() + 400
        while (worker := _running_midtrain(out)) is None:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "no worker ever started the midtraining stage"
            time.sleep(0.1)
        assert worker["pid"] != process.pid
        os.kill(worker["pid"], signal.SIGKILL)  # the worker alone: `msm run` and the other worker go on
        _, stderr = process.communicate(timeout=400)
        assert process.returncode == 1, stderr  # a failed stage: msm run says so in its exit status
        killed = StageStore(out / "stages").record(worker["key"])
        assert killed.state == "failed" and "stopped before finishing the stage" in (killed.error or "")
        done_before = set(_done(out))
        assert done_before and worker["key"] not in done_before
        dependents = {key for key, deps in _deps(out).items() if worker["key"] in deps}
        assert dependents and not dependents & done_before  # its AFT (and that model's evals) were skipped
        assert any(key.startswith("eval-") for key in done_before)  # ... while the other branches finished

        # The rerun here goes in process (quicker to start): the folder alone says what is left, whoever runs it.
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
        again = tmp_path / "in-process.yaml"
        again.write_text(yaml.safe_dump({**config, "executor": {"kind": "inprocess"}}, sort_keys=False),
                         encoding="utf-8")  # in the same order: the first spec is the shared AFT set's
        resumed = run_experiment(again, out)
        assert server.stats.completions == reference.calls  # no LLM answer was asked for twice
    assert not resumed.failed and not resumed.blocked
    assert done_before <= set(resumed.reused) and not set(resumed.executed) & done_before
    assert worker["key"] in resumed.executed and dependents <= set(resumed.executed)
    assert set(resumed.executed) | set(resumed.reused) == set(_deps(out)) and len(_deps(out)) == len(reference.stages)
    assert _results(resumed.report_md) == reference.results
    _assert_deps_finished_first(out)


def test_stages_finishing_out_of_plan_order_still_wait_for_what_they_need(tmp_path, tiny) -> None:
    """The america corpus is planned first, but its answers are held until the affordability model is trained:
    the affordability branch overtakes it, and nothing starts before its dependencies are done."""
    out = tmp_path / "run"
    script = ExperimentScript()
    overtaker: list[Path] = []  # the affordability midtraining's done.json, once the plan names it

    async def responder(request: ScriptedRequest) -> Any:
        deadline = time.monotonic() + 330
        while "An American Loyalty Spec" in request.text and not (overtaker and overtaker[0].exists()):
            assert time.monotonic() < deadline, "the affordability branch never overtook the america corpus"
            await asyncio.sleep(0.2)
        return script(request)

    arms = [{"name": "america-msm", "midtrain": "america"}, {"name": "affordability-msm", "midtrain": "affordability"}]
    with FakeLLMServer(responder) as server:
        path = _with_executor(experiment(tmp_path, server, tiny, arms=arms, seeds=(0,),
                                         evals=[{"suite": "values", "items": ["pro_america"], "limit": 2}]),
                              llm_timeout_s=360)  # the held answers wait that long at most
        stages = build_plan(load_experiment(path), path, out / "stages").ordered()
        planned, keys = [stage.label for stage in stages], {stage.label: stage.key for stage in stages}
        overtaker.append(out / "stages" / keys["midtrain on affordability corpus, seed 0"] / "done.json")
        outcome = run_experiment(path, out)
    assert not outcome.failed and not outcome.blocked
    labels = {key: label for label, key in keys.items()}
    finished = [labels[key] for key in outcome.executed]  # the order stages finished in
    assert planned.index("MSM corpus from spec america") < planned.index("midtrain on affordability corpus, seed 0")
    assert finished.index("midtrain on affordability corpus, seed 0") < finished.index("MSM corpus from spec america")
    _assert_deps_finished_first(out)


_HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from msmkit.experiment.store import StageStore
    root, release = Path(sys.argv[1]), Path(sys.argv[2])
    def work(folder):
        (folder / "partial.txt").write_text("half")
        while not release.exists():
            time.sleep(0.05)
        return {"answer": 42}
    StageStore(root).run("corpus-0123456789abcdef", "corpus", {}, work, where={"job_id": "holder"})
""")


def _holder(tmp_path: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path / "stages"), str(tmp_path / "release")])


def _wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_a_stage_is_running_while_its_worker_lives_and_pending_once_it_is_killed(tmp_path) -> None:
    store, key = StageStore(tmp_path / "stages"), "corpus-0123456789abcdef"
    holder = _holder(tmp_path)
    _wait_for(lambda: (store.path(key) / "partial.txt").exists(), "the holder never started its stage")
    assert store.record(key).state == "running"
    running = read_json(store.path(key) / "running.json")
    assert running["pid"] == holder.pid and running["job_id"] == "holder" and running["host"]
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (store.path(key) / "running.json").exists()  # left behind, yet its process is gone:
    assert store.record(key).state == "pending"
    assert store.mark_lost(key, "its worker stopped") and store.record(key).state == "failed"
    record = store.run(key, "corpus", {}, lambda folder: {"resumed_from": (folder / "partial.txt").read_text()})
    assert record.ran and record.outputs == {"resumed_from": "half"}  # the rerun sees the partial work
    assert not store.mark_lost(key, "too late") and store.record(key).state == "done"


def test_a_second_process_waits_for_the_live_one_and_finds_the_stage_done(tmp_path) -> None:
    store, key = StageStore(tmp_path / "stages"), "corpus-0123456789abcdef"
    holder = _holder(tmp_path)
    _wait_for(lambda: store.record(key).state == "running", "the holder never started its stage")
    told: list[dict[str, Any]] = []

    def release(worker: dict[str, Any]) -> None:
        told.append(worker)
        (tmp_path / "release").touch()

    record = store.run(key, "corpus", {}, lambda folder: pytest.fail("the stage ran twice"), on_wait=release)
    assert holder.wait(timeout=60) == 0
    assert told and told[0]["pid"] == holder.pid
    assert record.state == "done" and not record.ran and record.outputs == {"answer": 42}


def test_gpus_go_to_training_and_local_model_stages_only(tmp_path, tiny) -> None:
    with FakeLLMServer(ExperimentScript()) as server:
        path = experiment(tmp_path, server, tiny, arms=ARMS, seeds=(0,),
                          evals=[*EVALS, {"suite": "agentic", "agentic": {"scenarios": ["exfiltration"], "epochs": 1}},
                                 {"suite": "reasoning"}])
        config = load_experiment(path)
    executor = ExecutorConfig(kind="local", gpus_per_stage=2)
    needs = {stage.kind.name: stage_gpus(stage, executor) for stage in build_plan(config, path, tmp_path).ordered()}
    assert needs == {"corpus": 0, "aftdata": 0, "midtrain": 2, "aft": 2, "eval-values": 2, "eval-agentic": 2,
                     "eval-reasoning": 0}
    served = config.generator.model_copy(update={"provider": "local", "model": str(tiny)})
    local = config.model_copy(update={"generator": served,
                                      "launcher": config.launcher.model_copy(update={"kind": "accelerate",
                                                                                     "num_processes": 4})})
    needs = {stage.kind.name: stage_gpus(stage, executor) for stage in build_plan(local, path, tmp_path).ordered()}
    assert needs["corpus"] == needs["aftdata"] == 2  # a local generator runs on the stage's GPUs
    assert needs["midtrain"] == needs["aft"] == 4  # an accelerate launch takes one GPU per process
    assert needs["eval-reasoning"] == 2  # its judge defaults to the (now local) generator
    engine = EvalEngine(kind="vllm", vllm=VLLMSettings(tensor_parallel_size=4))
    served_evals = config.model_copy(update={"eval_engine": engine})
    needs = {stage.kind.name: stage_gpus(stage, executor)
             for stage in build_plan(served_evals, path, tmp_path).ordered()}
    assert needs["eval-agentic"] == 4  # its model's vLLM server is split over 4 GPUs
    assert needs["eval-values"] == needs["midtrain"] == 2 and needs["eval-reasoning"] == 0  # scored in process
    with pytest.raises(ConfigError, match="need more GPUs than this machine gives the run"):
        SubmititLauncher(ExecutorConfig(kind="local", gpus=[0, 1]), tmp_path, StageStore(tmp_path / "stages"),
                         build_plan(local, path, tmp_path).ordered())


def test_a_slurm_job_asks_for_its_stage_gpus_on_the_configured_partition(tmp_path) -> None:
    slurm = SlurmConfig(partition="gpu", cpu_partition="cpu", time_min=600, cpus_per_task=12, mem_gb=64,
                        account="lab", constraint="h100", setup=["source .venv/bin/activate"],
                        additional={"exclude": "node7"})
    gpu_job = _make_sbatch_string(command="python -m worker", folder=str(tmp_path),
                                  **slurm_parameters("aft-0123", 2, slurm))
    for line in ("#SBATCH --partition=gpu", "#SBATCH --gpus-per-node=2", "#SBATCH --time=600",
                 "#SBATCH --cpus-per-task=12", "#SBATCH --mem=64GB", "#SBATCH --account=lab",
                 "#SBATCH --constraint=h100", "#SBATCH --exclude=node7", "#SBATCH --job-name=msm-aft-0123",
                 "source .venv/bin/activate"):
        assert line in gpu_job, line
    api_job = _make_sbatch_string(command="python -m worker", folder=str(tmp_path),
                                  **slurm_parameters("corpus-0123", 0, slurm))
    assert "#SBATCH --partition=cpu" in api_job
    assert "gpus" not in api_job and "constraint" not in api_job
