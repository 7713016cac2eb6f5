"""Corpus pipeline throughput: 1,000 documents against the test server at 200 ms latency, concurrency 64.

The server runs in its own process (so it shares neither GIL nor CPU accounting with the pipeline) and
answers every corpus prompt with scripted, distinct answers. Reports wall time against the stage-sum
ideal (sum over stages of ceil(calls / 64) x latency) and the pipeline process's CPU time per document.

    .venv/bin/python benchmarks/corpus.py [--documents 1000] [--latency 0.2] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SPEC = ROOT.parent / "shared" / "paper_specs" / "pro_america_cheese.txt"


def serve(latency: float) -> None:
    """Child process: the test server with the scripted corpus responder."""
    import signal
    import threading

    from msmkit.testing import FakeLLMServer
    from tests.corpus_script import CorpusScript

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with FakeLLMServer(CorpusScript(doc_words=400), latency_s=latency) as server:
        print(f"READY {server.openai_base_url}", flush=True)
        done.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--documents", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--spec", default=str(SPEC))
    args = parser.parse_args()
    if args.serve:
        serve(args.latency)
        return
    os.environ.setdefault("MSM_NO_PROGRESS", "1")
    os.environ.setdefault("OPENAI_API_KEY", "sk-benchmark")
    server = subprocess.Popen([sys.executable, __file__, "--serve", "--latency", str(args.latency)],
                              stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline().strip()  # type: ignore[union-attr]
        assert line.startswith("READY "), line
        run_benchmark(line.split(" ", 1)[1], args)
    finally:
        server.terminate()
        server.wait()


def run_benchmark(base_url: str, args: argparse.Namespace) -> None:
    from msmkit.generate.corpus import CorpusConfig, generate_corpus_async
    from tests.corpus_script import config_dict

    # Import once up front what the run imports lazily (SDK, datasets, matplotlib): process start-up,
    # not pipeline work. Their first-import cost on this machine is printed separately.
    started = time.perf_counter()
    import datasets  # noqa: F401
    import matplotlib.pyplot  # noqa: F401

    import msmkit.llm.openai_backend  # noqa: F401
    import_s = time.perf_counter() - started

    domains, subdomains_per_domain, types = 5, 4, 5
    cells = domains * subdomains_per_domain * types
    with tempfile.TemporaryDirectory() as tmp:
        data = config_dict(base_url, f"{tmp}/cache.sqlite",
                           counts={"domains": domains, "subdomains_per_domain": subdomains_per_domain,
                                   "assertions_per_subdomain": 6, "doc_types_per_subdomain": types,
                                   "documents": args.documents},
                           lengths={"min_words": 50, "max_words": 2000, "target_words": 400,
                                    "document_max_tokens": 2048})
        data["generator"].update(concurrency=args.concurrency, max_retries=2, timeout_s=60)
        config = CorpusConfig.model_validate(data)
        cpu_before, wall_before = time.process_time(), time.perf_counter()
        result = asyncio.run(generate_corpus_async(args.spec, config, Path(tmp) / "run"))
        wall = time.perf_counter() - wall_before
        cpu = time.process_time() - cpu_before
        stats = result.stats or {}
    calls = {"domains": 1, "subdomains": domains, "assertions": domains * subdomains_per_domain,
             "doc_types": domains * subdomains_per_domain, "ideas": min(cells, args.documents),
             "documents": args.documents}
    ideal = sum(math.ceil(n / args.concurrency) * args.latency for n in calls.values())
    generation = stats["elapsed_s"]
    kept = stats["documents"]["kept"]
    report = {
        "documents_kept": kept, "calls_per_stage": calls, "ideal_s": round(ideal, 2),
        "generation_wall_s": generation, "generation_vs_ideal": round(generation / ideal, 3),
        "total_wall_s_including_outputs": round(wall, 2), "total_vs_ideal": round(wall / ideal, 3),
        "stage_seconds": stats["stage_seconds"],
        "lazy_imports_s_not_counted": round(import_s, 2),
        "process_cpu_s": round(cpu, 2), "cpu_ms_per_document": round(1000 * cpu / max(kept, 1), 2),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
