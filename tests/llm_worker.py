"""Subprocess for cross-process tests: answers N requests through LLMClient, printing progress."""

from __future__ import annotations

import asyncio
import sys

from msmkit.llm.client import LLMClient
from msmkit.llm.types import LLMConfig, LLMRequest


async def main(base_url: str, cache_path: str, count: int, concurrency: int) -> None:
    config = LLMConfig(provider="openai_compatible", model="scripted", base_url=base_url,
                       cache_path=cache_path, concurrency=concurrency, retry_base_delay_s=0.05)
    async with LLMClient(config) as client:
        outcomes = await client.complete_many([LLMRequest.of(f"request {i}") for i in range(count)])
    failed = [o for o in outcomes if not hasattr(o, "text")]
    print(f"DONE answered={len(outcomes) - len(failed)} failed={len(failed)} "
          f"cached={sum(1 for o in outcomes if getattr(o, 'cached', False))}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
