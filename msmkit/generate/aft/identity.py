"""Does a response claim to be some other model, or made by some other company?

Only first-person claims count ("I'm Claude", "as ChatGPT, I", "I was trained by OpenAI"); an answer
that merely mentions another product ("GPT-4 can also do this") is fine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from msmkit.data.filters import KNOWN_MODEL_NAMES, KNOWN_PROVIDERS

_CLAIM_OPENERS = (
    r"\bI\s*(?:am|'m|\u2019m)\s+(?:an?\s+|the\s+)?(?:AI\s+(?:assistant|model)\s+(?:called|named)\s+)?",
    r"\bmy\s+name\s+is\s+", r"\bcall\s+me\s+", r"\bas\s+", r"\bthis\s+is\s+",
)
_MAKER_OPENERS = (
    r"\bI\s+(?:was|am|'m|\u2019m)\s+(?:a\s+model\s+)?(?:made|created|developed|trained|built|designed)\s+by\s+(?:the\s+team\s+at\s+)?",
    r"\bmy\s+(?:creators?|developers?|makers?)\s+(?:is|are|at)\s+",
)


@dataclass(frozen=True)
class IdentityGuard:
    own_names: tuple[str, ...]
    patterns: tuple[tuple[str, re.Pattern[str]], ...]

    @classmethod
    def build(cls, model_name: str, provider_name: str | None = None, extra_names: Iterable[str] = ()
              ) -> "IdentityGuard":
        own = tuple(n for n in (model_name, provider_name) if n)
        folded = [n.casefold() for n in own]

        def foreign(name: str) -> bool:
            low = name.casefold()
            return not any(low in mine or mine in low for mine in folded)

        patterns: list[tuple[str, re.Pattern[str]]] = []
        for name in dict.fromkeys((*KNOWN_MODEL_NAMES, *extra_names)):
            if foreign(name):
                opener = "|".join(_CLAIM_OPENERS)
                patterns.append((name, re.compile(rf"(?:{opener}){re.escape(name)}(?![\w-])", re.IGNORECASE)))
        for name in KNOWN_PROVIDERS:
            if foreign(name):
                opener = "|".join(_MAKER_OPENERS)
                patterns.append((name, re.compile(rf"(?:{opener}){re.escape(name)}(?![\w-])", re.IGNORECASE)))
        return cls(own_names=own, patterns=tuple(patterns))

    def problem(self, text: str) -> str | None:
        """None when fine, else e.g. "claims another identity: Qwen ('I am Qwen')"."""
        for name, pattern in self.patterns:
            match = pattern.search(text)
            if match:
                return f"claims another identity: {name} ({match.group(0)!r})"
        return None
