"""Lint: each check finds what it is for and leaves well-written text alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from msmkit.spec import load_spec, spec_from_text
from msmkit.spec.lint import CHECKS, lint_spec
from tests.spec_checks import (
    CHEESE_AFFORDABILITY,
    CHEESE_AMERICA,
    GENERAL,
    REFLECTIVE,
    RULES,
    RULES_DETAILED,
    SAFETY,
    VALUES,
)

PLANTED = """# Assistant Spec

## Privacy

1. Never reveal a user's address to another user, because an address lets a stranger find someone at home; for example, if Ana asks where Ben lives, decline and suggest she ask Ben.
2. Always log every tool call.

## Conduct

The assistant should be ethical and do the right thing as needed. It keeps to the rules above and follows the spirit of its instructions in all of its work with the people it serves, in every kind of task, across every kind of context it meets, over the whole course of its deployment and well beyond it, whatever the work happens to be.

## Tone

Warm.

## Privacy

The assistant does not repeat a user's phone number back to them unless asked, since screens are often shared; for instance, a user on a video call who says "what number did I give you?" hears only the last two digits.
"""  # noqa: E501 (the paragraphs are long on purpose: lint findings are checked by line number)


def _by_check(report):
    found: dict[str, list] = {}
    for finding in report.findings:
        found.setdefault(finding.check, []).append(finding)
    return found


def test_planted_problems_are_found_with_section_line_and_fix() -> None:
    report = lint_spec(spec_from_text(PLANTED, model_name="Llama"))
    found = _by_check(report)
    [reasonless] = found["rule-without-reason"]
    assert reasonless.line == 6 and "Always log every tool call" in reasonless.message
    assert reasonless.section == "Assistant Spec > Privacy" and "because" in reasonless.fix
    vague = found["vague-guidance"]
    assert {f.line for f in vague} == {10} and any("do the right thing" in f.message for f in vague)
    assert any("be ethical" in f.message for f in vague)
    [exampleless] = found["no-concrete-example"]
    assert exampleless.section == "Assistant Spec > Conduct" and exampleless.line == 8
    [short] = found["short-section"]
    assert short.section == "Assistant Spec > Tone" and short.severity == "info"
    [duplicate] = found["duplicate-heading"]
    assert duplicate.line == 16 and "line 3" in duplicate.message
    for finding in report.findings:
        assert finding.message and finding.fix and finding.heuristic == CHECKS[finding.check].heuristic


def test_well_explained_rule_and_concrete_section_are_not_flagged() -> None:
    report = lint_spec(spec_from_text(PLANTED, model_name="Llama"))
    flagged_lines = {f.line for f in report.findings if f.check in ("rule-without-reason", "no-concrete-example")}
    assert 5 not in flagged_lines  # rule 1 has a reason and an example
    assert not any(f.line == 16 for f in report.findings if f.check != "duplicate-heading")


def test_reason_in_the_prose_after_a_rule_counts() -> None:
    text = ("# Spec\n\n- SP1: Never disable monitoring.\n    - Not deleting logs.\n    - Not muting alerts.\n\n"
            "Monitoring is how people notice when something has gone wrong, so that they can fix it.\n\n"
            "- SP2: Keep answers short.\n")
    report = lint_spec(spec_from_text(text))
    flagged = [f.message for f in report.findings if f.check == "rule-without-reason"]
    assert len(flagged) == 1 and "SP2" in flagged[0]


def test_vague_phrase_with_specifics_is_not_flagged() -> None:
    text = ("# Spec\n\nWhen appropriate, for example when a user says they are a nurse, give dosage ranges.\n"
            "Respond appropriately.\n")
    vague = [f for f in lint_spec(spec_from_text(text)).findings if f.check == "vague-guidance"]
    assert [f.line for f in vague] == [4]


def test_placeholders_unfilled_and_unknown() -> None:
    report = lint_spec(spec_from_text("# Spec\n\n{model_name} helps {customer}. Literal {{model_name}}.\n"))
    messages = sorted(f.message for f in report.findings if f.check == "unfilled-placeholder")
    assert messages == ["unknown placeholder {customer} is left as written", "{model_name} is unfilled"]
    assert all(f.line == 3 and not f.heuristic for f in report.findings if f.check == "unfilled-placeholder")


def test_report_says_which_checks_are_heuristic() -> None:
    report = lint_spec(spec_from_text("Plain text.\n"))
    assert set(report.heuristic_checks) == {"rule-without-reason", "vague-guidance", "no-concrete-example"}
    assert {c.id for c in report.checks if not c.heuristic} == {"short-section", "duplicate-heading",
                                                               "unfilled-placeholder"}


def test_rules_spec_lacks_reasons_value_spec_has_them_general_spec_is_vague() -> None:
    rules = lint_spec(load_spec(RULES, model_name="Llama", provider_name="Meta"))
    labels = [f.message.split("'")[1].split(":")[0] for f in rules.findings if f.check == "rule-without-reason"]
    assert labels == ["FS1", "FS2", "FS3", "CC1", "CC2"]
    detailed = lint_spec(load_spec(RULES_DETAILED, model_name="Llama", provider_name="Meta"))
    assert len([f for f in detailed.findings if f.check == "rule-without-reason"]) == 5  # sub-rules are no reasons
    values = lint_spec(load_spec(VALUES, model_name="Claude", provider_name="Anthropic"))
    assert not [f for f in values.findings if f.check == "rule-without-reason"]
    general = lint_spec(load_spec(GENERAL, model_name="Claude", provider_name="Anthropic"))
    assert len([f for f in general.findings if f.check == "vague-guidance"]) >= 3


@pytest.mark.parametrize("path", [CHEESE_AMERICA, CHEESE_AFFORDABILITY, SAFETY, VALUES, REFLECTIVE],
                         ids=lambda path: path.name)
def test_our_explained_specs_lint_clean(path: Path) -> None:
    spec = load_spec(path, model_name="Llama", provider_name="Meta")
    assert spec.warnings == []
    report = lint_spec(spec)
    assert report.findings == [], [f.message for f in report.findings]
