"""LLM-layer throughput and overhead against the test server (run in its own process).

    .venv/bin/python benchmarks/llm_layer.py [--requests 2000] [--concurrency 64] [--latency 0.1]

Targets (issue 2): wall time within 1.15x of requests/concurrency x latency; the layer's own CPU time
per request under 2 ms (client process CPU: our code + SDK + HTTP); cached answers > 5,000/s.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from msmkit.llm.client import LLMClient
from msmkit.llm.types import LLMConfig, LLMRequest


def start_server(latency: float) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen([sys.executable, "-m", "msmkit.testing.server", "--port", "0", "--latency", str(latency)],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.startswith("READY "):
        process.kill()
        raise RuntimeError(f"test server did not start: {line!r}")
    return process, line.split(" ", 1)[1]


async def measure(config: LLMConfig, count: int, warmup: int = 0) -> tuple[float, float]:
    """Wall and CPU seconds for `count` distinct requests, after `warmup` others (connections opened, the
    SDK's lazily built response models ready): the steady state a long generation run lives in."""
    requests = [LLMRequest.of(f"benchmark request {i}", max_tokens=64) for i in range(count)]
    async with LLMClient(config) as client:
        if warmup:
            await client.complete_many([LLMRequest.of(f"warm-up request {i}", max_tokens=64) for i in range(warmup)])
        cpu0, wall0 = time.process_time(), time.perf_counter()
        outcomes = await client.complete_many(requests)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    failures = sum(1 for o in outcomes if not hasattr(o, "text"))
    if failures:
        raise RuntimeError(f"{failures} requests failed")
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--cached-requests", type=int, default=20000)
    args = parser.parse_args()
    server, url = start_server(args.latency)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            config = LLMConfig(provider="openai_compatible", model="bench", base_url=f"{url}/v1",
                               concurrency=args.concurrency, cache_path=str(Path(scratch) / "cache.sqlite"))
            wall, cpu = asyncio.run(measure(config, args.requests, warmup=args.concurrency))
            ideal = args.requests / args.concurrency * args.latency
            print(f"uncached: {args.requests} requests, concurrency {args.concurrency}, latency {args.latency}s")
            print(f"  wall {wall:.2f}s, ideal {ideal:.2f}s, ratio {wall / ideal:.3f} (target <= 1.15)")
            print(f"  client CPU {cpu:.2f}s = {cpu / args.requests * 1000:.2f} ms/request (target < 2 ms)")
            # Cached: fill the cache for a larger set without latency, then time serving them.
            fill = config.model_copy(update={"concurrency": 256})
            asyncio.run(measure(fill, args.cached_requests))
            wall_cached, _ = asyncio.run(measure(fill, args.cached_requests))
            rate = args.cached_requests / wall_cached
            print(f"cached: {args.cached_requests} answers in {wall_cached:.2f}s = {rate:,.0f}/s (target > 5,000/s)")
    finally:
        server.kill()


if __name__ == "__main__":
    main()
