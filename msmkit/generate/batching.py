"""Provider batch APIs under item-by-item generation: a step's requests that become ready together go as one batch.

Items of a step become ready together when the batch that answered their parents returns (all at once), so a
window that waits until no new request has come for a short quiet time gathers a whole level of the work into
one batch; the items' own calls are then served from the response cache. A batch runs for minutes, so the
quiet time costs nothing that shows.
"""

from __future__ import annotations

import asyncio
import time

from msmkit.llm.client import LLMClient
from msmkit.llm.types import LLMRequest

MIN_QUIET_S, MAX_QUIET_S = 0.2, 1.0


class BatchWindow:
    def __init__(self, client: LLMClient, description: str) -> None:
        self.client = client
        self.description = description
        self.quiet_s = min(MAX_QUIET_S, max(MIN_QUIET_S, client.config.batch_poll_interval_s))
        self._pending: list[tuple[LLMRequest, asyncio.Future[None]]] = []
        self._last_added = 0.0
        self._sender: asyncio.Task[None] | None = None

    async def wait_for(self, request: LLMRequest) -> None:
        """Return once `request` has been through a batch (answered into the cache, or failed there: the caller's
        own call then asks it directly)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((request, done))
        self._last_added = time.monotonic()
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_when_quiet())
        await asyncio.shield(done)

    async def _send_when_quiet(self) -> None:
        try:
            while (waited := time.monotonic() - self._last_added) < self.quiet_s:
                await asyncio.sleep(self.quiet_s - waited)
            batch, self._pending, self._sender = self._pending, [], None
            try:
                await self.client.complete_many([request for request, _ in batch], description=self.description)
            finally:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)
        except BaseException:
            for _, done in self._pending:
                if not done.done():
                    done.cancel()
            raise
