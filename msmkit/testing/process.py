"""FakeServerProcess: the test server in its own process, driven over HTTP (/_stats, /_inject, /_reset).

Use it when the server must not share a GIL with the code under test (benchmarks), or outlive it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Sequence
from typing import Any

from msmkit.testing.types import Fault


class FakeServerProcess:
    def __init__(self, *, latency_s: float = 0.0, latency_sigma: float = 0.0, batch_delay_s: float = 1.0,
                 script: str | None = None, port: int = 0, start_timeout_s: float = 60.0,
                 api_key_env: str | None = None,
                 served_models: Sequence[str] = ()) -> None:
        self.command = [sys.executable, "-m", "msmkit.testing.server", "--port", str(port),
                        "--latency", str(latency_s), "--latency-sigma", str(latency_sigma),
                        "--batch-delay", str(batch_delay_s)]
        if script:
            self.command += ["--script", str(script)]
        if api_key_env:
            self.command += ["--api-key-env", api_key_env]
        for model in served_models:
            self.command += ["--model", model]
        self.start_timeout_s = start_timeout_s
        self.process: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self) -> "FakeServerProcess":
        self.process = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line.startswith("READY "):
            self.process.kill()
            _, err = self.process.communicate(timeout=10)
            raise RuntimeError(f"the test server process did not start: {line!r}\n{err}")
        self.url = line.split(" ", 1)[1]
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> "FakeServerProcess":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.url

    def _call(self, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(self.url + path, data=data, headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def stats(self) -> dict[str, Any]:
        """The server's counters as JSON (faults keyed by Fault value, by_prompt by prompt hash)."""
        return self._call("/_stats")

    def inject(self, fault: Fault | str, times: int = 1, retry_after: float = 1.0, match: str | None = None,
               status: int | None = None) -> None:
        self._call("/_inject", {"fault": Fault(fault).value, "times": times, "retry_after": retry_after,
                                "match": match, "status": status})

    def reset_stats(self) -> None:
        self._call("/_reset", {})
