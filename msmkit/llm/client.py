"""The LLM client every stage uses: cache, concurrency and rate limits, retries, accounting.

A request is never changed between attempts (no shrinking of max_tokens); truncation is reported via
`LLMResponse.truncated`; only successful answers are cached, so a rerun pays for nothing twice. The
cache key joins the request with `LLMConfig.answer_identity()` (endpoint, mode, local weights), which
is worked out once per client. A failed call raises `LLMCallFailed`, whose `cause` says in plain words
what went wrong and where.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Sequence, TypeVar

from pydantic import TypeAdapter

from msmkit.errors import MsmError
from msmkit.llm.backend import Backend, LLMError, PermanentLLMError, TransientLLMError
from msmkit.llm.cache import ResponseCache
from msmkit.llm.failures import CALL_FAILED_PREFIX, FailureCause, FailureKind
from msmkit.llm.pricing import cost_usd, price_for
from msmkit.llm.progress import progress_bar
from msmkit.llm.ratelimit import PrioritySlots, RateLimiter
from msmkit.llm.structured import parse_structured, schema_text
from msmkit.llm.types import ChatMessage, LLMConfig, LLMRequest, LLMResponse, StopReason, identity_digest
from msmkit.paths import cache_dir
from msmkit.runs import RunDir

logger = logging.getLogger(__name__)
T = TypeVar("T")


class LLMCallFailed(Exception):
    """A request that could not be answered after its retries (or failed permanently).

    `cause` is the underlying error (of the last attempt): its kind, a plain message and the endpoint.
    The text of the exception is "<endpoint>: <message>" plus how many attempts were made.
    """

    def __init__(self, cause: FailureCause, request: LLMRequest, attempts: int) -> None:
        tries = f" (gave up after {attempts} attempts)" if attempts > 1 else ""
        super().__init__(f"{cause.endpoint}: {cause.message}{tries}")
        self.cause = cause
        self.request = request
        self.attempts = attempts


@dataclass
class StructuredResult(Generic[T]):
    ok: bool
    value: T | None = None
    error: str | None = None
    response: LLMResponse | None = None
    responses: list[LLMResponse] = field(default_factory=list)
    failure: LLMCallFailed | None = None  # set when a call failed (not when an answer did not parse)


def make_backend(config: LLMConfig) -> Backend:
    if config.provider == "anthropic":
        from msmkit.llm.anthropic_backend import AnthropicBackend

        return AnthropicBackend(config)
    if config.provider in ("openai", "openai_compatible"):
        from msmkit.llm.openai_backend import OpenAIBackend

        return OpenAIBackend(config)
    if config.provider == "vllm":
        from msmkit.llm.vllm_backend import VLLMBackend

        return VLLMBackend(config)
    from msmkit.llm.local import LocalBackend

    return LocalBackend(config)


def estimate_tokens(request: LLMRequest) -> int:
    characters = len(request.system or "") + sum(len(m.content) for m in request.messages)
    return characters // 4 + request.max_tokens


def failure_cause(config: LLMConfig, error: LLMError) -> FailureCause:
    """A backend error as a cause: its kind, the plain message (with what to check for a rejected key)."""
    kind = error.kind
    if kind is FailureKind.OTHER and config.provider == "local":
        kind = FailureKind.LOCAL_MODEL
    message = str(error)
    if not message.startswith(kind.label):
        message = f"{kind.label}: {message}"
    if kind is FailureKind.AUTHENTICATION_FAILED:
        message += f"; check the key in ${config.api_key_env or _DEFAULT_KEY_ENV.get(config.provider, 'MSM_API_KEY')}"
    return FailureCause(kind, message, config.describe(), error.status, error.retry_after)


_DEFAULT_KEY_ENV = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}


class _Shared:
    """State shared by a client and its per-stage views."""

    def __init__(self, config: LLMConfig) -> None:
        self.config = config
        self.answerer: str | None = None  # digest of config.answer_identity(), worked out on first use
        self.cache = ResponseCache(Path(config.cache_path) if config.cache_path else cache_dir() / "llm_cache.sqlite")
        self.limiter = RateLimiter(config.requests_per_minute, config.tokens_per_minute)
        self.slots = PrioritySlots(config.concurrency)
        self.price = price_for(config)
        self.backend: Backend | None = None
        self.backend_lock = asyncio.Lock()
        self.inflight: dict[str, asyncio.Future[LLMResponse]] = {}
        self.last_usage_save = 0.0


class LLMClient:
    def __init__(self, config: LLMConfig, *, run: RunDir | None = None, stage: str = "default",
                 _shared: _Shared | None = None) -> None:
        self.config = config
        self.run = run
        self.stage = stage
        self._shared = _shared or _Shared(config)

    # -- public API ---------------------------------------------------------------------------

    @property
    def is_base_model(self) -> bool:
        return self.config.is_base_model

    @property
    def cache(self) -> ResponseCache:
        return self._shared.cache

    def with_stage(self, stage: str) -> "LLMClient":
        return LLMClient(self.config, run=self.run, stage=stage, _shared=self._shared)

    def cache_key(self, request: LLMRequest) -> str:
        """The request joined with who answers it (`LLMConfig.answer_identity`); raises LLMCallFailed when
        that cannot be worked out (e.g. a local model folder that does not exist)."""
        shared = self._shared
        if shared.answerer is None:
            try:
                identity = self.config.answer_identity()
            except MsmError as exc:
                cause = FailureCause(FailureKind.LOCAL_MODEL, f"{FailureKind.LOCAL_MODEL.label}: {exc}",
                                     self.config.describe())
                raise LLMCallFailed(cause, request, 0) from exc
            shared.answerer = identity_digest(identity)
        return request.digest(answerer=shared.answerer)

    async def complete(self, request: LLMRequest, *, priority: int = 0) -> LLMResponse:
        """The answer, from the cache or the backend. When every concurrency slot is busy, lower `priority`
        numbers get the next free one first."""
        key = self.cache_key(request)
        cached = self._shared.cache.get(key)
        if cached is not None:
            self._record(cached)
            return cached
        inflight = self._shared.inflight.get(key)
        if inflight is not None:  # an identical request is already being paid for: share it
            response = await asyncio.shield(inflight)
            return response.model_copy(update={"cached": True})
        future: asyncio.Future[LLMResponse] = asyncio.get_running_loop().create_future()
        self._shared.inflight[key] = future
        try:
            response = await self._call_with_retries(request, priority)
            self._shared.cache.put(key, response)
            future.set_result(response)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved so an unshared failure does not warn
            raise
        finally:
            del self._shared.inflight[key]
        self._record(response)
        return response

    async def complete_json(self, request: LLMRequest, schema: Any, *, priority: int = 0) -> StructuredResult[Any]:
        """Answer, extract JSON, validate; on failure re-ask once with the error; never raises for bad JSON."""
        adapter = schema if isinstance(schema, TypeAdapter) else TypeAdapter(schema)
        responses: list[LLMResponse] = []
        current = request if request.json_schema else request.model_copy(
            update={"json_schema": schema_text(schema, adapter)})
        error = ""
        for attempt in range(2):
            try:
                response = await self.complete(current, priority=priority)
            except LLMCallFailed as exc:
                return StructuredResult(ok=False, error=f"{CALL_FAILED_PREFIX}{exc}", responses=responses,
                                        failure=exc)
            responses.append(response)
            if response.stop_reason == StopReason.REFUSAL:
                return StructuredResult(ok=False, error="refused", response=response, responses=responses)
            try:
                value = parse_structured(response.text, adapter)
                return StructuredResult(ok=True, value=value, response=response, responses=responses)
            except ValueError as exc:
                error = str(exc)
                if response.truncated:
                    error = f"answer truncated at max_tokens={request.max_tokens}; {error}"
            if attempt == 0:
                current = LLMRequest(
                    messages=current.messages + (
                        ChatMessage(role="assistant", content=response.text),
                        ChatMessage(role="user", content=(
                            f"Your answer could not be used: {error}. "
                            "Reply again with only the corrected JSON, nothing else.")),
                    ),
                    system=current.system, max_tokens=current.max_tokens, temperature=current.temperature,
                    top_p=current.top_p, stop=current.stop, sample_index=current.sample_index,
                    json_schema=current.json_schema,
                )
        return StructuredResult(ok=False, error=error, response=responses[-1], responses=responses)

    async def complete_many(self, requests: Sequence[LLMRequest], description: str = "requests"
                            ) -> list[LLMResponse | LLMCallFailed]:
        """Answer all, same order; failures are returned in place, never raised."""
        if self.config.use_batch_api and self.config.provider in ("anthropic", "openai") and requests:
            from msmkit.llm.batch import run_batch

            return await run_batch(self, list(requests), description)
        return await self.complete_many_direct(requests, description)

    async def complete_many_direct(self, requests: Sequence[LLMRequest], description: str = "requests"
                                   ) -> list[LLMResponse | LLMCallFailed]:
        """Concurrent individual calls (no batch API), with a progress bar."""
        results: list[LLMResponse | LLMCallFailed] = [None] * len(requests)  # type: ignore[list-item]
        queue = iter(enumerate(requests))  # shared by the workers: each request is taken exactly once
        with progress_bar(description, total=len(requests)) as advance:
            async def worker() -> None:
                for index, request in queue:
                    try:
                        results[index] = await self.complete(request)
                    except LLMCallFailed as exc:
                        results[index] = exc
                    advance()

            # One worker per concurrency slot, not one task per request: thousands of tasks would each look up the
            # cache before the first sends went out (0.2-0.4 s at the start of a 2,000-4,000 request batch).
            await asyncio.gather(*(worker() for _ in range(min(len(requests), self.config.concurrency))))
        return results

    async def aclose(self) -> None:
        self._shared.cache.flush()
        if self.run is not None:
            self.run.save_usage()
        if self._shared.backend is not None:
            await self._shared.backend.aclose()
            self._shared.backend = None

    async def __aenter__(self) -> "LLMClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- internals ----------------------------------------------------------------------------

    async def backend(self) -> Backend:
        shared = self._shared
        if shared.backend is None:
            async with shared.backend_lock:
                if shared.backend is None:
                    try:
                        shared.backend = make_backend(self.config)
                    except LLMError as exc:
                        raise LLMCallFailed(failure_cause(self.config, exc), LLMRequest.of(""), 0) from exc
        return shared.backend

    def finish(self, request: LLMRequest, raw: Any, *, batch: bool = False) -> LLMResponse:
        """Turn a backend answer into an LLMResponse with its cost."""
        return LLMResponse(
            text=raw.text, stop_reason=raw.stop_reason, usage=raw.usage, model=raw.model or self.config.model,
            cost_usd=cost_usd(self._shared.price, raw.usage, batch=batch),
        )

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after + random.uniform(0, 0.1 * retry_after + 0.05)
        ceiling = min(self.config.retry_max_delay_s, self.config.retry_base_delay_s * (2 ** attempt))
        return random.uniform(ceiling / 2, ceiling)

    async def _call_with_retries(self, request: LLMRequest, priority: int = 0) -> LLMResponse:
        backend = await self.backend()
        shared = self._shared
        # A local model cannot hang on the network; remote calls get a guard above the SDK timeout. A vLLM backend
        # guards its own requests: the first ones also wait for its server to load the model.
        guard = None if self.config.provider in ("local", "vllm") else self.config.timeout_s * 1.5 + 5
        last_error: LLMError | None = None
        attempts = self.config.max_retries + 1
        for attempt in range(attempts):
            await shared.limiter.acquire(estimate_tokens(request))
            await shared.slots.acquire(priority)
            try:
                async with asyncio.timeout(guard):  # no extra task per call, unlike wait_for on Python 3.11
                    raw = await backend.complete(request)
                return self.finish(request, raw)
            except PermanentLLMError as exc:
                raise LLMCallFailed(failure_cause(self.config, exc), request, attempt + 1) from exc
            except TransientLLMError as exc:
                error: LLMError = exc
            except TimeoutError:
                error = TransientLLMError(f"timed out: no answer within {guard:.0f} s", FailureKind.TIMED_OUT)
            finally:
                shared.slots.release()
            last_error = error
            if attempt + 1 < attempts:
                delay = self._backoff(attempt, error.retry_after)
                logger.info("retrying %s in %.2fs after: %s", self.config.describe(), delay, error)
                await asyncio.sleep(delay)
        assert last_error is not None  # max_retries >= 0, so at least one attempt was made
        raise LLMCallFailed(failure_cause(self.config, last_error), request, attempts)

    def _record(self, response: LLMResponse) -> None:
        if self.run is None:
            return
        self.run.record_usage(self.stage, response)
        now = time.monotonic()
        if now - self._shared.last_usage_save > 2.0:
            self._shared.last_usage_save = now
            self.run.save_usage()
