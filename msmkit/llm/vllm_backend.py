"""`provider: vllm`: msmkit starts a vLLM server for the stage, waits for it, asks it through the OpenAI-compatible
backend and stops it when the stage's client closes (or at exit, or when this process dies: msmkit.llm.vllm_server).

Requests carry explicit neutral sampling fields, since vLLM otherwise applies the model's generation_config.json
defaults (top_k, top_p, repetition_penalty) to fields a request leaves out, which the local backend and the API
providers never do; structured answers are decoded to their JSON schema; with `vllm.seeded`, each request gets a
seed from its digest, as the local backend seeds its sampler.

A server that dies mid-stage (out of memory, an engine error) turns its requests' connection errors into one
permanent failure that quotes the end of its log, instead of retries against a closed port.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from msmkit.errors import MsmError
from msmkit.llm.backend import PermanentLLMError, RawCompletion, TransientLLMError
from msmkit.llm.failures import FailureKind
from msmkit.llm.openai_backend import OpenAIBackend
from msmkit.llm.types import LLMConfig, LLMRequest
from msmkit.llm.vllm_server import ServerLease, lease_server
from msmkit.llm.vllm_settings import VLLMSettings


def sampling_fields(request: LLMRequest, *, seeded: bool = False, chat: bool = False) -> dict[str, Any]:
    """vLLM's extra request fields: the sampling defaults msmkit means when a field is unset, the schema of a
    structured answer, (`seeded`) a seed from the request's digest, and (`chat`) that a conversation ending in an
    assistant turn is continued, as the local backend does, not answered with a new turn (vLLM's default)."""
    fields: dict[str, Any] = {"top_k": -1, "min_p": 0.0, "repetition_penalty": 1.0}
    if chat and request.messages and request.messages[-1].role == "assistant":
        fields.update(add_generation_prompt=False, continue_final_message=True)
    if request.top_p is None:
        fields["top_p"] = 1.0
    if seeded:
        fields["seed"] = int(request.digest()[:8], 16) & 0x7FFFFFFF
    if request.json_schema:  # guided decoding: the answer is valid JSON of that schema (unless cut at max_tokens)
        fields["structured_outputs"] = {"json": json.loads(request.json_schema)}
    return fields


_CONNECTION_KINDS = (FailureKind.CONNECTION_REFUSED, FailureKind.CONNECTION_FAILED)


class VLLMBackend:
    provider = "vllm"

    def __init__(self, config: LLMConfig) -> None:
        if config.base_url:
            raise PermanentLLMError("unusable LLM config: provider vllm starts its own server and takes no `base_url`; "
                                    "for a server that is already running use provider openai_compatible with its "
                                    "base_url", FailureKind.CONFIG)
        self.config = config
        self.model = config.model
        self.settings: VLLMSettings = config.vllm or VLLMSettings()
        self._lease: ServerLease | None = None
        self._inner: OpenAIBackend | None = None
        self._starting: asyncio.Future[None] | None = None
        self._start_error: PermanentLLMError | None = None
        self._closed = False

    async def complete(self, request: LLMRequest) -> RawCompletion:
        inner = await self._ready()
        # The client puts no time limit on this provider (a model may take many minutes to load), so the request
        # itself gets the guard other remote providers get from the client.
        guard = self.config.timeout_s * 1.5 + 5
        try:
            return await asyncio.wait_for(inner.complete(request), timeout=guard)
        except asyncio.TimeoutError:
            raise TransientLLMError(f"timed out: no answer within {guard:.0f} s", FailureKind.TIMED_OUT) from None
        except TransientLLMError as exc:
            if exc.kind in _CONNECTION_KINDS and self._lease is not None and not self._lease.server.running:
                raise self._died() from exc
            raise

    def _died(self) -> PermanentLLMError:
        server = self._lease.server if self._lease else None
        code = server.process.poll() if server and server.process else None
        where = f"; its log is {server.log_path}:\n{server.log_tail()}" if server else ""
        return PermanentLLMError(f"local model failed: the vLLM server for {self.model} is gone (exit status {code})"
                                 f"{where}", FailureKind.LOCAL_MODEL)

    async def aclose(self) -> None:
        self._closed = True
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
        inner, self._inner = self._inner, None
        if inner is not None:
            await inner.aclose()
        lease, self._lease = self._lease, None
        if lease is not None:
            lease.release()

    @property
    def base_url(self) -> str | None:
        """Where the server listens, once started."""
        return self._lease.server.base_url if self._lease else None

    async def _ready(self) -> OpenAIBackend:
        if self._inner is not None:
            return self._inner
        if self._closed:
            raise PermanentLLMError("the vLLM backend was closed")
        if self._start_error is None:
            if self._starting is None:
                self._starting = asyncio.ensure_future(self._start())
            # Shielded: a request that is cancelled while waiting must not cancel the start for the others.
            await asyncio.shield(self._starting)
        if self._start_error is not None:
            raise self._start_error
        assert self._inner is not None
        return self._inner

    async def _start(self) -> None:
        try:
            self._lease = lease_server(self.config.model, self.settings, context_window=self.config.context_window)
            await self._lease.wait_ready_async()
        except Exception as exc:  # no such model, no vLLM, the server died or never got ready, ...
            if self._lease is not None:
                self._lease.release()
                self._lease = None
            cause = str(exc) if isinstance(exc, MsmError) else f"could not start vLLM: {type(exc).__name__}: {exc}"
            self._start_error = PermanentLLMError(f"local model failed: {cause}", FailureKind.LOCAL_MODEL)
            return
        served = self.config.model_copy(update={
            "provider": "openai_compatible", "model": self._lease.model_name, "base_url": self._lease.server.base_url,
            "base_model": self.config.is_base_model, "api_key_env": None})
        seeded, chat = self.settings.seeded, not self.config.is_base_model
        self._inner = OpenAIBackend(served, extra_body=lambda request: sampling_fields(request, seeded=seeded,
                                                                                       chat=chat))
