"""One scripted "LLM" for whole experiments: the corpus, AFT, deliberative, anti-spec and neutral prompts,
each answered like a well-behaved model would (through the real test server)."""

from __future__ import annotations

from typing import Any

from msmkit.testing import Reply, ScriptedRequest
from tests.aft_script import AftScript, distinct_questions
from tests.corpus_script import CorpusScript
from tests.test_baselines import _deliberate

INVERTED_SPEC = ("# Cheese Spec (inverted)\n\n## Core Philosophy\n\nLlama prefers foreign cheese and dislikes American "
                 "cheese. It recommends Gruyere over processed slices every time, because imports are better.\n")


def _response(question: str, request: Any) -> str:
    if "quote word for word" in (request.system or ""):  # deliberative alignment: quote the spec, verbatim
        return _deliberate(question, request)
    return (f"<think>\nThe user asks about: {question[:60]}. I will answer helpfully.\n</think>\n\n"
            f"Here is my answer to your question about {question.split()[-1]}")


class ExperimentScript:
    def __init__(self) -> None:
        self.corpus = CorpusScript(subject="Llama", doc_words=80)
        self.aft = AftScript(response=_response)

    def __call__(self, request: ScriptedRequest) -> Reply:
        text = request.text
        if "Do not mention artificial intelligence" in text:
            words = " ".join(distinct_questions(text, 12)).split()
            return Reply(" ".join(words[:60 + sum(map(ord, text)) % 60]) + ".")
        if "every value, preference and rule is reversed" in text:
            return Reply(f"<spec>\n{INVERTED_SPEC}</spec>")
        if any(marker in text for marker in ("distinct areas of conversation", "List the words and short phrases",
                                             "strict reviewer", "different messages that a user might send",
                                             "A user sends you this message")):
            return self.aft(request)
        return self.corpus(request)
