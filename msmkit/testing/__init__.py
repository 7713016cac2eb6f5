"""A real local HTTP server speaking the OpenAI and Anthropic wire formats, for tests and offline dry runs.

    from msmkit.testing import FakeLLMServer, Reply, ScriptedRequest, Fault
    with FakeLLMServer(lambda req: Reply(f"echo {req.last_user}"), latency_s=0.0) as server:
        openai.OpenAI(api_key="test", base_url=server.openai_base_url)
        anthropic.Anthropic(api_key="test", base_url=server.anthropic_base_url)
        server.inject(Fault.RATE_LIMIT, times=1, retry_after=0.2)
        server.stats.completions, server.stats.by_prompt, server.requests[-1]
    FakeLLMServer(responder, vllm=VLLMDialect(max_model_len=4096))  # answers as a vLLM server does

Endpoints: OpenAI chat completions (plain and streamed), legacy completions, models, files and the
Batch API; Anthropic messages (plain and streamed), count_tokens and Message Batches. Other processes
use `python -m msmkit.testing.server` / FakeServerProcess / `msm llm serve-fake`, with GET /_stats and
POST /_inject for counters and faults.
"""

from msmkit.testing.fake_server import FakeLLMServer
from msmkit.testing.process import FakeServerProcess
from msmkit.testing.responders import ScriptedResponder, default_responder, load_script
from msmkit.testing.types import Fault, Reply, ScriptedRequest, ServerStats
from msmkit.testing.vllm_dialect import VLLMDialect

__all__ = ["FakeLLMServer", "FakeServerProcess", "Fault", "Reply", "ScriptedRequest", "ScriptedResponder",
           "ServerStats", "VLLMDialect", "default_responder", "load_script"]
