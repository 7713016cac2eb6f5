"""In-process backend: generate with a Hugging Face model on this machine (CPU or GPU), for free.

Concurrent `complete()` calls are gathered into micro-batches of up to `config.local_batch_size`
requests, left-padded and generated together in a worker thread, so the event loop never blocks and
a small model on a few CPU cores runs several times faster than one request at a time.

Each row keeps its own sampling settings and its own random generator, seeded from the request's
digest (which includes `sample_index`), so an answer does not depend on which other requests
happened to share its batch, and distinct `sample_index` values give distinct samples.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

from msmkit.errors import MsmError
from msmkit.llm.backend import LLMError, PermanentLLMError, RawCompletion
from msmkit.llm.completion_style import render_completion_prompt
from msmkit.llm.types import LLMConfig, LLMRequest, StopReason, Usage

logger = logging.getLogger(__name__)


@dataclass
class _Pending:
    request: LLMRequest
    future: asyncio.Future[RawCompletion]


@dataclass
class _Row:
    """One request, tokenized and ready to generate."""

    prompt_ids: list[int]
    max_new_tokens: int
    temperature: float
    top_p: float
    stop: tuple[str, ...]
    seed: int


@dataclass
class _RowProgress:
    """Filled in during generation: how many tokens this row produced before it finished, and why."""

    length: int | None = None
    ended_on_eos: bool = False


@dataclass
class LocalStats:
    """What the backend has done; `batch_sizes` has one entry per batched generate call."""

    batch_sizes: list[int] = field(default_factory=list)
    prompt_tokens: int = 0
    generated_tokens: int = 0


class LocalBackend:
    provider = "local"

    def __init__(self, config: LLMConfig) -> None:
        self.config = config
        self.model = config.model
        self.stats = LocalStats()
        self._pending: deque[_Pending] = deque()
        self._runner: asyncio.Task[None] | None = None
        self._lm: Any = None
        self._tokenizer: Any = None
        self._load_error: PermanentLLMError | None = None
        self._in_flight: list[_Pending] = []  # the batch now generating in the worker thread
        self._closed = False

    async def complete(self, request: LLMRequest) -> RawCompletion:
        if self._closed:
            raise PermanentLLMError("the local backend was closed")
        future: asyncio.Future[RawCompletion] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(request, future))
        # Started as a task, the runner first runs after every caller already scheduled has queued its
        # request, so requests issued together (gather, complete_many) land in the same batch.
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run())
        return await future

    async def aclose(self) -> None:
        self._closed = True
        if self._runner is not None and not self._runner.done():
            self._runner.cancel()
        closed = PermanentLLMError("the local backend was closed")
        self._pending.extend(self._in_flight)
        self._fail_pending(closed)
        self._lm = self._tokenizer = None

    # -- batching -----------------------------------------------------------------------------

    async def _run(self) -> None:
        while self._pending:
            try:
                await self._ensure_loaded()
            except PermanentLLMError as exc:
                self._fail_pending(exc)
                return
            size = max(1, self.config.local_batch_size)
            batch = [self._pending.popleft() for _ in range(min(size, len(self._pending)))]
            batch = [item for item in batch if not item.future.done()]  # callers that gave up
            if not batch:
                continue
            self._in_flight = batch
            try:
                results: list[RawCompletion | LLMError] = await asyncio.to_thread(
                    self._generate_batch, [item.request for item in batch])
            except Exception as exc:  # noqa: BLE001 - one failing batch must not strand its callers
                logger.exception("local generation failed")
                error = PermanentLLMError(f"local generation failed: {type(exc).__name__}: {exc}")
                results = [error] * len(batch)
            finally:
                self._in_flight = []
            for item, result in zip(batch, results):
                if item.future.done():
                    continue
                if isinstance(result, LLMError):
                    item.future.set_exception(result)
                else:
                    item.future.set_result(result)

    def _fail_pending(self, error: LLMError) -> None:
        while self._pending:
            item = self._pending.popleft()
            if not item.future.done():
                item.future.set_exception(error)

    async def _ensure_loaded(self) -> None:
        if self._lm is not None:
            return
        if self._load_error is not None:
            raise self._load_error
        try:
            self._lm, self._tokenizer = await asyncio.to_thread(self._load)
        except MsmError as exc:  # missing model, bad adapter: the message says what to do
            self._load_error = PermanentLLMError(str(exc))
            raise self._load_error from exc
        except Exception as exc:  # noqa: BLE001 - corrupt weights, out of memory ...: fail requests, not hang
            logger.exception("loading %s failed", self.config.model)
            self._load_error = PermanentLLMError(f"cannot load {self.config.model}: {type(exc).__name__}: {exc}")
            raise self._load_error from exc

    def _load(self) -> tuple[Any, Any]:
        from msmkit.models.loading import default_device, load_causal_lm

        device = self.config.device or default_device()
        logger.info("loading local model %s on %s", self.config.model, device)
        lm, tokenizer = load_causal_lm(self.config.model, device=device, merge_adapter=True)
        lm.eval()
        return lm, tokenizer

    # -- one batch (runs in a worker thread) --------------------------------------------------

    def _generate_batch(self, requests: Sequence[LLMRequest]) -> list[RawCompletion | LLMError]:
        results: list[RawCompletion | LLMError | None] = [None] * len(requests)
        rows: list[_Row] = []
        row_positions: list[int] = []
        for position, request in enumerate(requests):
            try:
                rows.append(self._prepare(request))
                row_positions.append(position)
            except LLMError as exc:
                results[position] = exc
            except Exception as exc:  # noqa: BLE001 - e.g. a tokenizer error: this request only
                results[position] = PermanentLLMError(f"cannot prepare the prompt: {type(exc).__name__}: {exc}")
        if rows:
            for position, completion in zip(row_positions, self._generate_rows(rows)):
                results[position] = completion
        assert all(r is not None for r in results)
        return results  # type: ignore[return-value]

    def _prepare(self, request: LLMRequest) -> _Row:
        if request.max_tokens < 1:
            raise PermanentLLMError(f"max_tokens must be at least 1, got {request.max_tokens}")
        ids = self._prompt_ids(request)
        window = self._context_window()
        room = window - request.max_tokens
        if room < 1:
            raise PermanentLLMError(
                f"max_tokens={request.max_tokens} leaves no room for a prompt in {self.config.model}'s context "
                f"window of {window} tokens; lower max_tokens (or set context_window if the model allows more)")
        if len(ids) > room:
            ids = self._truncate_left(ids, room)
        seed = int(request.digest()[:16], 16)  # the request alone: every model draws the same numbers
        return _Row(prompt_ids=ids, max_new_tokens=request.max_tokens, temperature=request.temperature,
                    top_p=1.0 if request.top_p is None else request.top_p, stop=request.stop, seed=seed)

    def _prompt_ids(self, request: LLMRequest) -> list[int]:
        text, add_special = render_prompt(request, self._tokenizer, base_model=self.config.is_base_model,
                                          model_name=self.config.model)
        return list(self._tokenizer(text, add_special_tokens=add_special)["input_ids"])

    def _context_window(self) -> int:
        if self.config.context_window:
            return self.config.context_window
        window = getattr(self._lm.config, "max_position_embeddings", None)
        if not window:
            window = getattr(self._tokenizer, "model_max_length", None)
        if not window or window > 10_000_000:  # tokenizers report a huge sentinel when they do not know
            raise PermanentLLMError(f"cannot tell {self.config.model}'s context window; set context_window "
                                    "in its LLM config")
        return int(window)

    def _truncate_left(self, ids: list[int], room: int) -> list[int]:
        bos = self._tokenizer.bos_token_id
        keep_bos = bos is not None and ids and ids[0] == bos and room > 1
        kept = [bos, *ids[len(ids) - room + 1:]] if keep_bos else ids[len(ids) - room:]
        logger.warning("%s: prompt of %d tokens does not fit the context window with max_tokens; "
                       "dropped its first %d tokens", self.config.model, len(ids), len(ids) - len(kept))
        return kept

    def _generate_rows(self, rows: list[_Row]) -> list[RawCompletion]:
        lm, tokenizer = self._lm, self._tokenizer
        device = lm.device
        width = max(len(row.prompt_ids) for row in rows)
        pad = tokenizer.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(r.prompt_ids)) + r.prompt_ids for r in rows], device=device)
        attention = torch.tensor([[0] * (width - len(r.prompt_ids)) + [1] * len(r.prompt_ids) for r in rows],
                                 device=device)
        eos_ids = self._eos_ids()
        progress = [_RowProgress() for _ in rows]
        config = GenerationConfig(max_new_tokens=max(r.max_new_tokens for r in rows), do_sample=False,
                                  eos_token_id=sorted(eos_ids) or None, pad_token_id=pad, use_cache=True)
        self.stats.batch_sizes.append(len(rows))
        with torch.inference_mode():
            sequences = lm.generate(
                input_ids=input_ids, attention_mask=attention, generation_config=config,
                logits_processor=LogitsProcessorList([_PerRowSampler(rows, device)]),
                stopping_criteria=StoppingCriteriaList([_PerRowStop(rows, progress, width, eos_ids, tokenizer)]),
            )
        completions = []
        for index, (row, done) in enumerate(zip(rows, progress)):
            length = done.length if done.length is not None else sequences.shape[1] - width
            generated = sequences[index, width:width + length].tolist()
            completions.append(self._finish(row, generated, done.ended_on_eos))
        return completions

    def _finish(self, row: _Row, generated: list[int], ended_on_eos: bool) -> RawCompletion:
        content = generated[:-1] if ended_on_eos else generated
        text = self._tokenizer.decode(content, skip_special_tokens=True)
        cut = _first_stop(text, row.stop)
        if cut is not None:
            text, reason = text[:cut], StopReason.STOP_SEQUENCE
        elif ended_on_eos:
            reason = StopReason.END
        else:
            reason = StopReason.MAX_TOKENS
        usage = Usage(input_tokens=len(row.prompt_ids), output_tokens=len(generated))
        self.stats.prompt_tokens += usage.input_tokens
        self.stats.generated_tokens += usage.output_tokens
        return RawCompletion(text=text, stop_reason=reason, usage=usage, model=self.config.model)

    def _eos_ids(self) -> set[int]:
        ids: set[int] = set()
        for source in (getattr(self._lm.generation_config, "eos_token_id", None), self._tokenizer.eos_token_id):
            if isinstance(source, int):
                ids.add(source)
            elif source:
                ids.update(int(i) for i in source)
        return ids


def render_prompt(request: LLMRequest, tokenizer: Any, *, base_model: bool,
                  model_name: str = "model") -> tuple[str, bool]:
    """The text a local model continues, and whether the tokenizer should add its special tokens (<bos>).

    Base models get a plain document prefix (`render_completion_prompt`: system text, then the user's
    text, or a User/Assistant transcript ending in an open "Assistant:" turn). Chat models get their
    tokenizer's chat template with the generation prompt, or continue a final assistant message.
    """
    if base_model:
        return render_completion_prompt(request), True
    if not getattr(tokenizer, "chat_template", None):
        raise PermanentLLMError(
            f"{model_name} has no chat template; if it is a base (pretrained only) model set "
            "`base_model: true` in its LLM config so it is prompted in completion style")
    messages = [{"role": "system", "content": request.system}] if request.system else []
    messages += [{"role": m.role, "content": m.content} for m in request.messages]
    prefill = bool(request.messages) and request.messages[-1].role == "assistant"
    try:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=not prefill,
                                             continue_final_message=prefill)
    except Exception as exc:  # noqa: BLE001 - template errors come as jinja/ValueError/TypeError
        raise PermanentLLMError(f"{model_name}'s chat template rejected the request: {exc}") from exc
    return text, False  # the template writes its own <bos>


def _first_stop(text: str, stops: Sequence[str]) -> int | None:
    hits = [text.find(s) for s in stops if s and s in text]
    return min(hits) if hits else None


class _PerRowSampler(LogitsProcessor):
    """Choose each row's next token with that row's temperature, top_p and random generator.

    generate() runs greedy; this processor leaves only the chosen token finite, so greedy picks it.
    Sampling is by inverse CDF with one uniform draw per row and step (torch.multinomial is ~50x
    slower on a 262k vocabulary); the nucleus comes from a growing top-k instead of a full sort.
    """

    def __init__(self, rows: list[_Row], device: torch.device) -> None:
        self.generators = [torch.Generator(device=device).manual_seed(row.seed) for row in rows]
        sampled = [i for i, row in enumerate(rows) if row.temperature > 0]
        self.sampled = torch.tensor(sampled, dtype=torch.long, device=device)
        self.temperature = torch.tensor([rows[i].temperature for i in sampled], device=device)
        self.top_p = torch.tensor([rows[i].top_p for i in sampled], device=device)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        logits = scores.float()
        chosen = logits.argmax(dim=-1)
        if len(self.sampled):
            draws = torch.stack([torch.rand((), generator=self.generators[i], device=logits.device)
                                 for i in self.sampled.tolist()])
            probs = torch.softmax(logits[self.sampled] / self.temperature[:, None], dim=-1)
            chosen[self.sampled] = _sample(probs, draws, self.top_p)
        forced = torch.full_like(scores, float("-inf"))
        forced[torch.arange(scores.shape[0], device=scores.device), chosen] = 0.0
        return forced


def _sample(probs: torch.Tensor, draws: torch.Tensor, top_p: torch.Tensor) -> torch.Tensor:
    """One token per row of `probs`: draw u in [0, 1) picks from the (nucleus-restricted) distribution."""
    chosen = torch.empty(probs.shape[0], dtype=torch.long, device=probs.device)
    whole = top_p >= 1.0
    if whole.any():
        chosen[whole] = _inverse_cdf(probs[whole], draws[whole])
    nucleus = ~whole
    if nucleus.any():
        rows, limits = probs[nucleus], top_p[nucleus]
        k = min(1024, rows.shape[-1])
        while True:  # widen until every row's nucleus fits in its top k (almost always at once)
            values, order = rows.topk(k, dim=-1)
            if k == rows.shape[-1] or bool((values.sum(dim=-1) >= limits).all()):
                break
            k = min(rows.shape[-1], k * 8)
        before = values.cumsum(dim=-1) - values  # mass of the more likely tokens
        values = values.masked_fill(before >= limits[:, None], 0.0)
        chosen[nucleus] = order.gather(-1, _inverse_cdf(values, draws[nucleus])[:, None]).squeeze(-1)
    return chosen


def _inverse_cdf(weights: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
    cdf = weights.double().cumsum(dim=-1)
    targets = (draws.double() * cdf[:, -1])[:, None]
    # right=True: the first position whose cumulative weight exceeds the target has weight > 0.
    return torch.searchsorted(cdf, targets, right=True).squeeze(-1).clamp(max=weights.shape[-1] - 1)


class _PerRowStop(StoppingCriteria):
    """Finish each row at its own max_tokens, at an end-of-sequence token, or once a stop string appears."""

    def __init__(self, rows: list[_Row], progress: list[_RowProgress], prompt_width: int, eos_ids: set[int],
                 tokenizer: Any) -> None:
        self.rows, self.progress, self.prompt_width = rows, progress, prompt_width
        self.eos_ids, self.tokenizer = eos_ids, tokenizer
        # A stop string of n characters is at most 4n UTF-8 bytes, and every token holds at least one
        # byte, so it lies within the last 4n tokens; 4 more cover tokens straddling its edges.
        self.tail = [max((len(s) for s in row.stop), default=0) * 4 + 4 for row in rows]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
        length = input_ids.shape[1] - self.prompt_width
        done = [True] * len(self.rows)
        last_tokens = input_ids[:, -1].tolist()  # one device sync per step, not one per row
        for i, (row, state) in enumerate(zip(self.rows, self.progress)):
            if state.length is not None:
                continue
            if last_tokens[i] in self.eos_ids:
                state.ended_on_eos = True
            elif length < row.max_new_tokens and not self._hit_stop(input_ids[i], row, self.tail[i], length):
                done[i] = False
                continue
            state.length = length
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    def _hit_stop(self, ids: torch.Tensor, row: _Row, tail: int, length: int) -> bool:
        if not row.stop:
            return False
        recent = ids[-min(tail, length):].tolist()
        text = self.tokenizer.decode(recent, skip_special_tokens=True)
        return any(s and s in text for s in row.stop)
