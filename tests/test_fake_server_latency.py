"""The test server's heavy-tailed latency mode: lognormal with the configured mean, fixed per request."""

from __future__ import annotations

import math
import statistics

from msmkit.testing.app import FakeLLMCore, lognormal_latency
from msmkit.testing.types import ScriptedRequest


def request(text: str, max_tokens: int = 64) -> ScriptedRequest:
    return ScriptedRequest(api="openai", model="m", system=None, messages=[{"role": "user", "content": text}],
                           max_tokens=max_tokens)


def test_lognormal_latencies_have_the_mean_and_spread_asked_for() -> None:
    draws = [lognormal_latency(0.2, 1.0, f"key {i}") for i in range(20000)]
    assert abs(statistics.fmean(draws) - 0.2) < 0.01
    logs = [math.log(d) for d in draws]
    assert abs(statistics.pstdev(logs) - 1.0) < 0.03
    assert abs(statistics.median(draws) - 0.2 * math.exp(-0.5)) < 0.005
    assert max(draws) > 10 * statistics.median(draws)  # a heavy tail, not a constant


def test_the_same_request_waits_the_same_and_a_larger_budget_is_another_request() -> None:
    core = FakeLLMCore(lambda r: "x", latency_s=0.2, latency_sigma=1.0)
    first, again, other = core.latency_for(request("a")), core.latency_for(request("a")), core.latency_for(request("b"))
    assert first == again and first != other
    assert core.latency_for(request("a", max_tokens=128)) != first
    assert FakeLLMCore(lambda r: "x", latency_s=0.2).latency_for(request("a")) == 0.2  # sigma 0: fixed latency
