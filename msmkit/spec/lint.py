"""`msm spec lint`: flag what the MSM paper found weakens a spec.

The paper's spec comparisons found that rules generalize better when the spec explains the values
behind them, that detailed sub-rules help, and that specific guidance beats general exhortation
("be ethical"). The text-pattern checks below approximate those findings; they are heuristics
(marked as such in every report) and can be wrong in both directions. The placeholder and
duplicate-heading checks are exact.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel

from msmkit.spec.load import ModelSpec
from msmkit.spec.structure import SpecRule, SpecSection

Severity = Literal["warning", "info"]


class CheckInfo(BaseModel):
    id: str
    severity: Severity
    heuristic: bool
    description: str


CHECKS: dict[str, CheckInfo] = {check.id: check for check in (
    CheckInfo(id="rule-without-reason", severity="warning", heuristic=True,
              description="a rule with no reason near it (no 'because', 'so that', 'since', 'in order to', ...)"),
    CheckInfo(id="vague-guidance", severity="warning", heuristic=True,
              description="general exhortation ('be ethical', 'do the right thing', 'as needed') with no specifics"),
    CheckInfo(id="no-concrete-example", severity="warning", heuristic=True,
              description="a substantial section with no example, quoted dialogue, named case or number"),
    CheckInfo(id="short-section", severity="info", heuristic=False,
              description="a section with almost no text and no subsections"),
    CheckInfo(id="duplicate-heading", severity="warning", heuristic=False,
              description="two sections with the same heading"),
    CheckInfo(id="unfilled-placeholder", severity="warning", heuristic=False,
              description="{model_name} / {provider_name} left unfilled, or an unknown {placeholder}"),
)}

REASON_MARKERS = re.compile(
    r"\b(because|so that|since|in order to|this matters|matters because|the reason|reasons?\b|why|to ensure|"
    r"to avoid|to prevent|as a result|given that|which means|for the sake of|we believe|"
    r"is important|grounded in|the point is|this protects|this keeps|this lets|would (?:lead|mean|cause)|"
    r"the risk|the cost|at stake)\b", re.IGNORECASE)

VAGUE_PATTERNS = re.compile(
    r"\b(?:be (?:ethical|good|moral|nice|responsible|reasonable|sensible|virtuous)"
    r"|do (?:the )?right thing|do good\b"
    r"|(?:act|behave|respond|proceed|conduct itself|conduct yourself)\s+(?:appropriately|properly|responsibly|"
    r"ethically|well|correctly|wisely)"
    r"|(?:as|when|where|if) (?:needed|necessary|appropriate|required)"
    r"|(?:in an? )?appropriate (?:action|actions|behaviou?r|response|responses|way|manner|steps|measures)"
    r"|use (?:good|sound|your best|its best|common) (?:judge?ment|sense)"
    r"|(?:helpful, honest,? and harmless)"
    r"|(?:broadly |generally )?good values"
    r"|in an? (?:ethical|responsible) (?:manner|way))\b", re.IGNORECASE)

SPECIFICS = re.compile(
    r"(for example|for instance|e\.g\.|such as|including|specifically|namely|\d|:|[\"\u201c][^\"\u201d]{8,}[\"\u201d])",
    re.IGNORECASE)

EXAMPLE_MARKERS = re.compile(
    r"\b(for example|for instance|e\.g\.|such as|consider (?:a|an|the|this) (?:case|situation|scenario|example)|"
    r"imagine|suppose|say (?:a|that a) user|(?:when|if) (?:a|the|someone|a) (?:user|customer|person|colleague)|"
    r"a user (?:asks|says|writes|might|wants)|asked (?:for|whether|which|about|to (?:choose|recommend|pick|compare))|"
    r"in one case|example:|"
    r"instance:|like when)", re.IGNORECASE)
QUOTED = re.compile(r"[\"\u201c](?:[^\"\u201d\s]+\s+){2,}[^\"\u201d]*[\"\u201d]")
NUMBER = re.compile(r"(?<![A-Za-z])\d[\d,.]*\b")
CAPITALISED = re.compile(r"(?<=[a-z,;:\u2014(] )([A-Z][a-z\u00e0-\u00ff]+(?:[- ][A-Z][a-z\u00e0-\u00ff]+)*)")
NAME_STOPWORDS = {"I", "AI", "Model", "Spec", "The", "This", "It", "We", "Our", "And", "But", "For", "When", "If"}

MIN_EXAMPLE_SECTION_CHARS = 300  # own text below this is too short to expect an example
MIN_SECTION_CHARS = 120


class Finding(BaseModel):
    check: str
    severity: Severity
    heuristic: bool
    section: str
    line: int
    message: str
    fix: str


class LintReport(BaseModel):
    spec: str
    findings: list[Finding]
    checks: list[CheckInfo]

    @property
    def warnings(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.severity == "warning"]

    @property
    def heuristic_checks(self) -> list[str]:
        return [check.id for check in self.checks if check.heuristic]


def _finding(check_id: str, spec: ModelSpec, section: SpecSection, offset: int, message: str, fix: str) -> Finding:
    check = CHECKS[check_id]
    return Finding(check=check_id, severity=check.severity, heuristic=check.heuristic,
                   section=spec.structure.section_title_path(section.index), line=spec.line_of(offset),
                   message=message, fix=fix)


def _snippet(text: str, limit: int = 70) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit - 3] + "..."


def _scope_end(spec: ModelSpec, rule: SpecRule, top_level: list[SpecRule]) -> int:
    """Where a top-level rule's reach ends: the next top-level rule of its section, or the section's end."""
    section = spec.structure.sections[rule.section]
    later = [other.start for other in top_level if other.section == rule.section and other.start > rule.start]
    return min(later) if later and rule.kind != "heading" else section.body_end


def _is_reasoned(spec: ModelSpec, rule: SpecRule, top_level: list[SpecRule]) -> bool:
    """A reason in the rule itself or in the prose around its sub-rules, or in most of its sub-rules.

    Sub-rule text alone is not enough: a prohibition such as "do not assume that because ..." contains
    a marker without giving a reason, so one marker among many sub-rules does not count.
    """
    end = _scope_end(spec, rule, top_level)
    inner = [other for other in spec.structure.rules
             if other.index != rule.index and rule.start <= other.start < end]
    prose, cursor = [spec.text[rule.start:rule.end]], rule.end
    for other in sorted(inner, key=lambda item: item.start):
        prose.append(spec.text[cursor:other.start])
        cursor = max(cursor, other.end)
    prose.append(spec.text[cursor:end])
    if REASON_MARKERS.search(" ".join(prose)):
        return True
    reasoned = sum(1 for other in inner if REASON_MARKERS.search(other.text))
    return bool(inner) and reasoned * 2 >= len(inner)


def check_rule_reasons(spec: ModelSpec) -> list[Finding]:
    top_level = [rule for rule in spec.structure.rules if rule.parent is None]
    findings = []
    for rule in top_level:
        if _is_reasoned(spec, rule, top_level):
            continue
        label = f"{rule.label}: " if rule.label else ""
        findings.append(_finding(
            "rule-without-reason", spec, spec.structure.sections[rule.section], rule.start,
            f"rule '{label}{_snippet(rule.text)}' gives no reason",
            "say why the rule exists (what it protects, what goes wrong without it), e.g. '... because ...'"))
    return findings


def _sentences(text: str, base: int) -> list[tuple[int, str]]:
    """(absolute offset, sentence) pairs; list items and lines count as sentence boundaries."""
    found = []
    for match in re.finditer(r"[^\n.!?]+(?:[.!?]+|$)", text, re.MULTILINE):
        if match.group(0).strip():
            found.append((base + match.start(), match.group(0)))
    return found


def check_vague_guidance(spec: ModelSpec) -> list[Finding]:
    findings = []
    for section in spec.structure.sections:
        # Headings count too: a section titled "Be good" is vague guidance.
        pieces = _sentences(section.body, section.body_start)
        if section.level > 0:
            pieces.insert(0, (section.start, section.title))
        for offset, sentence in pieces:
            match = VAGUE_PATTERNS.search(sentence)
            if not match or SPECIFICS.search(sentence):
                continue
            findings.append(_finding(
                "vague-guidance", spec, section, offset,
                f"'{match.group(0)}' without specifics: '{_snippet(sentence)}'",
                "say concretely what to do in which situation, or follow it with 'for example ...'"))
    return findings


def _has_concrete_detail(spec: ModelSpec, section: SpecSection) -> bool:
    body = section.body
    if EXAMPLE_MARKERS.search(body) or QUOTED.search(body):
        return True
    labels = {rule.label for rule in spec.structure.rules_in(section.index) if rule.label}
    numbers = [number for number in NUMBER.findall(body) if not any(number in label for label in labels)]
    if numbers:
        return True
    ignored = NAME_STOPWORDS | {spec.model_name or "", spec.provider_name or ""} | set(section.title.split())
    names = {name for name in CAPITALISED.findall(body) if name not in ignored}
    return len(names) >= 2


def check_examples(spec: ModelSpec) -> list[Finding]:
    findings = []
    for section in spec.structure.sections:
        if len(section.body.strip()) < MIN_EXAMPLE_SECTION_CHARS or _has_concrete_detail(spec, section):
            continue
        findings.append(_finding(
            "no-concrete-example", spec, section, section.start,
            f"section '{section.title}' ({len(section.body.strip()):,} chars) has no concrete example",
            "add a worked case: a named situation, a short user/assistant exchange, or 'for example ...'"))
    return findings


def check_short_sections(spec: ModelSpec) -> list[Finding]:
    findings = []
    for section in spec.structure.sections:
        size = len(section.body.strip())
        if section.level > 0 and not section.children and size < MIN_SECTION_CHARS:
            findings.append(_finding(
                "short-section", spec, section, section.start,
                f"section '{section.title}' has only {size} characters of text",
                "expand it with what the behaviour is, why, and an example, or merge it into its parent"))
    return findings


def check_duplicate_headings(spec: ModelSpec) -> list[Finding]:
    seen: dict[str, SpecSection] = {}
    findings = []
    for section in spec.structure.sections:
        if section.level == 0:
            continue
        key = re.sub(r"[\W_]+", " ", section.title.casefold()).strip()
        if key in seen:
            first = seen[key]
            findings.append(_finding(
                "duplicate-heading", spec, section, section.start,
                f"heading '{section.title}' repeats the heading at line {first.heading_line}",
                "merge the two sections or give each a distinct heading (generation picks sections by heading)"))
        else:
            seen[key] = section
    return findings


def check_placeholders(spec: ModelSpec) -> list[Finding]:
    findings = []
    pattern = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]*)\}(?!\})")
    for match in pattern.finditer(spec.text):
        name = match.group(1)
        section = spec.structure.section_at(match.start())
        if name in spec.unfilled_placeholders:
            message = f"{{{name}}} is unfilled"
            fix = f"pass --{name.replace('_', '-')} (or {name}=...) so documents name the right model"
        else:
            message = f"unknown placeholder {{{name}}} is left as written"
            fix = f"write the value in, or escape it as {{{{{name}}}}} if the braces are literal"
        findings.append(_finding("unfilled-placeholder", spec, section, match.start(), message, fix))
    return findings


def lint_spec(spec: ModelSpec) -> LintReport:
    findings = (check_placeholders(spec) + check_duplicate_headings(spec) + check_rule_reasons(spec)
                + check_vague_guidance(spec) + check_examples(spec) + check_short_sections(spec))
    findings.sort(key=lambda finding: (finding.line, finding.check))
    return LintReport(spec=spec.name, findings=findings, checks=list(CHECKS.values()))
