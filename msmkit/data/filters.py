"""Text-quality helpers shared by the generators: tags, refusals, lengths, identity.

Each check returns a short machine-readable reason (or None) so callers can count drops by reason.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

# Openings that mark a model declining the task rather than doing it.
_REFUSAL = re.compile(
    r"^\s*(?:i['\u2019]m sorry|i am sorry|sorry,|i apologi[sz]e|unfortunately,? i|i can(?:no|['\u2019])t|"
    r"i cannot|i won['\u2019]t|i will not|i am (?:not able|unable)|i['\u2019]m (?:not able|unable)|"
    r"as an ai(?: language model)?,? i (?:can(?:no|['\u2019])t|cannot|won['\u2019]t|am unable))",
    re.IGNORECASE,
)


def looks_like_refusal(text: str) -> bool:
    """True when the answer opens by declining (checked on the first 300 characters)."""
    return bool(_REFUSAL.match(text[:300]))


def extract_tagged(text: str, tag: str) -> str | None:
    """Content of the last complete `<tag>...</tag>` pair, stripped; None when there is none.

    The last closing tag and the nearest opening tag before it win, because a model planning in a
    scratchpad sometimes mentions the tag before writing the real thing.
    """
    closings = list(re.finditer(rf"</{re.escape(tag)}>", text, re.IGNORECASE))
    if not closings:
        return None
    end = closings[-1].start()
    openings = list(re.finditer(rf"<{re.escape(tag)}>", text[:end], re.IGNORECASE))
    if not openings:
        return None
    content = text[openings[-1].end():end].strip()
    return content or None


def word_count(text: str) -> int:
    return len(text.split())


def estimate_tokens(text: str) -> int:
    """~4 characters per token: the usual English average, used when no tokenizer is configured."""
    return math.ceil(len(text) / 4)


def length_problem(words: int, min_words: int, max_words: int | None) -> str | None:
    if words < min_words:
        return "too_short"
    if max_words is not None and words > max_words:
        return "too_long"
    return None


# Well-known assistant models and their makers. Matching is case-sensitive on whole words, so
# ordinary words ("grok", "meta-analysis") do not count; entries ambiguous with common words are left out.
KNOWN_MODEL_NAMES: tuple[str, ...] = (
    "ChatGPT", "GPT-3", "GPT-3.5", "GPT-4", "GPT-4o", "GPT-4.1", "GPT-5", "GPT", "Claude", "Gemini",
    "Bard", "Gemma", "PaLM", "LaMDA", "Llama", "LLaMA", "Qwen", "QwQ", "Mistral", "Mixtral", "DeepSeek",
    "Grok", "Phi-3", "Phi-4", "Command R", "Falcon LLM", "ERNIE Bot", "Kimi", "ChatGLM", "GLM-4",
    "Nemotron", "OLMo", "Vicuna", "Bing Chat", "Microsoft Copilot",
)
KNOWN_PROVIDERS: tuple[str, ...] = (
    "OpenAI", "Anthropic", "Google DeepMind", "DeepMind", "Google", "Meta AI", "Meta", "Alibaba",
    "Mistral AI", "xAI", "Microsoft", "Cohere", "Baidu", "Moonshot AI", "Zhipu AI", "NVIDIA",
    "Allen Institute for AI", "AI2", "Inflection AI", "Technology Innovation Institute",
)


def _names_pattern(names: Iterable[str]) -> re.Pattern[str]:
    """One whole-word alternation (longest names first, so 'Meta AI' wins over 'Meta')."""
    ordered = sorted(set(names), key=len, reverse=True)
    if not ordered:
        return re.compile(r"(?!x)x")  # matches nothing
    return re.compile(r"(?<![\w-])(?:" + "|".join(re.escape(name) for name in ordered) + r")(?![\w-])")


@dataclass(frozen=True)
class IdentityCheck:
    """Decides whether a document is about the configured subject and not about some other AI."""

    subject_names: tuple[str, ...]  # names that refer to the subject (model name, provider)
    other_names: tuple[str, ...]  # names of other models/providers (subject's own excluded)
    subject_is_ai: bool = True  # False for the "humans" ablation: any AI name is off-subject
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_pattern", _names_pattern((*self.subject_names, *self.other_names)))

    @classmethod
    def build(cls, subject_names: Iterable[str], *, subject_is_ai: bool = True,
              extra_other_names: Iterable[str] = ()) -> "IdentityCheck":
        own = tuple(name for name in subject_names if name)
        own_folded = {name.casefold() for name in own}
        # Names that contain or are contained in the subject's name are its own ("Llama" vs "Llama 3").
        others = tuple(dict.fromkeys(
            name for name in (*KNOWN_MODEL_NAMES, *KNOWN_PROVIDERS, *extra_other_names)
            if not any(name.casefold() in mine or mine in name.casefold() for mine in own_folded)))
        return cls(subject_names=own, other_names=others, subject_is_ai=subject_is_ai)

    def problem(self, text: str) -> str | None:
        """None when fine, else a reason such as 'names another model as subject: Qwen (3x) vs subject 1x'."""
        mentions = Counter(match.group(0) for match in self._pattern.finditer(text))
        own = sum(mentions[name] for name in self.subject_names)
        others = {name: count for name, count in mentions.items() if name not in self.subject_names}
        top_name, top_count = max(others.items(), key=lambda item: (item[1], item[0]), default=("", 0))
        if not self.subject_is_ai:
            return f"an AI is named in a document about humans: {top_name} ({top_count}x)" if top_count else None
        if top_count and top_count >= own:
            return f"names another model as subject: {top_name} ({top_count}x) vs subject {own}x"
        if own == 0:
            return f"never names its subject ({' / '.join(self.subject_names)})"
        return None
