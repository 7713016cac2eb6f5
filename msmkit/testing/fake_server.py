"""FakeLLMServer: the test server on 127.0.0.1 in a background thread; `serve_forever` for the CLI."""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from msmkit.testing.app import FakeLLMCore
from msmkit.testing.faults import Matcher
from msmkit.testing.responders import default_responder, load_script
from msmkit.testing.types import Fault, Reply, ScriptedRequest, ServerStats
from msmkit.testing.vllm_dialect import VLLMDialect

SHUTDOWN_TIMEOUT_S = 1.0


def bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(1024)
    return sock


async def start_site(core: FakeLLMCore, sock: socket.socket) -> web.AppRunner:
    # handler_cancellation: a client that gives up (timeout, kill) cancels its request's handler.
    runner = web.AppRunner(core.build_app(), handler_cancellation=True, access_log=None,
                           shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    await web.SockSite(runner, sock, backlog=1024).start()
    return runner


class FakeLLMServer:
    """An OpenAI- and Anthropic-compatible HTTP server for tests and offline dry runs.

    `responder(request) -> Reply | str` (sync or async) writes every answer; it runs on the server's
    event loop, so keep it quick. Use as a context manager, or call start() and stop().
    `api_key`: requests must present this key, else 401 as the provider words it. `served_models`: the
    model names it answers; others get 404 model-not-found (None answers any name). `latency_sigma` > 0 makes
    latencies heavy-tailed: lognormal with mean `latency_s`, the same for the same request in every run.
    `vllm`: answer OpenAI-format requests as a vLLM server does where it differs (stop_reason, its context window,
    its errors; see msmkit.testing.vllm_dialect).
    """

    def __init__(self, responder: Callable[[ScriptedRequest], Reply | str | Any] = default_responder, *,
                 latency_s: float = 0.0, batch_delay_s: float = 1.0, port: int = 0, api_key: str | None = None,
                 served_models: Sequence[str] | None = None, latency_sigma: float = 0.0,
                 vllm: VLLMDialect | None = None) -> None:
        self._core = FakeLLMCore(responder, latency_s=latency_s, batch_delay_s=batch_delay_s, api_key=api_key,
                                 served_models=served_models, latency_sigma=latency_sigma, vllm=vllm)
        self._port = port
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ----------------------------------------------------------------------------
    def start(self) -> "FakeLLMServer":
        if self._thread is not None:
            raise RuntimeError("the server is already running")
        self._sock = bind(self._port)
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            assert self._loop is not None and self._sock is not None
            asyncio.set_event_loop(self._loop)
            try:
                self._runner = self._loop.run_until_complete(start_site(self._core, self._sock))
            except BaseException as exc:  # reported to the starting thread
                failure.append(exc)
                started.set()
                return
            started.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self._runner.cleanup())
            self._loop.close()

        self._thread = threading.Thread(target=serve, name="msmkit-fake-llm-server", daemon=True)
        self._thread.start()
        started.wait()
        if failure:
            self._thread = None
            raise RuntimeError(f"the test server failed to start: {failure[0]}") from failure[0]
        return self

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=SHUTDOWN_TIMEOUT_S + 10)
        self._thread = None

    def __enter__(self) -> "FakeLLMServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ---- addresses ----------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._sock is None:
            raise RuntimeError("start the server first")
        return int(self._sock.getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.url

    # ---- behaviour and inspection -------------------------------------------------------------
    @property
    def stats(self) -> ServerStats:
        return self._core.stats

    @property
    def requests(self) -> deque[ScriptedRequest]:
        """The most recent generation requests received (direct and batch items), oldest first."""
        return self._core.requests

    @property
    def latency_s(self) -> float:
        return self._core.latency_s

    @latency_s.setter
    def latency_s(self, value: float) -> None:
        self._core.latency_s = value

    def latency_for(self, request: ScriptedRequest) -> float:
        """The seconds this server makes `request` wait (see `latency_sigma`)."""
        return self._core.latency_for(request)

    @property
    def responder(self) -> Callable[[ScriptedRequest], Any]:
        return self._core.responder

    @responder.setter
    def responder(self, value: Callable[[ScriptedRequest], Any]) -> None:
        self._core.responder = value

    def inject(self, fault: Fault | str, times: int = 1, retry_after: float = 1.0,
               match: str | Matcher | None = None, status: int | None = None) -> None:
        """Make the next `times` generation requests that `match` (regex on system + messages, or a
        callable on the ScriptedRequest; None = any) fail with `fault`. `status` picks the HTTP status
        of SERVER_ERROR (default 500; 529 is Anthropic's overloaded_error). AUTH_ERROR (401) and
        UNKNOWN_MODEL (404) are permanent failures: clients do not retry them."""
        self._core.faults.inject(fault, times=times, retry_after=retry_after, match=match, status=status)

    def clear_faults(self) -> None:
        self._core.faults.clear()

    def pending_faults(self) -> list[tuple[Fault, int]]:
        return self._core.faults.pending()

    def reset_stats(self) -> None:
        """Counters to zero; pending faults and the recorded requests are dropped too."""
        self._core.reset()


def serve_forever(port: int, latency_s: float, batch_delay_s: float, script: str | None,
                  announce: Callable[[str], None] | None = None, *, api_key: str | None = None,
                  served_models: Sequence[str] | None = None, latency_sigma: float = 0.0) -> None:
    """Serve on 127.0.0.1:port until SIGINT/SIGTERM, after printing `READY <url>`."""
    responder = load_script(script) if script else default_responder
    core = FakeLLMCore(responder, latency_s=latency_s, batch_delay_s=batch_delay_s, api_key=api_key,
                       served_models=served_models, latency_sigma=latency_sigma)
    sock = bind(port)

    async def run() -> None:
        runner = await start_site(core, sock)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        (announce or (lambda text: print(text, flush=True)))(f"READY {url}")
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    asyncio.run(run())

