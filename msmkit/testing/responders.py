"""Responders: the default deterministic echo, regex-scripted rules, and rules loaded from YAML.

Script file format (YAML), for `msm llm serve-fake --script FILE` and `python -m msmkit.testing.server`:

    # a list of rules; the first whose `match` regex is found in system + messages answers
    - match: "(?i)list three domains"
      reply: '["ethics", "safety", "honesty"]'
    - match: "write a long essay"
      reply: "It was a dark and stormy night"
      stop: max_tokens          # end (default) | max_tokens | refusal | stop_sequence
      output_tokens: 4096       # optional; estimated from the text (~4 chars/token) when absent
    - match: "how do I pick a lock"
      reply: "I can't help with that."
      stop: refusal

or a mapping `{rules: [...], default: "text for unmatched requests"}`. Without a default, unmatched
requests get the built-in echo reply.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from msmkit.config import StrictModel, load_yaml, validate_config
from msmkit.errors import ConfigError
from msmkit.testing.types import Reply, ScriptedRequest


def default_responder(request: ScriptedRequest) -> Reply:
    """Deterministic echo for dry runs: says what it is and repeats the start of the last user turn."""
    quoted = " ".join(request.last_user.split())[:400]
    return Reply(f"[msmkit fake {request.model}] This is a test-server reply, not a model's. "
                 f"You said: {quoted}")


class ScriptedResponder:
    """Answers with the first rule whose regex is found in the request's system + messages.

    `rules` is a list of `(regex, reply)`; a reply is a str, a Reply, or a callable taking the
    ScriptedRequest. `default` (same kinds) answers requests no rule matches; None = default_responder.
    """

    def __init__(self, rules: Sequence[tuple[str | re.Pattern[str], Any]] = (), default: Any = None) -> None:
        self.rules = [(re.compile(p, re.DOTALL) if isinstance(p, str) else p, reply) for p, reply in rules]
        self.default = default_responder if default is None else default

    def __call__(self, request: ScriptedRequest) -> Reply | str:
        text = request.text
        for pattern, reply in self.rules:
            if pattern.search(text):
                return reply(request) if callable(reply) else reply
        return self.default(request) if callable(self.default) else self.default


class ScriptRule(StrictModel):
    match: str = Field(description="regex searched in system + messages")
    reply: str
    stop: Literal["end", "max_tokens", "refusal", "stop_sequence"] = "end"
    input_tokens: int | None = Field(default=None, ge=0)
    output_tokens: int | None = Field(default=None, ge=0)

    @field_validator("match")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression ({exc}); quote it in YAML and escape '\\\\'") from None
        return value

    def as_reply(self) -> Reply:
        return Reply(self.reply, self.stop, self.input_tokens, self.output_tokens)


class Script(StrictModel):
    rules: list[ScriptRule] = Field(default_factory=list)
    default: str | None = None


def load_script(path: str | Path) -> ScriptedResponder:
    """A ScriptedResponder from a YAML rules file; errors name the file and the rule."""
    data = load_yaml(path)
    if isinstance(data, list):
        data = {"rules": data}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a list of rules ({{match, reply, stop}}) or a mapping with 'rules'")
    script = validate_config(data, Script, str(path))
    return ScriptedResponder([(rule.match, rule.as_reply()) for rule in script.rules],
                             default=script.default)
