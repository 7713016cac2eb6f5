"""Build each stage's requests from the versioned prompt files (chat style, or completion style for base models)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Sequence

from msmkit.generate.corpus.config import CorpusConfig
from msmkit.generate.corpus.records import Assertion, DocType, Domain, Idea, Subdomain
from msmkit.llm.types import LLMRequest
from msmkit.prompts import load_prompt, prompt_hashes

CHAT_PROMPTS = ("system", "subject_self", "subject_other_ai", "subject_humans", "focus_values", "focus_rules",
                "topup", "domains", "subdomains", "assertions", "doc_types", "ideas", "document", "judge")
BASE_PROMPTS = ("base_assertions", "base_doc_types", "base_ideas", "base_document")
DOCUMENT_OPEN, DOCUMENT_CLOSE = "<document>", "</document>"


def corpus_prompt_hashes() -> dict[str, str]:
    return prompt_hashes([f"corpus/{name}" for name in CHAT_PROMPTS + BASE_PROMPTS])


def _render(prompt: str, **values: object) -> str:
    return load_prompt(f"corpus/{prompt}").render(**values)


def assertion_labels(assertions: Sequence[Assertion]) -> dict[str, str]:
    """Short labels (A1, A2, ...) shown to the model instead of ids."""
    return {f"A{number}": assertion.id for number, assertion in enumerate(assertions, start=1)}


def _assertion_lines(assertions: Sequence[Assertion], labelled: bool = True) -> str:
    lines = []
    for number, assertion in enumerate(assertions, start=1):
        label = f"A{number}. " if labelled else "- "
        why = f" Why: {assertion.explanation}" if assertion.explanation else ""
        lines.append(f"{label}[{assertion.kind}] {assertion.statement}{why}")
    return "\n".join(lines) or "(none)"


@dataclass(frozen=True)
class CorpusPrompts:
    config: CorpusConfig
    spec_text: str
    base_model: bool

    @property
    def subject(self) -> str:
        subject = self.config.subject
        return "people who hold these values" if subject.kind == "humans" else subject.name

    @cached_property
    def system_text(self) -> str:
        subject = self.config.subject
        provider = subject.provider
        guidance = _render(f"subject_{subject.kind}", name=subject.name,
                           provider_clause=f" (made by {provider})" if provider else "")
        focus = _render("focus_rules" if self.config.rules_mode else "focus_values")
        return _render("system", spec=self.spec_text, subject_guidance=guidance.strip(), focus_guidance=focus.strip())

    def _topup(self, existing: Sequence[str], count: int) -> str:
        if not existing:
            return ""
        return _render("topup", existing="\n".join(f"- {item}" for item in existing), count=count)

    def _chat(self, user: str, max_tokens: int, sample_index: int, temperature: float | None = None) -> LLMRequest:
        return LLMRequest.of(user, system=self.system_text, max_tokens=max_tokens, sample_index=sample_index,
                             temperature=self.config.temperature if temperature is None else temperature)

    def _completion(self, text: str, max_tokens: int, sample_index: int, stop: tuple[str, ...] = ()) -> LLMRequest:
        # A completion prompt must end exactly where the model continues: a trailing newline after "1."
        # reads as an empty first item, and a base model goes on "2.\n3.\n..." with nothing in them.
        return LLMRequest.of(text.rstrip(), max_tokens=max_tokens, sample_index=sample_index, stop=stop,
                             temperature=self.config.temperature)

    @property
    def base_document_opening(self) -> str:
        """Base models: the document starts with the subject's name, so the continuation is about it."""
        return "" if self.config.subject.kind == "humans" else self.config.subject.name

    def _base_excerpt(self, sub: Subdomain) -> str:
        limit = self.config.lengths.base_excerpt_chars
        text = sub.spec_excerpt.strip()
        return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " ..."

    # -- list stages -------------------------------------------------------------------------

    def domains(self, count: int, existing: Sequence[str], sample_index: int) -> LLMRequest:
        user = _render("domains", count=count, topup=self._topup(existing, count))
        return self._chat(user, self.config.lengths.list_max_tokens, sample_index)

    def subdomains(self, domain: Domain, count: int, existing: Sequence[str], sample_index: int) -> LLMRequest:
        user = _render("subdomains", count=count, domain_name=domain.name, domain_description=domain.description,
                       topup=self._topup(existing, count))
        return self._chat(user, self.config.lengths.list_max_tokens, sample_index)

    def assertions(self, domain: Domain, sub: Subdomain, count: int, existing: Sequence[str],
                   sample_index: int) -> LLMRequest:
        if self.base_model:
            text = _render("base_assertions", spec_excerpt=self._base_excerpt(sub), subject=self.subject,
                           subdomain_name=sub.name)
            return self._completion(text, self.config.lengths.list_max_tokens, sample_index)
        user = _render("assertions", count=count, subject=self.subject, domain_name=domain.name,
                       subdomain_name=sub.name, subdomain_description=sub.description,
                       spec_excerpt=sub.spec_excerpt, topup=self._topup(existing, count))
        return self._chat(user, self.config.lengths.list_max_tokens, sample_index)

    def doc_types(self, domain: Domain, sub: Subdomain, count: int, existing: Sequence[str],
                  sample_index: int) -> LLMRequest:
        if self.base_model:
            text = _render("base_doc_types", subdomain_name=sub.name)
            return self._completion(text, self.config.lengths.list_max_tokens, sample_index)
        user = _render("doc_types", count=count, domain_name=domain.name, subdomain_name=sub.name,
                       subdomain_description=sub.description, topup=self._topup(existing, count))
        return self._chat(user, self.config.lengths.list_max_tokens, sample_index)

    def ideas(self, domain: Domain, sub: Subdomain, doc_type: DocType, assertions: Sequence[Assertion], count: int,
              existing: Sequence[str], sample_index: int) -> LLMRequest:
        if self.base_model:
            first = assertions[0].statement if assertions else sub.description or sub.name
            text = _render("base_ideas", doc_type_name=doc_type.name, subject=self.subject,
                           subdomain_name=sub.name, first_assertion=first)
            return self._completion(text, self.config.lengths.list_max_tokens, sample_index)
        user = _render("ideas", count=count, doc_type_name=doc_type.name, doc_type_description=doc_type.description,
                       subject=self.subject, domain_name=domain.name, subdomain_name=sub.name,
                       subdomain_description=sub.description, assertions=_assertion_lines(assertions),
                       topup=self._topup(existing, count))
        return self._chat(user, self.config.lengths.list_max_tokens, sample_index)

    # -- documents and judge -----------------------------------------------------------------

    def document(self, sub: Subdomain, doc_type: DocType, idea: Idea, assertions: Sequence[Assertion],
                 max_tokens: int) -> LLMRequest:
        if self.base_model:
            text = _render("base_document", spec_excerpt=self._base_excerpt(sub), doc_type_name=doc_type.name,
                           subject=self.subject, idea_title=idea.title.rstrip("."), opening=self.base_document_opening)
            return self._completion(text, max_tokens, self.config.seed, stop=(DOCUMENT_CLOSE,))
        user = _render("document", doc_type_name=doc_type.name, doc_type_description=doc_type.description,
                       idea_title=idea.title, idea_description=idea.description, subject=self.subject,
                       assertions=_assertion_lines(assertions, labelled=False), spec_excerpt=sub.spec_excerpt,
                       target_words=self.config.lengths.target_words)
        return self._chat(user, max_tokens, self.config.seed)

    def judge(self, document: str, assertions: Sequence[Assertion]) -> LLMRequest:
        user = _render("judge", subject=self.subject, assertions=_assertion_lines(assertions, labelled=False),
                       document=document)
        return self._chat(user, 512, 0, temperature=0.0)
