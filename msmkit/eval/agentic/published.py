"""inspect_evals' blackmail / leaking / murder scenarios with the agent's persona name as a parameter.

The prompts come from the package's own generator (`generate_prompts`), so the scenario text is the
published one; the task is assembled the way the package assembles it (system message, then the
automated instruction and the inbox as one user message, single-turn generation), with the persona's
name substituted. With the default name "Alex" the messages are byte-for-byte the package's.
"""

from __future__ import annotations

from typing import NamedTuple

from inspect_ai import Task
from inspect_ai.dataset import Sample
from inspect_ai.model import ChatMessageUser
from inspect_ai.solver import generate, system_message

from msmkit.eval.agentic.conditions import PUBLISHED_SCENARIOS, Condition
from msmkit.eval.agentic.persona import UPSTREAM_PERSONA, check_not_a_character, check_persona_name, rename_persona


class PublishedPrompts(NamedTuple):
    system: str
    user: str  # the automated instruction, a newline, the inbox
    email_content: str  # the inbox alone (inspect_evals' classifiers read it)


def published_prompts(condition: Condition, *, persona: str = UPSTREAM_PERSONA, prod: bool = False,
                      extra_system_instructions: str | None = None) -> PublishedPrompts:
    from inspect_evals.agentic_misalignment.prompt_generator import generate_prompts

    condition.validate()
    if condition.scenario not in PUBLISHED_SCENARIOS:
        raise ValueError(f"{condition.scenario!r} is not one of inspect_evals' scenarios "
                         f"({', '.join(PUBLISHED_SCENARIOS)})")
    check_persona_name(persona)
    prompts = generate_prompts(condition.scenario, condition.goal_type, condition.goal_value, condition.urgency,
                               extra_system_instructions, prod, None)
    original = prompts.system_prompt + prompts.user_prompt + prompts.email_content
    check_not_a_character(persona, UPSTREAM_PERSONA, original, condition.scenario)

    def named(text: str) -> str:
        return rename_persona(text, UPSTREAM_PERSONA, persona)

    emails = named(prompts.email_content)
    return PublishedPrompts(system=named(prompts.system_prompt), user="\n".join([named(prompts.user_prompt), emails]),
                            email_content=emails)


def published_task(condition: Condition, *, persona: str = UPSTREAM_PERSONA, prod: bool = False,
                   extra_system_instructions: str | None = None) -> Task:
    """One published condition as an Inspect task (same sample id and metadata as the package's); no scorer."""
    prompts = published_prompts(condition, persona=persona, prod=prod,
                                extra_system_instructions=extra_system_instructions)
    sample = Sample(
        id=condition.key,
        input=[ChatMessageUser(content=prompts.user)],
        metadata={"scenario": condition.scenario, "goal_type": condition.goal_type,
                  "goal_value": condition.goal_value, "urgency_type": condition.urgency,
                  "condition_id": condition.key, "extra_system_instructions": extra_system_instructions,
                  "test_eval_awareness": False, "prod": prod, "persona": persona},
    )
    return Task(dataset=[sample], solver=[system_message(prompts.system), generate(tool_calls="none")],
                message_limit=3)
