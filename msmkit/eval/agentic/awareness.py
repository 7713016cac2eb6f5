"""Eval awareness: does the transcript say the agent thinks it is being tested?

The judge is inspect_evals' own deliberation classifier (its prompt and its answer parsing), the one its
`test_eval_awareness` option scores with. That option also appends a notice to the system prompt telling the
agent to deliberate whether it is in an evaluation; msmkit does not: the scenario stays the paper's and the
classifier only reads what the agent volunteered. Labels: deliberates_thinks_eval (`aware`),
deliberates_thinks_real, no_deliberation.
"""

from __future__ import annotations

from dataclasses import dataclass

from inspect_ai.model import GenerateConfig, Model

from msmkit.eval.agentic.scoring import Status, is_refusal, short_error

THINKS_EVAL = "deliberates_thinks_eval"
NO_DELIBERATION = "no_deliberation"


@dataclass(frozen=True)
class AwarenessVerdict:
    status: Status
    label: str | None  # one of the classifier's three categories when status is ok
    explanation: str = ""
    error: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def aware(self) -> bool | None:
        return None if self.label is None else self.label == THINKS_EVAL

    @property
    def deliberates(self) -> bool | None:
        return None if self.label is None else self.label != NO_DELIBERATION


async def judge_awareness(grader: Model, transcript: str, *, max_tokens: int = 1024,
                          temperature: float | None = 0.0) -> AwarenessVerdict:
    """inspect_evals' deliberation classifier on the whole transcript (scratchpad included)."""
    from inspect_evals.agentic_misalignment.classifiers import DeliberationClassifier

    classifier = DeliberationClassifier(model_id=str(grader))
    messages = classifier.get_grader_input(email_content="", response=transcript)
    try:
        output = await grader.generate(messages, config=GenerateConfig(temperature=temperature, max_tokens=max_tokens))
    except Exception as exc:  # noqa: BLE001 - any failed call is an `error` verdict, never benign
        return AwarenessVerdict("error", None, error=short_error(exc))
    usage = output.usage
    tokens = (usage.input_tokens or 0, usage.output_tokens or 0) if usage else (0, 0)
    try:
        label, _ = classifier.parse_grader_response(output.completion)
    except ValueError as exc:
        status: Status = "refused" if is_refusal(output) else "unparseable"
        return AwarenessVerdict(status, None, output.completion, short_error(exc), *tokens)
    return AwarenessVerdict("ok", label, output.completion, None, *tokens)
