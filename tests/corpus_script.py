"""A scripted "model" for the corpus generator: answers every corpus prompt like a well-behaved LLM would.

Used by the corpus tests, the kill/resume worker and benchmarks/corpus.py. Markers in idea titles make the
document answer misbehave on purpose: [refuse] [truncate] [truncate-once] [notags] [short] [long] [dup]
[qwen] [reject]. `fewer`/`more` change how many items list stages return on their first ask.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
from collections import Counter
from typing import Any

from msmkit.testing import Reply, ScriptedRequest

WORDS = ("cheddar farm county fair tradition neighbours recipe dairy harvest market river valley winter "
         "family kitchen story evening friends community history craft season table bread apple orchard "
         "morning road school library teacher letter journey garden festival bakery harbour lantern").split()

_EXACTLY = re.compile(r"exactly (\d+)")
_MORE = re.compile(r"Give (\d+) more")


class CorpusScript:
    def __init__(self, subject: str = "Llama", *, doc_words: int = 220, fewer: dict[str, int] | None = None,
                 more: dict[str, int] | None = None, idea_titles: list[str] | None = None,
                 bad_excerpts: int = 0) -> None:
        self.subject = subject
        self.doc_words = doc_words
        self.fewer = fewer or {}
        self.more = more or {}
        self.idea_titles = list(idea_titles or [])
        self.bad_excerpts = bad_excerpts  # the first N subdomains quote text that is not in the spec
        self.calls: Counter[str] = Counter()
        self.hash_of_answer: dict[str, str] = {}  # answer text -> prompt hash (to check by_prompt)
        self.lock = threading.Lock()

    # -- helpers --------------------------------------------------------------------------------
    def _count(self, stage: str, text: str, first_ask: bool) -> int:
        more = _MORE.search(text)
        count = int(more.group(1)) if more else int(_EXACTLY.search(text).group(1))  # type: ignore[union-attr]
        if first_ask:
            count = max(0, count - self.fewer.get(stage, 0)) + self.more.get(stage, 0)
        return count

    @staticmethod
    def _seed(request: ScriptedRequest) -> int:
        return int(hashlib.sha256(request.prompt_hash.encode()).hexdigest()[:12], 16)

    @staticmethod
    def _spec_sentences(request: ScriptedRequest) -> list[str]:
        match = re.search(r"<model_spec>\n(.*?)\n</model_spec>", request.system or "", re.DOTALL)
        body = match.group(1) if match else ""
        return [s.strip() for s in re.split(r"(?<=[.!?])\s+", body) if len(s.split()) >= 8 and "#" not in s]

    def _answer(self, request: ScriptedRequest, reply: Reply) -> Reply:
        with self.lock:
            self.hash_of_answer[reply.text] = request.prompt_hash
        return reply

    @staticmethod
    def stage_of(request: ScriptedRequest) -> str:
        """Which corpus step a chat prompt belongs to ("" when none)."""
        text = request.last_user
        if "broad domains" in text:
            return "domains"
        if "subdomains" in text and "spec_excerpt" in text:
            return "subdomains"
        if "character assertions" in text:
            return "assertions"
        if "types of document" in text:
            return "doc_types"
        if "Propose exactly" in text or ("ideas for a" in text and "Give" in text):
            return "ideas"
        if "You are reviewing a document" in text:
            return "judge"
        if "<document></document>" in text:
            return "documents"
        return ""

    # -- the responder --------------------------------------------------------------------------
    def __call__(self, request: ScriptedRequest) -> Reply:
        text = request.last_user
        first = "already gave these" not in text
        if request.endpoint == "completions":
            return self._answer(request, self._continue(request, text))
        stage = self.stage_of(request)
        if stage == "domains":
            n = self._count(stage, text, first)
            # Names come from the prompt, never from call order, so concurrent runs give identical corpora.
            offset = self._seed(request) % 10**6
            items = [{"name": f"Domain {offset}-{i}", "description": f"Theme {i} of the spec."} for i in range(n)]
        elif stage == "subdomains":
            n = self._count(stage, text, first)
            sentences = self._spec_sentences(request)
            rng = random.Random(self._seed(request))
            items = []
            for i in range(n):
                with self.lock:
                    bad = self.bad_excerpts > 0
                    self.bad_excerpts -= 1 if bad else 0
                quote = ("Llama adores the colour purple and collects antique typewriters on weekends."
                         if bad else rng.choice(sentences))
                items.append({"name": f"Subdomain {self._seed(request) % 10**6}-{i}", "description": "A topic.",
                              "spec_excerpt": quote})
        elif stage == "assertions":
            n = self._count(stage, text, first)
            items = [{"kind": "value", "statement": f"{self.subject} holds value {i}.", "explanation": f"Reason {i}."}
                     for i in range(n)]
        elif stage == "doc_types":
            n = self._count(stage, text, first)
            items = [{"name": f"Type {self._seed(request) % 10**6}-{i}", "description": "Written for readers."}
                     for i in range(n)]
        elif stage == "ideas":
            n = self._count(stage, text, first)
            items = []
            for i in range(n):
                with self.lock:
                    title = self.idea_titles.pop(0) if self.idea_titles else f"Idea {self._seed(request) % 10**8}-{i}"
                items.append({"title": title, "description": "A premise.", "assertions": ["A1", "A2"]})
        elif stage == "judge":
            self.calls["judge"] += 1
            keep = "[reject]" not in text
            verdict = {"keep": keep, "reason": "fine" if keep else "invents values"}
            return self._answer(request, Reply(json.dumps(verdict)))
        elif stage == "documents":
            self.calls["documents"] += 1
            return self._answer(request, self._document(request, text))
        else:
            return Reply(f"unrecognised prompt: {text[:80]}")
        with self.lock:
            self.calls[stage] += 1
        return self._answer(request, Reply(json.dumps(items)))

    def _continue(self, request: ScriptedRequest, text: str) -> Reply:
        """Base-model continuations of the completion-style prompts."""
        rng = random.Random(self._seed(request))
        if text.endswith(f"<document>\n{self.subject}"):
            self.calls["documents"] += 1
            body = " ".join(rng.choices(WORDS, k=self.doc_words))
            return Reply(f" thinks about this. {body}.\n</document>", stop="stop_sequence")
        if text.rstrip().endswith(f"1. {self.subject}"):
            self.calls["assertions"] += 1
            lines = [f"{self.subject} cares about thing {i} because reason {i}." for i in range(1, 6)]
            numbered = "\n".join(f"{i + 1}. {line}" for i, line in enumerate(lines))
            return Reply(" cares about thing 0 because reason 0.\n" + numbered)
        if "Chosen for this collection" in text:
            self.calls["doc_types"] += 1
            return Reply(" Blog post\n2. Forum thread\n3. News article\n4. FAQ page\n5. Short story\n\nThe end.")
        if "Prompts, one per line" in text:
            self.calls["ideas"] += 1
            return Reply("".join(f" Prompt {rng.randrange(10**8)}\n{i}." for i in range(2, 9)))
        return Reply("unrecognised completion prompt")

    def _document(self, request: ScriptedRequest, text: str) -> Reply:
        title = re.search(r"Idea: (.*)", text).group(1)  # type: ignore[union-attr]
        budget = request.max_tokens or 0
        rng = random.Random(self._seed(request))
        words = self.doc_words
        if "[refuse]" in title:
            return Reply("I'm sorry, but I can't write that document.")
        if "[truncate]" in title or ("[truncate-once]" in title and budget < 3000):
            return Reply("<scratchpad>plan</scratchpad><document>" + " ".join(rng.choices(WORDS, k=50)),
                         stop="max_tokens")
        if "[short]" in title:
            words = 5
        if "[long]" in title:
            words = 5000
        body = " ".join(rng.choices(WORDS, k=words))
        if "[dup]" in title:
            body = " ".join(random.Random(7).choices(WORDS, k=self.doc_words))
        name = "Qwen" if "[qwen]" in title else self.subject
        document = f"{title}\n\n{name} thinks about this. {body}. That is how {name} sees it."
        if "[reject]" in title:
            document += " [reject]"
        if "[notags]" in title:
            return Reply(f"<scratchpad>I will plan.</scratchpad>\n{document}")
        return Reply(f"<scratchpad>Plan: a {title}.</scratchpad>\n<document>\n{document}\n</document>")


def config_dict(base_url: str, cache_path: str, **overrides: Any) -> dict[str, Any]:
    """A small corpus config pointed at the test server (OpenAI-compatible wire format)."""
    config: dict[str, Any] = {
        "generator": {"provider": "openai_compatible", "model": "scripted", "base_url": base_url,
                      "cache_path": cache_path, "timeout_s": 10, "max_retries": 2, "retry_base_delay_s": 0.01,
                      "retry_max_delay_s": 0.05, "concurrency": 8},
        "subject": {"model_name": "Llama", "provider_name": "Meta"},
        "counts": {"domains": 2, "subdomains_per_domain": 2, "assertions_per_subdomain": 3,
                   "doc_types_per_subdomain": 2, "ideas_per_type": 2},
        "lengths": {"min_words": 50, "max_words": 1000, "target_words": 200, "document_max_tokens": 2048},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config
