"""One stage of an experiment run in its own process: what each job of a distributed executor runs.

`python -m msmkit.experiment.worker RUN_DIR STAGE_KEY` does the same by hand. The worker reads everything
from the run folder (the config named in its plan.json, the stage folders of the stages it needs), so it can
run on any machine that sees the folder; its result is the stage folder itself (done.json or failed.json).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from submitit.helpers import Checkpointable

from msmkit.errors import MsmError
from msmkit.experiment.layout import PLAN_FILE
from msmkit.experiment.plan import Plan, Stage, plan_for
from msmkit.experiment.store import StageStore
from msmkit.io import read_json
from msmkit.models.model_cache import ModelCache
from msmkit.runs import LOG_FILE
from msmkit.secrets import redact
from msmkit.stages.contract import StageEnv, StageFailed


def stage_of(out: Path, key: str) -> tuple[Plan, Stage]:
    """The plan of the run folder `out` (from the config its plan.json names) and its stage `key`."""
    plan_path = out / PLAN_FILE
    if not plan_path.is_file():
        raise MsmError(f"{out}: not an experiment run folder (no {PLAN_FILE}); `msm run` writes it before any stage")
    config = Path(read_json(plan_path)["config"])
    if not config.is_file():
        raise MsmError(f"{plan_path} names the config {config}, which is gone: put it back, or rerun `msm run`")
    plan = plan_for(config, out)
    if key not in plan.stages:
        raise MsmError(f"stage {key} is not in the plan of {config} any more (the config changed after the run "
                       "was planned); rerun `msm run` to plan it again")
    return plan, plan.stages[key]


def _job_id() -> str | None:
    return os.environ.get("SLURM_JOB_ID") or os.environ.get("SUBMITIT_LOCAL_JOB_ID")


def _run_log(out: Path) -> logging.Logger:
    """The run's log.txt, appended to (each line in one write, so workers' lines never mix)."""
    logger = logging.getLogger(f"msmkit.worker.{out.resolve()}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if not logger.handlers:
        handler = logging.FileHandler(out / LOG_FILE, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
    return logger


def run_stage(run_dir: str | Path, key: str, *, threads: int | None = None) -> dict[str, Any]:
    """Run stage `key` of the run folder `run_dir` unless it is done; every stage it needs must be done.
    Returns {key, ran (False: it was done already), seconds}."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
        os.environ["OMP_NUM_THREADS"] = str(threads)  # for the processes a stage starts (accelerate launch)
    out = Path(run_dir)
    plan, stage = stage_of(out, key)
    store = StageStore(plan.root)
    missing = {dep: store.record(dep).state for dep in stage.deps if store.record(dep).state != "done"}
    if missing:
        raise StageFailed(f"stage {key} needs stages that are not done: "
                          + ", ".join(f"{dep} ({state})" for dep, state in missing.items()))
    log = _run_log(out)

    def say(message: str) -> None:
        print(redact(message), flush=True)  # into the job's own log, under the run's workers/ folder
        log.info(redact(f"{stage.label}: {message}"))

    def waiting(worker: dict[str, Any]) -> None:
        say(f"waiting: another process works in this stage ({json.dumps(worker)})")

    env = StageEnv(say=say, load=lambda ref: store.outputs(ref.key), services={ModelCache: ModelCache()})
    say(f"started ({store.path(key)}, CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')!r})")
    record = store.run(key, stage.kind.name, stage.key_inputs(),
                       lambda folder: stage.kind.run(stage.job, folder, env).summary(),
                       where={"job_id": _job_id(), "gpus": os.environ.get("CUDA_VISIBLE_DEVICES")}, on_wait=waiting)
    env.services[ModelCache].release()
    return {"key": key, "ran": record.ran, "seconds": record.seconds}


class StageTask(Checkpointable):
    """A submitit job that runs one stage. A preempted or timed-out job is requeued as it is: the stage resumes
    its own partial work there."""

    def __init__(self, run_dir: str, key: str, threads: int | None = None) -> None:
        self.run_dir, self.key, self.threads = run_dir, key, threads

    def __call__(self) -> dict[str, Any]:
        return run_stage(self.run_dir, self.key, threads=self.threads)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m msmkit.experiment.worker", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="the experiment's run folder (the --out of `msm run`)")
    parser.add_argument("stage_key", help="the stage to run, as named in the folder's plan.json")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    arguments = parser.parse_args(argv)
    try:
        result = run_stage(arguments.run_dir, arguments.stage_key, threads=arguments.threads)
    except MsmError as exc:
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
