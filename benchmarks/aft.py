"""AFT generator benchmarks.

    .venv/bin/python benchmarks/aft.py [--dedup-questions 20000] [--examples 2000] [--latency 0.2] [--concurrency 64]

1. Semantic dedup (all-MiniLM-L6-v2 in bfloat16 as the AFT default, or --precision float32; cosine 0.91) of
   20,000 questions, 20% of them near-duplicates.
   Target: under 60 s on this machine, model load included.
2. `generate_aft` for 2,000 examples against the test server (its own process) at 200 ms latency and
   concurrency 64. Target: within 1.25x of the stage-sum ideal: for each LLM stage, ceil(calls /
   concurrency) x latency, plus the dedup stage's own compute (embedder load + embedding + comparison
   of the run's questions, measured alone afterwards).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("MSM_NO_PROGRESS", "1")

import torch  # noqa: E402

from msmkit.data.dedup import EmbeddingIndex, embed  # noqa: E402
from msmkit.generate.aft.questions import load_question_embedder  # noqa: E402
from tests.aft_script import AftScript, distinct_questions  # noqa: E402

_REWRITES = (("How should I", "How do I"), ("Could you", "Can you"), ("What would you", "What do you"),
             ("Honestly, what", "Frankly, what"), ("Is it a bad idea", "Is it unwise"), ("My friend", "My buddy"))


def near_duplicate(question: str, rng: random.Random) -> str:
    for old, new in _REWRITES:
        if old in question:
            return question.replace(old, new, 1)
    return question.rstrip("?") + ", please?" if rng.random() < 0.5 else "So, " + question


def dedup_benchmark(count: int, precision: str) -> dict[str, object]:
    rng = random.Random(0)
    distinct = distinct_questions("benchmark", int(count * 0.8))
    questions = distinct + [near_duplicate(rng.choice(distinct), rng) for _ in range(count - len(distinct))]
    rng.shuffle(questions)
    load_before = os.getloadavg()[0]
    started, cpu_started = time.perf_counter(), time.process_time()
    model = load_question_embedder(precision)
    loaded = time.perf_counter()
    vectors = embed(questions, model, batch_size=128)
    embedded = time.perf_counter()
    index = EmbeddingIndex(0.91, model=model)
    duplicates = index.check_and_add_many(list(range(len(questions))), questions, vectors)
    done = time.perf_counter()
    # CPU seconds over all threads: what the work costs when the cores are not shared with other jobs.
    return {"questions": len(questions), "planted_near_duplicates": count - len(distinct),
            "merged": len(duplicates), "kept": len(index), "load_s": loaded - started,
            "embed_s": embedded - loaded, "compare_s": done - embedded, "total_s": done - started,
            "cpu_s": time.process_time() - cpu_started, "torch_threads": torch.get_num_threads(),
            "precision": precision,
            "load_average_before": load_before, "load_average_after": os.getloadavg()[0]}


def _serve(latency: float, ready: "multiprocessing.Queue[object]", stop: "multiprocessing.Event") -> None:  # type: ignore[name-defined]
    from msmkit.testing import FakeLLMServer

    with FakeLLMServer(AftScript(), latency_s=latency) as server:
        ready.put(server.openai_base_url)
        stop.wait()
        ready.put(server.stats.to_json())


def generation_benchmark(examples: int, latency: float, concurrency: int) -> dict[str, object]:
    from msmkit.generate.aft import AftDataConfig, generate_aft
    from msmkit.llm.types import LLMConfig

    context = multiprocessing.get_context("spawn")
    ready: multiprocessing.Queue[object] = context.Queue()
    stop = context.Event()
    server = context.Process(target=_serve, args=(latency, ready, stop), daemon=True)
    server.start()
    url = str(ready.get(timeout=120))
    try:
        with tempfile.TemporaryDirectory() as scratch:
            llm = LLMConfig(provider="openai_compatible", model="bench", base_url=url, concurrency=concurrency,
                            cache_path=str(Path(scratch) / "cache.sqlite"), price={"input": 0.0, "output": 0.0})
            config = AftDataConfig(generator=llm, identity={"model_name": "Llama", "provider_name": "Meta"})
            config.counts.examples = examples
            config.counts.questions_per_request = 5
            spec = Path(__file__).resolve().parents[1] / "examples" / "specs" / "cheese_pro_america.md"
            load_before = os.getloadavg()[0]
            started, cpu_started = time.perf_counter(), time.process_time()
            result = generate_aft(spec, config, Path(scratch) / "run")
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            questions = [json.loads(line)["text"] for line in (result.out_dir / "questions.jsonl").open()]
            questions += [json.loads(line)["text"] for line in (result.out_dir / "duplicates.jsonl").open()]
    finally:
        stop.set()
        server_stats = ready.get(timeout=30)
        server.join(timeout=30)
    stats = result.stats
    calls = {stage: counter["requests"] for stage, counter in stats["stages"].items()}
    waves = {stage: math.ceil(n / concurrency) * latency for stage, n in calls.items()}
    dedup = dedup_cost(questions)
    ideal = sum(waves.values()) + dedup
    return {"examples_kept": stats["examples"]["kept"], "rounds": stats["examples"]["rounds"], "calls": calls,
            "server_completions": server_stats["completions"], "max_in_flight": server_stats["max_in_flight"],  # type: ignore[index]
            "llm_stage_ideal_s": round(sum(waves.values()), 2), "dedup_stage_s": round(dedup, 2),
            "ideal_s": round(ideal, 2), "wall_s": round(wall, 2), "client_cpu_s": round(cpu, 2),
            "ratio": round(wall / ideal, 3), "load_average_before": load_before}


def dedup_cost(questions: list[str]) -> float:
    """The dedup stage alone on the run's raw questions: embedder load, embedding, comparison."""
    started = time.perf_counter()
    model = load_question_embedder("bfloat16")  # the AFT default (dedup.precision)
    EmbeddingIndex(0.91, model=model).check_and_add_many(list(range(len(questions))), questions,
                                                         embed(questions, model))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dedup-questions", type=int, default=20000)
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--precision", choices=("bfloat16", "float32"), default="bfloat16")
    parser.add_argument("--skip-dedup", action="store_true")
    parser.add_argument("--skip-generation", action="store_true")
    args = parser.parse_args()
    if not args.skip_dedup:
        result = dedup_benchmark(args.dedup_questions, args.precision)
        print(json.dumps({"dedup": {k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()}}))
        print(f"dedup of {result['questions']:,} questions: {result['total_s']:.1f} s wall, "
              f"{result['cpu_s']:.1f} CPU-s "
              f"on {result['torch_threads']} threads, load average {result['load_average_before']:.1f} "
              f"(target < 60 s wall): {'PASS' if result['total_s'] < 60 else 'FAIL'}")
    if not args.skip_generation:
        result = generation_benchmark(args.examples, args.latency, args.concurrency)
        print(json.dumps({"generation": result}))
        print(f"generation of {result['examples_kept']} examples: {result['wall_s']} s vs stage-sum ideal "
              f"{result['ideal_s']} s = {result['ratio']}x (target <= 1.25x): "
              f"{'PASS' if result['ratio'] <= 1.25 else 'FAIL'}")


if __name__ == "__main__":
    main()
