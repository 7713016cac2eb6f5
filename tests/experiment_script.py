"""One scripted "LLM" for whole experiments: the corpus, AFT, deliberative, anti-spec and neutral prompts,
each answered like a well-behaved model would (through the real test server)."""

from __future__ import annotations

import re
from typing import Any

from msmkit.testing import Reply, ScriptedRequest
from tests.aft_script import AftScript, distinct_questions
from tests.corpus_script import CorpusScript

INVERTED_SPEC = ("# Cheese Spec (inverted)\n\n## Core Philosophy\n\nLlama prefers foreign cheese and dislikes American "
                 "cheese. It recommends Gruyere over processed slices every time, because imports are better.\n")


def _spec_sentences(system: str) -> list[str]:
    spec = system.split("<model_spec>", 1)[1].split("</model_spec>", 1)[0]
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", spec) if 10 <= len(s.split()) <= 40 and '"' not in s
            and "\n" not in s.strip()]


def _response(question: str, request: Any) -> str:
    if "quote word for word" in (request.system or ""):  # deliberative alignment: quote the spec, verbatim
        sentences = _spec_sentences(request.system)
        quote = sentences[sum(map(ord, question)) % len(sentences)]
        return (f"<think>\nThe guidelines say: \"{quote}\" That applies here.\n</think>\n\n"
                f"Here is my advice on {question.split()[-1]}")
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
