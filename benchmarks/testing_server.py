"""Test-server throughput and per-request server CPU (the server runs in its own process).

    .venv/bin/python benchmarks/testing_server.py [--requests 2000] [--concurrency 64] [--latency 0.1]
                                                  [--client sdk|raw]

Reports wall time against the ideal requests / concurrency x latency, and the server process's CPU
time per request (from /proc, Linux only). `--client sdk` drives openai.AsyncOpenAI (what the LLM layer
uses); `--client raw` uses a bare aiohttp client, to see the server's own ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

import aiohttp
import openai

from msmkit.testing import FakeServerProcess


def process_cpu_s(pid: int) -> float | None:
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


async def drive(url: str, count: int, concurrency: int, client_kind: str, stream: bool) -> None:
    gate = asyncio.Semaphore(concurrency)
    if client_kind == "sdk":
        async with openai.AsyncOpenAI(api_key="bench", base_url=f"{url}/v1", max_retries=0) as client:
            async def one(i: int) -> None:
                async with gate:
                    messages = [{"role": "user", "content": f"benchmark request {i}"}]
                    if stream:
                        async for _ in await client.chat.completions.create(model="m", messages=messages,
                                                                            max_tokens=64, stream=True):
                            pass
                    else:
                        await client.chat.completions.create(model="m", messages=messages, max_tokens=64)
            await asyncio.gather(*(one(i) for i in range(count)))
        return
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def one_raw(i: int) -> None:
            async with gate:
                body = {"model": "m", "max_tokens": 64, "stream": stream,
                        "messages": [{"role": "user", "content": f"benchmark request {i}"}]}
                async with session.post(f"{url}/v1/chat/completions", json=body) as response:
                    response.raise_for_status()
                    await response.read()
        await asyncio.gather(*(one_raw(i) for i in range(count)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--client", choices=("sdk", "raw"), default="sdk")
    parser.add_argument("--stream", action="store_true")
    args = parser.parse_args()
    with FakeServerProcess(latency_s=args.latency) as server:
        assert server.process is not None
        cpu0 = process_cpu_s(server.process.pid)
        started = time.perf_counter()
        asyncio.run(drive(server.url, args.requests, args.concurrency, args.client, args.stream))
        wall = time.perf_counter() - started
        cpu1 = process_cpu_s(server.process.pid)
        stats = server.stats()
    ideal = args.requests / args.concurrency * args.latency
    print(f"{args.requests} requests, concurrency {args.concurrency}, latency {args.latency}s, client {args.client}"
          f"{' (streamed)' if args.stream else ''}")
    print(f"  wall {wall:.2f}s, ideal {ideal:.2f}s, ratio {wall / ideal if ideal else float('nan'):.3f}")
    if cpu0 is not None and cpu1 is not None:
        print(f"  server CPU {cpu1 - cpu0:.2f}s = {(cpu1 - cpu0) / args.requests * 1000:.2f} ms/request")
    print(f"  server saw {stats['completions']} completions, max in flight {stats['max_in_flight']}")


if __name__ == "__main__":
    main()
