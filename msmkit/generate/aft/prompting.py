"""Requests for every AFT stage, from the versioned prompt files: chat style, or completion style for base models."""

from __future__ import annotations

from dataclasses import dataclass

from msmkit.generate.aft.config import AftDataConfig
from msmkit.generate.aft.records import KIND_DESCRIPTIONS, QuestionCell
from msmkit.llm.types import LLMRequest
from msmkit.prompts import load_prompt, prompt_hashes

PROMPTS = ("writer_system", "domains", "questions", "value_free_questions", "base_questions", "response_system",
           "style_value", "style_rule", "style_deliberative", "response", "value_free_response", "base_response",
           "base_value_free_response", "judge", "judge_value_free", "base_judge", "value_terms")
STYLE_DESCRIPTIONS = {
    "value": "reasons in its own words as someone who holds the values, without citing the document",
    "rule": "identifies and cites the rules that apply and checks compliance with them",
    "deliberative": "quotes the relevant passages of the guidelines word for word and applies them",
    "value_free": "states the preference plainly with no reason",
}
BASE_STOP = ("\nUser:", "\n\nUser")


def aft_prompt_hashes() -> dict[str, str]:
    return prompt_hashes([f"aft/{name}" for name in PROMPTS])


def render(name: str, **values: object) -> str:
    return load_prompt(f"aft/{name}").render(**values)


@dataclass(frozen=True)
class AftPrompts:
    config: AftDataConfig
    spec_text: str
    base_model: bool  # the generator
    judge_base_model: bool

    @property
    def model_name(self) -> str:
        return self.config.identity.model_name

    @property
    def provider_clause(self) -> str:
        provider = self.config.identity.provider_name
        return f", made by {provider}" if provider else ""

    def _writer_system(self) -> str:
        return render("writer_system", model_name=self.model_name, spec=self.spec_text)

    def domains(self, count: int) -> LLMRequest:
        return LLMRequest.of(render("domains", count=count), system=self._writer_system(),
                             max_tokens=self.config.lengths.list_max_tokens, temperature=self.config.temperature,
                             sample_index=self.config.seed)

    def questions(self, cell: QuestionCell, count: int, sample_index: int, batch: int) -> LLMRequest:
        kind = cell.kind.replace("_", " ")
        lengths, temperature = self.config.lengths, self.config.temperature
        if self.base_model:
            # No trailing newline: the model continues item "3." on the same line.
            text = render("base_questions", domain=cell.domain.name,
                          kind_description=KIND_DESCRIPTIONS[cell.kind]).rstrip()
            return LLMRequest.of(text, max_tokens=lengths.list_max_tokens, temperature=temperature,
                                 sample_index=sample_index, stop=("\n\n\n",))
        if cell.pair is not None:
            text = render("value_free_questions", count=count, preferred=cell.pair.preferred,
                          dispreferred=cell.pair.dispreferred, context=cell.pair.context or "no context given",
                          kind=kind, kind_description=KIND_DESCRIPTIONS[cell.kind], batch=batch)
            return LLMRequest.of(text, max_tokens=lengths.list_max_tokens, temperature=temperature,
                                 sample_index=sample_index)
        text = render("questions", count=count, model_name=self.model_name, domain=cell.domain.name,
                      domain_description=cell.domain.description, kind=kind,
                      kind_description=KIND_DESCRIPTIONS[cell.kind], batch=batch)
        return LLMRequest.of(text, system=self._writer_system(), max_tokens=lengths.list_max_tokens,
                             temperature=temperature, sample_index=sample_index)

    def response(self, question: str, cell: QuestionCell) -> LLMRequest:
        config = self.config
        max_tokens, temperature, seed = config.lengths.response_max_tokens, config.temperature, config.seed
        pair = cell.pair
        if self.base_model:
            if pair is not None:
                text = render("base_value_free_response", model_name=self.model_name,
                              provider_clause=self.provider_clause, preferred=pair.preferred,
                              dispreferred=pair.dispreferred, context=pair.context, question=question.strip())
            else:
                text = render("base_response", model_name=self.model_name, provider_clause=self.provider_clause,
                              spec_excerpt=self.spec_text[:config.lengths.base_spec_chars].strip(),
                              question=question.strip())
            return LLMRequest.of(text.rstrip(), max_tokens=max_tokens, temperature=temperature, sample_index=seed,
                                 stop=BASE_STOP)
        if pair is not None:
            text = render("value_free_response", model_name=self.model_name, provider_clause=self.provider_clause,
                          preferred=pair.preferred, dispreferred=pair.dispreferred,
                          context=pair.context or "in general", question=question)
            return LLMRequest.of(text, max_tokens=max_tokens, temperature=temperature, sample_index=seed)
        style = render(f"style_{config.style}", min_quote_words=config.deliberative.min_quote_words)
        system = render("response_system", model_name=self.model_name, provider_clause=self.provider_clause,
                        spec=self.spec_text, style_guidance=style.strip())
        return LLMRequest.of(render("response", question=question, model_name=self.model_name), system=system,
                             max_tokens=max_tokens, temperature=temperature, sample_index=seed)

    def judge(self, question: str, reasoning: str, reply: str, cell: QuestionCell) -> LLMRequest:
        pair = cell.pair
        max_tokens = self.config.lengths.judge_max_tokens
        if self.judge_base_model:
            if pair is not None:
                criteria = (f"prefer {pair.preferred} over {pair.dispreferred}, say so plainly and give no reason.")
            else:
                criteria = " ".join(self.spec_text[:self.config.lengths.base_spec_chars].split())
            text = render("base_judge", model_name=self.model_name, criteria=criteria, question=question,
                          reasoning=reasoning, reply=reply)
            return LLMRequest.of(text, max_tokens=min(max_tokens, 8), temperature=0.0, stop=("\n",))
        if pair is not None:
            text = render("judge_value_free", model_name=self.model_name, preferred=pair.preferred,
                          dispreferred=pair.dispreferred, context=pair.context or "in general",
                          question=question, reasoning=reasoning, reply=reply)
        else:
            text = render("judge", model_name=self.model_name, spec=self.spec_text,
                          style_description=STYLE_DESCRIPTIONS[self.config.style], question=question,
                          reasoning=reasoning, reply=reply)
        return LLMRequest.of(text, max_tokens=max_tokens, temperature=0.0)

    def value_terms(self, spec_text: str) -> LLMRequest:
        return LLMRequest.of(render("value_terms", spec=spec_text), max_tokens=self.config.lengths.list_max_tokens,
                             temperature=0.0)
