"""Independent stages at once, through submitit: worker processes on this machine (its LocalExecutor) or one
Slurm job per stage. The runner decides which stages are ready (every stage they need is done); this module
gives each a process with its own GPU(s) and reports when it ends. A job's worker reads its stage from the run
folder and writes its state there (see msmkit.experiment.worker), so the folder stays the one record of the run.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, TypeVar

import submitit
from pydantic import BaseModel

from msmkit.errors import ConfigError
from msmkit.experiment.config import ExecutorConfig, SlurmConfig
from msmkit.experiment.plan import Stage
from msmkit.experiment.runner import Finished
from msmkit.experiment.store import StageStore
from msmkit.experiment.worker import StageTask
from msmkit.llm.types import LLMConfig
from msmkit.stages.contract import Phase
from msmkit.stages.eval_engine import EvalEngine
from msmkit.stages.training import TrainJob

WORKERS_DIR = "workers"  # submitit's job files and each job's stdout/stderr, under the run folder
LOCAL_TIMEOUT_MIN = 30 * 24 * 60  # a local job has no real time limit
SERVED_HERE = ("local", "vllm")  # LLM providers whose weights run on the stage's own machine
# Model-phase kinds that only call an LLM judge (they read another stage's transcripts): no GPU of their own.
API_ONLY_MODEL_KINDS = frozenset({"eval-reasoning"})
T = TypeVar("T")


def _found(value: Any, wanted: type[T], depth: int = 0) -> Iterator[T]:
    """Every `wanted` inside a job (its generator, judge, eval engine, nested settings)."""
    if depth > 6:
        return
    if isinstance(value, wanted):
        yield value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _found(getattr(value, name), wanted, depth + 1)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for item in dataclasses.fields(value):
            yield from _found(getattr(value, item.name), wanted, depth + 1)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _found(item, wanted, depth + 1)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _found(item, wanted, depth + 1)


def stage_gpus(stage: Stage, executor: ExecutorConfig) -> int:
    """GPUs a stage needs: training and evaluating a local model take `gpus_per_stage` (an accelerate launch its
    num_processes, an eval whose model vLLM serves as many as the model is split over), a stage whose LLM runs
    here (local or vLLM) as many as the model is split over, an API-only stage none."""
    job = stage.job
    if isinstance(job, TrainJob) and job.launcher.kind == "accelerate":
        return max(executor.gpus_per_stage, job.launcher.num_processes or 1)
    if stage.kind.phase == Phase.MODEL and stage.kind.name not in API_ONLY_MODEL_KINDS:
        return max([executor.gpus_per_stage, *(engine.gpus() for engine in _found(job, EvalEngine))])
    served = [llm for llm in _found(job, LLMConfig) if llm.provider in SERVED_HERE]
    if served:
        return max([executor.gpus_per_stage, *(llm.vllm.tensor_parallel_size for llm in served if llm.vllm)])
    return 0


def visible_gpus() -> list[int]:
    """This machine's GPUs as CUDA numbers them, within CUDA_VISIBLE_DEVICES when it is set."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        entries = [entry.strip() for entry in listed.split(",") if entry.strip()]
        if not all(entry.isdigit() for entry in entries):
            raise ConfigError(f"CUDA_VISIBLE_DEVICES={listed!r} names GPUs by UUID: set executor.gpus to their "
                              "numbers (e.g. gpus: [0, 1])")
        return [int(entry) for entry in entries]
    import torch

    return list(range(torch.cuda.device_count()))


def slurm_parameters(key: str, gpus: int, slurm: SlurmConfig) -> dict[str, Any]:
    """submitit's SlurmExecutor parameters for one stage's job (every one set, so none leaks from the last job)."""
    return {
        "job_name": f"msm-{key}",
        "partition": slurm.partition if gpus else (slurm.cpu_partition or slurm.partition),
        "time": slurm.time_min,
        "nodes": 1,
        "ntasks_per_node": 1,
        "cpus_per_task": slurm.cpus_per_task,
        "gpus_per_node": gpus or None,
        "mem": f"{slurm.mem_gb:g}GB" if slurm.mem_gb else None,
        "account": slurm.account,
        "qos": slurm.qos,
        "constraint": slurm.constraint if gpus else None,  # node features name GPU nodes
        "setup": list(slurm.setup),
        "additional_parameters": dict(slurm.additional),
        "stderr_to_stdout": True,
    }


@dataclass
class _Running:
    stage: Stage
    job: Any  # a submitit Job
    gpus: list[int]
    submitted: float  # time.time() at submission


def _error_line(exc: Exception) -> str:
    """The telling line of a job's error: the last line of the traceback it carries (the exception raised in
    the worker), else its first line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    start = next((i for i, line in enumerate(lines) if line.startswith("Traceback")), None)
    if start is None:
        return lines[0]
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("---")), len(lines))
    return lines[end - 1]


class SubmititLauncher:
    """Starts ready stages as submitit jobs (local processes or Slurm jobs), at most `workers` at once, each GPU
    stage on GPUs no other running stage holds."""

    concurrent = True

    def __init__(self, config: ExecutorConfig, out: Path, store: StageStore, stages: list[Stage]) -> None:
        self.config, self.out, self.store = config, out, store
        folder = out / WORKERS_DIR / "%j"
        self.running: dict[str, _Running] = {}
        self.free: list[int] = []  # local: this machine's GPUs no running stage holds
        self.needs = {stage.key: stage_gpus(stage, config) for stage in stages}
        if config.kind == "local":
            self.executor: Any = submitit.LocalExecutor(folder, max_num_timeout=config.slurm.max_requeues)
            self.free = list(config.gpus) if config.gpus is not None else visible_gpus()
            self.pool_size = len(self.free)
            too_big = {key: n for key, n in self.needs.items() if self.free and n > len(self.free)}
            if too_big:
                raise ConfigError(f"executor: {len(too_big)} stage(s) need more GPUs than this machine gives the "
                                  f"run ({len(self.free)}: {self.free}), e.g. {next(iter(too_big))} needs "
                                  f"{next(iter(too_big.values()))}; lower executor.gpus_per_stage or the launcher's "
                                  "num_processes")
            cores = os.cpu_count() or 1
            self.threads = config.threads_per_worker or max(1, cores // config.workers)
        else:
            try:
                self.executor = submitit.SlurmExecutor(folder, max_num_timeout=config.slurm.max_requeues)
            except RuntimeError as exc:
                raise ConfigError(f"executor.kind slurm: {exc} Run `msm run` on a Slurm login node, or use "
                                  "executor.kind: local") from None
            self.pool_size = 0  # Slurm gives each job its GPUs
            self.threads = config.threads_per_worker or config.slurm.cpus_per_task

    def _gpus_here(self, key: str) -> int:
        """GPUs a stage takes from this machine's pool (none on a machine without GPUs, or under Slurm)."""
        return self.needs[key] if self.pool_size else 0

    def can_start(self, stage: Stage) -> bool:
        return len(self.running) < self.config.workers and self._gpus_here(stage.key) <= len(self.free)

    def start(self, stage: Stage) -> str:
        """Submit the stage; returns where it runs, for the console."""
        gpus = self.needs[stage.key]
        task = StageTask(str(self.out.resolve()), stage.key, self.threads)
        if self.config.kind == "local":
            taken = [self.free.pop(0) for _ in range(self._gpus_here(stage.key))]
            self.executor.update_parameters(timeout_min=LOCAL_TIMEOUT_MIN, gpus_per_node=len(taken),
                                            visible_gpus=tuple(taken))
            where = f"GPU {','.join(map(str, taken))}" if taken else "no GPU"
        else:
            taken = []
            self.executor.update_parameters(**slurm_parameters(stage.key, gpus, self.config.slurm))
            where = f"{gpus} GPU(s)" if gpus else "no GPU"
        job = self.executor.submit(task)
        self.running[stage.key] = _Running(stage, job, taken, time.time())
        return f"job {job.job_id}, {where}"

    def wait(self) -> list[Finished]:
        """Block until at least one running stage's job has ended; those stages, with their outcome."""
        while True:
            ended = [key for key, running in self.running.items() if running.job.done()]
            if ended:
                return [self._finish(key) for key in ended]
            time.sleep(self.config.poll_interval_s)

    def _finish(self, key: str) -> Finished:
        running = self.running.pop(key)
        self.free = sorted(self.free + running.gpus)
        log = Path(running.job.paths.stdout)
        try:
            result = running.job.result()
        except Exception as exc:  # the stage failed, or its worker died before it could say so
            record = self.store.record(key)
            if record.state == "done":
                return Finished(key, ran=True, seconds=record.seconds, log=log)
            failed = record.path / "failed.json"
            if record.state != "failed" or failed.stat().st_mtime < running.submitted - 1:  # not from this job
                died = isinstance(exc, submitit.core.utils.UncompletedJobError) and \
                    not isinstance(exc, submitit.core.utils.FailedJobError)  # no result: the process just ended
                what = "stopped before finishing the stage (killed, out of memory or its node lost)" if died \
                    else f"failed: {_error_line(exc)}"
                self.store.mark_lost(key, f"its worker (job {running.job.job_id}) {what}; its output is in {log}")
                record = self.store.record(key)
            return Finished(key, error=record.error or _error_line(exc), log=log)
        return Finished(key, ran=bool(result["ran"]), seconds=result["seconds"], log=log)

    def close(self) -> None:
        """Stop every job still running (the user interrupted the run); their stages resume on the next run."""
        for running in self.running.values():
            running.job.cancel(check=False)
        self.running.clear()
