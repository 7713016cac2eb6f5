"""The aiohttp application behind the test server: routes, generation, faults, accounting."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import inspect
import json
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator
from statistics import NormalDist
from typing import Any

from aiohttp import web

from msmkit.testing import wire_anthropic, wire_openai
from msmkit.testing.batches import BatchStore
from msmkit.testing.faults import TRANSPORT_FAULTS, FaultQueue, InjectedFault
from msmkit.testing.generation import Completion, apply_content_fault, as_reply, finish
from msmkit.testing.types import Fault, ScriptedRequest, ServerStats, estimate_tokens
from msmkit.testing.vllm_dialect import VLLMDialect
from msmkit.testing.wire_openai import BadRequest

logger = logging.getLogger(__name__)
Responder = Callable[[ScriptedRequest], Any]
KEEP_REQUESTS = 50_000  # the most recent requests kept in `requests` for tests to inspect
OPENAI_AUTO_CACHE_MIN_TOKENS = 1024  # OpenAI caches prompt prefixes of at least this many tokens
BATCH_ITEM_FAULTS = frozenset({Fault.RATE_LIMIT, Fault.SERVER_ERROR, Fault.TRUNCATED, Fault.MALFORMED_JSON,
                               Fault.REFUSAL, Fault.AUTH_ERROR, Fault.UNKNOWN_MODEL})


class ResponderFailed(Exception):
    pass


def lognormal_latency(mean_s: float, sigma: float, key: str) -> float:
    """A lognormal draw with mean `mean_s` and log-sd `sigma`, its quantile fixed by sha256(`key`)."""
    quantile = (int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:13], 16) + 0.5) / 16**13
    return mean_s * math.exp(sigma * NormalDist().inv_cdf(quantile) - sigma * sigma / 2)


class FakeLLMCore:
    """State and handlers; runs on one event loop (the server thread's, or the CLI's)."""

    def __init__(self, responder: Responder, latency_s: float = 0.0, batch_delay_s: float = 1.0, *,
                 api_key: str | None = None, served_models: Iterable[str] | None = None,
                 vllm: VLLMDialect | None = None,
                 latency_sigma: float = 0.0) -> None:
        self.responder = responder
        self.latency_s = latency_s
        # > 0: heavy-tailed latencies, lognormal with this sigma and mean latency_s (see `latency_for`).
        self.latency_sigma = latency_sigma
        self.stats = ServerStats()
        self.faults = FaultQueue()
        self.requests: deque[ScriptedRequest] = deque(maxlen=KEEP_REQUESTS)
        # api_key: every API request must present it (OpenAI bearer token or Anthropic x-api-key), else 401.
        self.api_key = api_key
        # served_models: generation requests naming another model get 404 model-not-found; None serves any.
        self.served_models = frozenset(served_models) if served_models is not None else None
        self.models: dict[str, None] = dict.fromkeys(sorted(self.served_models or {"fake-model"}))
        # vllm: answer as a vLLM server does where it differs from the OpenAI API (msmkit.testing.vllm_dialect).
        self.vllm = vllm
        self._cached_prefixes: set[tuple[str, str]] = set()
        self.batches = BatchStore(self._answer_batch_item, batch_delay_s)
        self._stopping: asyncio.Event | None = None

    def latency_for(self, request: ScriptedRequest) -> float:
        """Seconds a generation request waits: `latency_s`, or with `latency_sigma` a lognormal draw with mean
        `latency_s`, fixed by the prompt and max_tokens, so the same request waits the same in every run."""
        if not self.latency_s or not self.latency_sigma:
            return self.latency_s
        return lognormal_latency(self.latency_s, self.latency_sigma, f"{request.prompt_hash}:{request.max_tokens}")

    # ---- application ----------------------------------------------------------------------------
    def build_app(self) -> web.Application:
        self._stopping = asyncio.Event()
        app = web.Application(middlewares=[self._count_requests], client_max_size=256 * 1024 * 1024)
        post, get = app.router.add_post, app.router.add_get
        post("/v1/chat/completions", functools.partial(self._generate, api="openai", endpoint="chat"))
        post("/v1/completions", functools.partial(self._generate, api="openai", endpoint="completions"))
        post("/v1/messages", functools.partial(self._generate, api="anthropic", endpoint="messages"))
        post("/v1/messages/count_tokens", self._count_tokens)
        get("/v1/models", self._list_models)
        get("/v1/models/{model}", self._get_model)
        post("/v1/files", self._upload_file)
        get("/v1/files/{file_id}", self._get_file)
        get("/v1/files/{file_id}/content", self._file_content)
        post("/v1/batches", self._create_openai_batch)
        get("/v1/batches/{batch_id}", self._get_openai_batch)
        post("/v1/batches/{batch_id}/cancel", self._cancel_openai_batch)
        post("/v1/messages/batches", self._create_anthropic_batch)
        get("/v1/messages/batches/{batch_id}", self._get_anthropic_batch)
        get("/v1/messages/batches/{batch_id}/results", self._anthropic_batch_results)
        post("/v1/messages/batches/{batch_id}/cancel", self._cancel_anthropic_batch)
        get("/_stats", self._get_stats)
        post("/_inject", self._inject)
        post("/_reset", self._reset)
        app.on_shutdown.append(self._on_shutdown)
        return app

    async def _on_shutdown(self, app: web.Application) -> None:
        if self._stopping is not None:
            self._stopping.set()  # releases hanging requests
        self.batches.close()

    def reset(self) -> None:
        """Counters to zero, pending faults and recorded requests dropped (batches and caches kept)."""
        stats = self.stats
        with stats.lock:
            stats.requests = stats.completions = stats.batches_created = stats.batch_requests = 0
            stats.responder_errors = 0
            stats.max_in_flight = stats.in_flight
            stats.by_prompt.clear()
            stats.faults.clear()
        self.faults.clear()
        self.requests.clear()

    @web.middleware
    async def _count_requests(self, request: web.Request,
                              handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        if not request.path.startswith("/_"):
            with self.stats.lock:
                self.stats.requests += 1
            if self.api_key is not None and _presented_key(request) != self.api_key:
                return self._unauthorized(_api_of(request))
        return await handler(request)

    # ---- errors -------------------------------------------------------------------------------
    @staticmethod
    def _error(api: str, status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
        return FakeLLMCore._json_error(api, status, FakeLLMCore._error_json(api, status, message), headers)

    @staticmethod
    def _json_error(api: str, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
                    ) -> web.Response:
        request_id = wire_openai.new_id("req_")
        extra = {"request-id": request_id} if api == "anthropic" else {"x-request-id": request_id}
        return web.json_response(body, status=status, headers={**extra, **(headers or {})})

    # ---- generation ---------------------------------------------------------------------------
    async def _generate(self, http: web.Request, api: str, endpoint: str) -> web.StreamResponse:
        stats = self.stats
        with stats.lock:
            stats.in_flight += 1
            stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            return await self._generate_inner(http, api, endpoint)
        finally:
            with stats.lock:
                stats.in_flight -= 1

    async def _generate_inner(self, http: web.Request, api: str, endpoint: str) -> web.StreamResponse:
        try:
            body = json.loads(await http.read())
            request, cached_prefix = _parse(api, endpoint, body)
        except (BadRequest, json.JSONDecodeError, UnicodeDecodeError) as exc:
            return self._error(api, 400, str(exc))
        self.requests.append(request)
        if self.vllm is not None:
            refused = self._vllm_refusal(request)
            if refused is not None:
                return web.json_response(refused[1], status=refused[0])
        if self.served_models is not None and request.model not in self.served_models:
            return self._unknown_model(api, request.model)
        self.models.setdefault(request.model, None)
        rule = self.faults.take(request)
        fault = rule.kind if rule is not None else None
        if fault is not None:
            with self.stats.lock:
                self.stats.faults[fault] += 1
            if fault is Fault.RATE_LIMIT:
                return self._rate_limited(api, rule)  # type: ignore[arg-type]
            if fault is Fault.AUTH_ERROR:
                return self._unauthorized(api)
            if fault is Fault.UNKNOWN_MODEL:
                return self._unknown_model(api, request.model)
        delay = self.latency_for(request)
        if delay:
            await asyncio.sleep(delay)
        if fault in TRANSPORT_FAULTS:
            return await self._transport_fault(http, api, rule, request)  # type: ignore[arg-type]
        try:
            done = await self._complete(request, fault)
        except ResponderFailed as exc:
            return self._error(api, 500, str(exc))
        if request.stream:
            return await self._sse(http, self._answer_events(request, done, cached_prefix))
        headers = {"request-id": wire_openai.new_id("req_")} if api == "anthropic" else None
        return web.json_response(self._answer_json(request, done, cached_prefix), dumps=_compact, headers=headers)

    def _answer_json(self, request: ScriptedRequest, done: Completion, cached_prefix: str | None) -> dict[str, Any]:
        if request.api == "anthropic":
            return wire_anthropic.message(request, done, *self._prompt_cache(cached_prefix, request.model))
        if request.endpoint == "chat":
            answer = wire_openai.chat_completion(request, done, self._openai_auto_cache(request))
        else:
            answer = wire_openai.legacy_completion(request, done)
        return answer if self.vllm is None else self.vllm.decorate(answer, done)

    def _vllm_refusal(self, request: ScriptedRequest) -> tuple[int, dict[str, Any]] | None:
        assert self.vllm is not None
        if request.api == "openai" and self.served_models is not None and request.model not in self.served_models:
            return self.vllm.unknown_model(request.model, sorted(self.served_models))
        return self.vllm.refusal(request)

    def _answer_events(self, request: ScriptedRequest, done: Completion, cached_prefix: str | None) -> Iterator[bytes]:
        if request.api == "anthropic":
            return wire_anthropic.message_stream(request, done, *self._prompt_cache(cached_prefix, request.model))
        if request.endpoint == "chat":
            return wire_openai.chat_stream(request, done, self._openai_auto_cache(request))
        return wire_openai.legacy_stream(request, done)

    async def _complete(self, request: ScriptedRequest, fault: Fault | None) -> Completion:
        """Run the responder, apply a content fault, and count the answer."""
        try:
            value = self.responder(request)
            if inspect.isawaitable(value):
                value = await value
            reply = as_reply(value)
        except Exception as exc:
            with self.stats.lock:
                self.stats.responder_errors += 1
            logger.exception("test-server responder failed")
            raise ResponderFailed(f"the test server's responder raised {type(exc).__name__}: {exc}") from exc
        if self.vllm is not None and request.api == "openai":
            request, reply = self.vllm.fit(request, reply)  # max_tokens shortened to the room the prompt leaves
        done = finish(request, apply_content_fault(reply, fault))
        with self.stats.lock:
            self.stats.completions += 1
            if fault is None:
                self.stats.by_prompt[request.prompt_hash] += 1
        return done

    def _prompt_cache(self, prefix: str | None, model: str) -> tuple[int, int]:
        """Anthropic prompt caching: the first request with a marked prefix writes it, later ones read it."""
        if not prefix:
            return 0, 0
        tokens = estimate_tokens(prefix)
        key = (model, hashlib.sha256(prefix.encode()).hexdigest())
        if key in self._cached_prefixes:
            return 0, tokens
        self._cached_prefixes.add(key)
        return tokens, 0

    def _openai_auto_cache(self, request: ScriptedRequest) -> int:
        """OpenAI caches long prompt prefixes automatically; here the system prompt stands for the prefix."""
        if not request.system or len(request.system) < 4 * OPENAI_AUTO_CACHE_MIN_TOKENS:
            return 0
        key = ("openai:" + request.model, hashlib.sha256(request.system.encode()).hexdigest())
        if key in self._cached_prefixes:
            return estimate_tokens(request.system)
        self._cached_prefixes.add(key)
        return 0

    @staticmethod
    async def _sse(http: web.Request, events: Any) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream", "cache-control": "no-cache"})
        await response.prepare(http)
        await response.write(b"".join(events))
        await response.write_eof()
        return response

    # ---- faults -------------------------------------------------------------------------------
    @staticmethod
    def _unauthorized(api: str) -> web.Response:
        status, body = unauthorized_error(api)
        return FakeLLMCore._json_error(api, status, body)

    @staticmethod
    def _unknown_model(api: str, model: str) -> web.Response:
        status, body = unknown_model_error(api, model)
        return FakeLLMCore._json_error(api, status, body)

    def _rate_limited(self, api: str, rule: InjectedFault) -> web.Response:
        headers = {"retry-after": _seconds(rule.retry_after), "retry-after-ms": str(int(rule.retry_after * 1000))}
        if api == "openai":
            headers.update({"x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "0",
                            "x-ratelimit-reset-requests": f"{rule.retry_after}s"})
        return self._error(api, 429, "Rate limit exceeded (injected by the msmkit test server)", headers)

    async def _transport_fault(self, http: web.Request, api: str, rule: InjectedFault, request: ScriptedRequest
                               ) -> web.StreamResponse:
        if rule.kind is Fault.SERVER_ERROR:
            status = rule.status or 500
            message = "Overloaded" if status == 529 else "The server had an error (injected by the msmkit test server)"
            return self._error(api, status, message)
        if rule.kind is Fault.HANG:
            assert self._stopping is not None
            await self._stopping.wait()  # the client's timeout cancels this handler first
            if http.transport is not None:
                http.transport.abort()
            return web.Response(status=503)
        # DROP: start the answer (a JSON fragment, or the first SSE event of a stream), then cut the connection.
        if request.stream:
            response = web.StreamResponse(headers={"content-type": "text/event-stream"})
            await response.prepare(http)
            await response.write(self._first_stream_event(request))
        else:
            response = web.StreamResponse(headers={"content-type": "application/json"})
            response.content_length = 4096
            await response.prepare(http)
            await response.write(b'{"id": "dropped-')
        if http.transport is not None:
            http.transport.abort()
        return response

    @staticmethod
    def _first_stream_event(request: ScriptedRequest) -> bytes:
        placeholder = Completion("", "end", None, 0, 0)
        if request.api == "anthropic":
            return next(wire_anthropic.message_stream(request, placeholder, 0, 0))
        if request.endpoint == "chat":
            return next(wire_openai.chat_stream(request, placeholder, 0))
        return b""

    # ---- batches ------------------------------------------------------------------------------
    async def _answer_batch_item(self, api: str, endpoint: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        try:
            request, cached_prefix = _parse(api, endpoint, body)
        except BadRequest as exc:
            return 400, self._error_json(api, 400, str(exc))
        self.requests.append(request)
        if self.served_models is not None and request.model not in self.served_models:
            return unknown_model_error(api, request.model)
        rule = self.faults.take(request, BATCH_ITEM_FAULTS)
        fault = rule.kind if rule is not None else None
        if fault is not None:
            with self.stats.lock:
                self.stats.faults[fault] += 1
            if fault is Fault.AUTH_ERROR:
                return unauthorized_error(api)
            if fault is Fault.UNKNOWN_MODEL:
                return unknown_model_error(api, request.model)
            if fault is Fault.RATE_LIMIT:
                return 429, self._error_json(api, 429, "Rate limit exceeded (injected by the msmkit test server)")
            if fault is Fault.SERVER_ERROR:
                status = rule.status or 500  # type: ignore[union-attr]
                return status, self._error_json(api, status, "The server had an error (injected)")
        try:
            done = await self._complete(request, fault)
        except ResponderFailed as exc:
            return 500, self._error_json(api, 500, str(exc))
        return 200, self._answer_json(request, done, cached_prefix)

    @staticmethod
    def _error_json(api: str, status: int, message: str) -> dict[str, Any]:
        if api == "anthropic":
            return wire_anthropic.error_body(status, message)
        return wire_openai.error_body(status, message)

    async def _json_body(self, http: web.Request) -> dict[str, Any]:
        try:
            body = json.loads(await http.read())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BadRequest(f"the request body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object")
        return body

    async def _upload_file(self, http: web.Request) -> web.Response:
        form = await http.post()
        upload, purpose = form.get("file"), form.get("purpose")
        if upload is None or not hasattr(upload, "file"):
            return self._error("openai", 400, "file: a multipart file field is required")
        if purpose != "batch":
            return self._error("openai", 400,
                               f"purpose: the test server stores batch input files only, got {purpose!r}")
        stored = self.batches.add_file(upload.filename or "upload.jsonl", "batch", upload.file.read())
        return web.json_response(stored.to_json())

    def _stored_file(self, http: web.Request) -> Any:
        file_id = http.match_info["file_id"]
        if file_id not in self.batches.files:
            raise web.HTTPNotFound(text=json.dumps(wire_openai.error_body(404, f"No such File object: {file_id}")),
                                   content_type="application/json")
        return self.batches.files[file_id]

    async def _get_file(self, http: web.Request) -> web.Response:
        return web.json_response(self._stored_file(http).to_json())

    async def _file_content(self, http: web.Request) -> web.Response:
        return web.Response(body=self._stored_file(http).content, content_type="application/octet-stream")

    async def _create_openai_batch(self, http: web.Request) -> web.Response:
        try:
            batch = self.batches.create_openai(await self._json_body(http))
        except BadRequest as exc:
            return self._error("openai", 400, str(exc))
        self._count_batch(len(batch.items))
        return web.json_response(self.batches.openai_json(batch))

    async def _get_openai_batch(self, http: web.Request) -> web.Response:
        try:
            return web.json_response(self.batches.openai_json(self.batches.get(http.match_info["batch_id"])))
        except KeyError as exc:
            return self._error("openai", 404, str(exc.args[0]))

    async def _cancel_openai_batch(self, http: web.Request) -> web.Response:
        try:
            return web.json_response(self.batches.openai_json(self.batches.cancel(http.match_info["batch_id"])))
        except KeyError as exc:
            return self._error("openai", 404, str(exc.args[0]))

    async def _create_anthropic_batch(self, http: web.Request) -> web.Response:
        try:
            batch = self.batches.create_anthropic(await self._json_body(http), wire_anthropic.parse_messages)
        except BadRequest as exc:
            return self._error("anthropic", 400, str(exc))
        self._count_batch(len(batch.items))
        return web.json_response(self.batches.anthropic_json(batch, _origin(http)))

    async def _get_anthropic_batch(self, http: web.Request) -> web.Response:
        try:
            batch = self.batches.get(http.match_info["batch_id"])
        except KeyError as exc:
            return self._error("anthropic", 404, str(exc.args[0]))
        return web.json_response(self.batches.anthropic_json(batch, _origin(http)))

    async def _anthropic_batch_results(self, http: web.Request) -> web.Response:
        try:
            batch = self.batches.get(http.match_info["batch_id"])
        except KeyError as exc:
            return self._error("anthropic", 404, str(exc.args[0]))
        if batch.ended_at is None:
            return self._error("anthropic", 400, f"batch {batch.id} is still in progress; poll until it has ended")
        return web.Response(body=self.batches.anthropic_results(batch), content_type="application/binary")

    async def _cancel_anthropic_batch(self, http: web.Request) -> web.Response:
        try:
            batch = self.batches.cancel(http.match_info["batch_id"])
        except KeyError as exc:
            return self._error("anthropic", 404, str(exc.args[0]))
        return web.json_response(self.batches.anthropic_json(batch, _origin(http)))

    def _count_batch(self, items: int) -> None:
        with self.stats.lock:
            self.stats.batches_created += 1
            self.stats.batch_requests += items

    # ---- models, tokens -----------------------------------------------------------------------
    async def _list_models(self, http: web.Request) -> web.Response:
        return web.json_response(wire_openai.models_list(list(self.models)))

    async def _get_model(self, http: web.Request) -> web.Response:
        model = http.match_info["model"]
        if self.served_models is not None and model not in self.served_models:
            return self._unknown_model(_api_of(http), model)
        return web.json_response(wire_openai.models_list([model])["data"][0])

    async def _count_tokens(self, http: web.Request) -> web.Response:
        try:
            return web.json_response(wire_anthropic.count_tokens(await self._json_body(http)))
        except BadRequest as exc:
            return self._error("anthropic", 400, str(exc))

    # ---- control endpoints (cross-process tests) ----------------------------------------------
    async def _get_stats(self, http: web.Request) -> web.Response:
        payload = self.stats.to_json()
        payload["pending_faults"] = [{"fault": kind.value, "remaining": n} for kind, n in self.faults.pending()]
        return web.json_response(payload)

    async def _inject(self, http: web.Request) -> web.Response:
        try:
            body = await self._json_body(http)
            self.faults.inject(body.get("fault", ""), times=int(body.get("times", 1)),
                               retry_after=float(body.get("retry_after", 1.0)), match=body.get("match"),
                               status=body.get("status"))
        except (BadRequest, ValueError, TypeError) as exc:
            valid = ", ".join(f.value for f in Fault)
            return web.json_response({"error": f"{exc} (fault is one of: {valid})"}, status=400)
        return web.json_response({"ok": True})

    async def _reset(self, http: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})


def _parse(api: str, endpoint: str, body: Any) -> tuple[ScriptedRequest, str | None]:
    """The request as the responder sees it, and (Anthropic) the system prefix marked for caching."""
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    if api == "anthropic":
        return wire_anthropic.parse_messages(body)
    return (wire_openai.parse_chat if endpoint == "chat" else wire_openai.parse_legacy)(body), None


def unauthorized_error(api: str) -> tuple[int, dict[str, Any]]:
    """401 as each API words it."""
    if api == "anthropic":
        return 401, wire_anthropic.error_body(401, "invalid x-api-key")
    return 401, wire_openai.error_body(401, "Incorrect API key provided (the msmkit test server expects another "
                                            "key).", "invalid_api_key")


def unknown_model_error(api: str, model: str) -> tuple[int, dict[str, Any]]:
    """404 for a model the server does not serve, as each API words it."""
    if api == "anthropic":
        return 404, wire_anthropic.error_body(404, f"model: {model}")
    return 404, wire_openai.error_body(404, f"The model `{model}` does not exist or you do not have access to it.",
                                       "model_not_found")


def _presented_key(http: web.Request) -> str | None:
    if "x-api-key" in http.headers:
        return http.headers["x-api-key"]
    authorization = http.headers.get("authorization", "")
    return authorization[len("Bearer "):] if authorization.startswith("Bearer ") else None


def _api_of(http: web.Request) -> str:
    """Which API's error format a request expects: Anthropic's for /v1/messages or an x-api-key header."""
    return "anthropic" if http.path.startswith("/v1/messages") or "x-api-key" in http.headers else "openai"


def _compact(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _origin(http: web.Request) -> str:
    return f"{http.scheme}://{http.host}"

