"""A grid of 6 independent trainings and 12 evals on tiny models: `msm run` in process (the default) against the
local submitit executor with 2 workers, side by side in one run, with identical results required.

    .venv/bin/python benchmarks/grid.py [--epochs 10] [--items 8] [--workers 2]

The grid: 2 specs x 3 seeds of midtraining on a tiny Llama (6 trainings, each independent of the others), each
model scored by the values and capability evals (12 evals). The two MSM corpora are generated once beforehand
against the test server and copied into both run folders (content-addressed, so both runs reuse them): each
timed run executes exactly the same 18 stages. Reported per run: wall time, CPU time (this process and every
worker), the load average around it, and whether every eval's outputs and the report's results table match.
In process, torch may use every core; each worker gets cores / workers threads (the executor's default).

Figures (defaults: 10 epochs, 8 items; 2 CPU cores shared with other engineers' jobs; 1-minute load average as
printed before each case):
- in process 230.5 s wall (147.3 s CPU, load 3.25); local executor, 2 workers, 172.0 s wall (239.7 s CPU, load
  4.38): 1.34x faster, eval outputs and the report's 8 results rows identical. The ~90 s of extra CPU are the 18
  worker processes' own starts (about 5 s each, mostly importing torch, transformers and TRL).
- an earlier run under heavier, falling load (8.30 before in process, 5.20 before local): 598.5 s against
  258.7 s (2.31x, overstated by the falling load), identical results.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("MSM_NO_PROGRESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from msmkit.experiment.plan import plan_for  # noqa: E402
from msmkit.experiment.runner import run_experiment  # noqa: E402
from msmkit.experiment.store import StageStore  # noqa: E402
from msmkit.models.tiny import tiny_model_dir  # noqa: E402
from msmkit.stages.contract import Phase, StageEnv  # noqa: E402
from msmkit.testing import FakeLLMServer  # noqa: E402
from tests.experiment_script import ExperimentScript  # noqa: E402
from tests.spec_checks import CHEESE_AFFORDABILITY, CHEESE_AMERICA  # noqa: E402


def grid_config(server: FakeLLMServer, tiny: Path, epochs: float, items: int) -> dict[str, Any]:
    llm = {"provider": "openai_compatible", "model": "scripted", "base_url": server.openai_base_url,
           "api_key_env": "OPENAI_API_KEY", "concurrency": 8, "max_retries": 1, "timeout_s": 60}
    train = {"model": {"attn_implementation": "eager"}, "data": {"max_length": 96}, "lora": {"r": 8, "alpha": 16},
             "optim": {"learning_rate": 1e-3, "per_device_batch_size": 4, "epochs": epochs},
             "guards": {"allow_few_steps": True}}
    return {
        "name": "grid-benchmark", "base_model": str(tiny), "model_name": "Llama", "provider_name": "Meta",
        "seeds": [0, 1, 2], "specs": {"america": str(CHEESE_AMERICA), "affordability": str(CHEESE_AFFORDABILITY)},
        "generator": llm,
        "corpus": {"counts": {"domains": 2, "subdomains_per_domain": 1, "assertions_per_subdomain": 2,
                              "doc_types_per_subdomain": 1, "documents": 8},
                   "lengths": {"min_words": 30, "max_words": 600, "target_words": 80, "document_max_tokens": 2048}},
        "train": {"midtrain": train},
        "arms": [{"name": "america-msm", "midtrain": "america"},
                 {"name": "affordability-msm", "midtrain": "affordability"}],
        "evals": [{"suite": "values", "items": ["pro_america", "pro_affordability"], "limit": items},
                  {"suite": "capability", "limit": items, "window": 64, "stride": 32}],
    }


def generate_corpora(config_path: Path, out: Path) -> list[str]:
    """Run the plan's generation stages (the corpora) into `out`; their keys."""
    plan = plan_for(config_path, out)
    store = StageStore(plan.root)
    env = StageEnv(say=lambda message: None, load=lambda ref: store.outputs(ref.key))
    keys = []
    for stage in plan.ordered():
        if stage.kind.phase == Phase.GENERATION:
            store.run(stage.key, stage.kind.name, stage.key_inputs(),
                      lambda folder, stage=stage: stage.kind.run(stage.job, folder, env).summary())
            keys.append(stage.key)
    return keys


def results_table(report_md: Path) -> list[str]:
    text = report_md.read_text(encoding="utf-8")
    return text.split("## Results", 1)[1].split("\n\n", 2)[1].splitlines()[2:]


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed_run(config: dict[str, Any], executor: dict[str, Any], root: Path, generated: Path,
              corpora: list[str]) -> dict[str, Any]:
    name = executor["kind"]
    folder = root / name
    (folder / "stages").mkdir(parents=True)
    for key in corpora:
        shutil.copytree(generated / key, folder / "stages" / key)
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**config, "executor": executor}, sort_keys=False), encoding="utf-8")
    load_before, cpu_before, started = os.getloadavg(), cpu_seconds(), time.monotonic()
    outcome = run_experiment(path, folder, console=Console(file=io.StringIO()))
    wall, cpu = time.monotonic() - started, cpu_seconds() - cpu_before
    if outcome.failed or outcome.blocked:
        raise SystemExit(f"{name}: stages failed: {outcome.failed}")
    kinds = [key.rsplit("-", 1)[0] for key in outcome.executed]
    evals = {key: json.loads((folder / "stages" / key / "done.json").read_text())["outputs"]
             for key in outcome.executed if key.startswith("eval-")}
    return {"executor": name, "wall_s": wall, "cpu_s": cpu, "load_before": load_before, "load_after": os.getloadavg(),
            "trainings": kinds.count("midtrain"), "evals": len(evals), "reused": len(outcome.reused),
            "eval_outputs": evals, "results": results_table(outcome.report_md)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=float, default=10.0, help="midtraining epochs over each small corpus")
    parser.add_argument("--items", type=int, default=8, help="items per value set and capability questions")
    parser.add_argument("--workers", type=int, default=2)
    arguments = parser.parse_args()
    os.environ.setdefault("OPENAI_API_KEY", "sk-benchmark-grid")
    root = Path(tempfile.mkdtemp(prefix="msm-grid-"))
    os.environ.setdefault("MSM_CACHE_DIR", str(root / "cache"))
    tiny = tiny_model_dir(root / "tiny-models", "llama")
    with FakeLLMServer(ExperimentScript()) as server:
        config = grid_config(server, tiny, arguments.epochs, arguments.items)
        config_path = root / "generation.yaml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        corpora = generate_corpora(config_path, root / "generation")
        runs = [timed_run(config, {"kind": "inprocess"}, root, root / "generation" / "stages", corpora),
                timed_run(config, {"kind": "local", "workers": arguments.workers}, root,
                          root / "generation" / "stages", corpora)]
    inprocess, local = runs
    for run in runs:
        print(f"{run['executor']:>9}: {run['wall_s']:6.1f} s wall, {run['cpu_s']:6.1f} s CPU, "
              f"{run['trainings']} trainings + {run['evals']} evals run, {run['reused']} reused; load average "
              f"{run['load_before'][0]:.2f} before, {run['load_after'][0]:.2f} after")
    same_outputs = inprocess["eval_outputs"] == local["eval_outputs"]
    same_table = inprocess["results"] == local["results"]
    print(f"speed-up with {arguments.workers} workers: {inprocess['wall_s'] / local['wall_s']:.2f}x; "
          f"identical eval outputs: {same_outputs}; identical results table: {same_table} "
          f"({len(local['results'])} rows)")
    shutil.rmtree(root, ignore_errors=True)
    if not (same_outputs and same_table):
        raise SystemExit("the two runs disagree")


if __name__ == "__main__":
    main()
