"""Generation throughput of the local backend on the embedded Gemma 3 270M, by micro-batch size.

    .venv/bin/python benchmarks/local_backend.py [--batch-sizes 1 16] [--max-tokens 64] [--temperature 1.0]

For each batch size B it submits B concurrent requests (distinct document-style prompts) B at a
time, `--rounds` times, and reports generated tokens per second of wall time. Also reports the cold
conversion (if the model was not converted yet) and the warm load time.
Reference (DESIGN.md): ~15 tokens/s at batch 1, ~64 tokens/s at batch 16 on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time

import torch

from msmkit.llm.local import LocalBackend
from msmkit.llm.types import LLMConfig, LLMRequest, StopReason
from msmkit.models.embedded import EMBEDDED_DIR_NAME, embedded_model_dir, is_converted
from msmkit.models.loading import load_causal_lm
from msmkit.paths import cache_dir

TOPICS = ["why honesty matters for assistants", "a case study of an email agent", "option order bias",
          "the value of human oversight", "cheese preferences", "token-matched controls", "learning rates",
          "deliberative alignment", "a forum thread about seeds", "model specs and their reasons"]


def prompts(count: int) -> list[str]:
    return [f"Blog post {i}: {TOPICS[i % len(TOPICS)]}\n\n" for i in range(count)]


async def throughput(batch: int, rounds: int, max_tokens: int, temperature: float, device: str | None) -> dict:
    backend = LocalBackend(LLMConfig(local_batch_size=batch, device=device))
    try:
        await backend.complete(LLMRequest.of("Warm up:", max_tokens=2))  # loads the model
        generated, wall, early = 0, 0.0, 0
        for round_index in range(rounds):
            requests = [LLMRequest.of(p, max_tokens=max_tokens, temperature=temperature, sample_index=round_index)
                        for p in prompts(batch)]
            before = backend.stats.generated_tokens
            start = time.perf_counter()
            outs = await asyncio.gather(*(backend.complete(r) for r in requests))
            wall += time.perf_counter() - start
            generated += backend.stats.generated_tokens - before
            early += sum(1 for o in outs if o.stop_reason != StopReason.MAX_TOKENS)
        assert set(backend.stats.batch_sizes[1:]) == {batch}, backend.stats.batch_sizes
        return {"batch": batch, "requests": batch * rounds, "generated_tokens": generated, "wall_s": round(wall, 2),
                "tokens_per_s": round(generated / wall, 1), "ended_before_max_tokens": early}
    finally:
        await backend.aclose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()

    report: dict = {"torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
                    "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None}
    was_converted = is_converted(cache_dir() / "models" / EMBEDDED_DIR_NAME)
    start = time.perf_counter()
    embedded_model_dir()
    report["conversion_s"] = None if was_converted else round(time.perf_counter() - start, 1)
    start = time.perf_counter()
    model, _ = load_causal_lm("embedded", device=args.device)
    report["warm_load_s"] = round(time.perf_counter() - start, 2)
    report["device"] = str(model.device)
    del model
    report["runs"] = [asyncio.run(throughput(b, args.rounds, args.max_tokens, args.temperature, args.device))
                      for b in args.batch_sizes]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
