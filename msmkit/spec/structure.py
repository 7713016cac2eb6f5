"""The structure of a Model Spec: Markdown sections (with nesting and exact character spans) and rules.

Everything here works on the *templated* text, so a span `text[start:end]` is exactly what a
generator was shown. Rule detection is a text heuristic: labelled items (`SP1:`, `GP2.`), numbered
or lettered items (`1.`, `b)`), and bullet items that read as directives ("Not deceiving ...",
"Avoid ...", "... must ...").
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel

HEADING_LINE = re.compile(r"^(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$")
FENCE_LINE = re.compile(r"^[ \t]*(```|~~~)")
_LABELLED = re.compile(r"^(?P<indent>[ \t]*)(?:[-*+\u2022][ \t]+)?"
                       r"\(?(?P<label>[A-Z]{1,5}[0-9]+(?:\.[0-9]+)*[a-z]?)\)?[:.)][ \t]+(?P<text>\S.*)$")
_NUMBERED = re.compile(r"^(?P<indent>[ \t]*)\(?(?P<label>[0-9]{1,3}|[a-z])[.)][ \t]+(?P<text>\S.*)$")
_BULLET = re.compile(r"^(?P<indent>[ \t]*)[-*+\u2022][ \t]+(?P<text>\S.*)$")
_HEADING_RULE = re.compile(r"^\(?(?P<label>[A-Z]{1,5}[0-9]+(?:\.[0-9]+)*[a-z]?)\)?[:.)][ \t]+(?P<text>\S.*)$")

# Words that open a directive bullet ("Avoid ...", "Never ...", "Not deceiving ...").
_DIRECTIVE_OPENERS = {
    "do", "don't", "dont", "never", "always", "avoid", "not", "no", "be", "prefer", "use", "refuse",
    "ask", "tell", "keep", "treat", "make", "give", "follow", "respect", "support", "protect",
    "report", "decline", "explain", "acknowledge", "consider", "flag", "stop", "maintain", "ensure",
    "remain", "stay", "only", "try", "act", "express", "defer", "comply", "check", "let", "share",
}
_MODAL = re.compile(r"\b(must|should|shall|never|always|do not|don't|may not|cannot|can't|is required to|"
                    r"are required to|is expected to|ought to|will not|won't)\b", re.IGNORECASE)

RuleKind = Literal["labelled", "numbered", "bullet", "heading"]


class SpecSection(BaseModel):
    """One Markdown section. Level 0 is text before the first heading (or a spec with no headings)."""

    index: int
    level: int
    title: str
    heading_line: int  # 1-based line of the heading (of the first body line for level 0)
    start: int  # span of the whole section, heading and subsections included
    end: int
    body_start: int  # span of the section's own text: after the heading, before the first subsection
    body_end: int
    parent: int | None = None
    children: list[int] = []
    text: str  # verbatim `spec_text[start:end]`
    body: str  # verbatim `spec_text[body_start:body_end]`


class SpecRule(BaseModel):
    """A rule-like item: a labelled, numbered or directive bullet line (with its continuation lines)."""

    index: int
    kind: RuleKind
    label: str | None
    text: str
    line: int  # 1-based
    start: int
    end: int
    section: int
    depth: int  # indentation depth within a list; 0 for top-level items and heading rules
    parent: int | None = None  # the enclosing rule, for nested sub-rules


class SpecStructure(BaseModel):
    sections: list[SpecSection]
    rules: list[SpecRule]

    def section_title_path(self, index: int) -> str:
        """`Parent > Child` titles of a section, for messages."""
        names = []
        current: int | None = index
        while current is not None:
            names.append(self.sections[current].title)
            current = self.sections[current].parent
        return " > ".join(reversed(names))

    def rules_in(self, section_index: int) -> list[SpecRule]:
        return [rule for rule in self.rules if rule.section == section_index]

    def section_at(self, offset: int) -> SpecSection:
        """The innermost section whose own body or heading contains `offset`."""
        best = self.sections[0]
        for section in self.sections:
            if section.start <= offset < section.end and section.level >= best.level:
                best = section
        return best


def _line_offsets(text: str) -> list[int]:
    offsets = [0]
    for match in re.finditer("\n", text):
        offsets.append(match.end())
    return offsets


def _is_directive(text: str) -> bool:
    words = re.findall(r"[A-Za-z']+", text)
    if not words:
        return False
    first = words[0].lower()
    if first in _DIRECTIVE_OPENERS:
        return True
    # Gerund directives, as in "Avoiding drastic unilateral actions" or "Being transparent".
    if first.endswith("ing") and len(first) > 4 and text[:1].isupper():
        return True
    return bool(_MODAL.search(text))


def indent_width(indent: str) -> int:
    return len(indent.replace("\t", "    "))


def parse_structure(text: str, *, untitled: str = "(whole spec)") -> SpecStructure:
    """Sections and rules of a templated spec."""
    lines = text.split("\n")
    offsets = _line_offsets(text)
    headings: list[tuple[int, int, str]] = []  # (line index, level, title)
    in_fence = False
    for number, line in enumerate(lines):
        if FENCE_LINE.match(line):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        match = HEADING_LINE.match(line)
        if match and match.group(2).strip():
            headings.append((number, len(match.group(1)), match.group(2).strip()))

    sections: list[SpecSection] = []
    first_heading_line = headings[0][0] if headings else len(lines)
    preamble_end = offsets[first_heading_line] if headings else len(text)
    if text[:preamble_end].strip():
        first_body_line = next(i for i, line in enumerate(lines) if line.strip())
        sections.append(SpecSection(
            index=0, level=0, title=untitled if not headings else "(preamble)",
            heading_line=first_body_line + 1, start=0, end=preamble_end, body_start=0,
            body_end=preamble_end, text=text[:preamble_end], body=text[:preamble_end]))

    stack: list[int] = []
    for position, (line_index, level, title) in enumerate(headings):
        start = offsets[line_index]
        body_start = offsets[line_index + 1] if line_index + 1 < len(offsets) else len(text)
        next_heading = headings[position + 1][0] if position + 1 < len(headings) else None
        body_end = offsets[next_heading] if next_heading is not None else len(text)
        end = len(text)
        for later_line, later_level, _ in headings[position + 1:]:
            if later_level <= level:
                end = offsets[later_line]
                break
        while stack and sections[stack[-1]].level >= level:
            stack.pop()
        parent = stack[-1] if stack else None
        index = len(sections)
        sections.append(SpecSection(
            index=index, level=level, title=title, heading_line=line_index + 1, start=start, end=end,
            body_start=body_start, body_end=body_end, parent=parent, text=text[start:end],
            body=text[body_start:body_end]))
        if parent is not None:
            sections[parent].children.append(index)
        stack.append(index)

    if not sections:  # whitespace-only text; loaders reject it, but keep the parser total
        sections.append(SpecSection(index=0, level=0, title=untitled, heading_line=1, start=0, end=len(text),
                                    body_start=0, body_end=len(text), text=text, body=text))
    rules = _find_rules(text, lines, offsets, sections)
    return SpecStructure(sections=sections, rules=rules)


def _find_rules(text: str, lines: list[str], offsets: list[int], sections: list[SpecSection]) -> list[SpecRule]:
    rules: list[SpecRule] = []
    for section in sections:
        if section.level > 0:
            title = section.title
            match = _HEADING_RULE.match(title)
            if match:
                line_start = offsets[section.heading_line - 1]
                rules.append(SpecRule(
                    index=len(rules), kind="heading", label=match.group("label"), text=match.group("text").strip(),
                    line=section.heading_line, start=line_start, end=line_start + len(lines[section.heading_line - 1]),
                    section=section.index, depth=0))
        heading_rule = rules[-1].index if rules and rules[-1].section == section.index else None
        first_line = _line_number(offsets, section.body_start)
        last_line = _line_number(offsets, max(section.body_end - 1, section.body_start))
        open_items: list[tuple[int, int]] = []  # (indent width, rule index) of enclosing list items
        in_fence = False
        number = first_line
        while number <= last_line and number < len(lines):
            line = lines[number]
            if FENCE_LINE.match(line):
                in_fence = not in_fence
            if in_fence or not line.strip():
                number += 1
                continue
            found = _match_rule_line(line)
            if found is None:
                if not line.startswith((" ", "\t")):
                    open_items.clear()  # a prose paragraph ends any list
                number += 1
                continue
            kind, label, indent, item_text = found
            # Continuation lines: indented deeper than the item, not themselves list items.
            end_line = number
            while (end_line + 1 <= last_line and end_line + 1 < len(lines) and lines[end_line + 1].strip()
                   and indent_width(re.match(r"[ \t]*", lines[end_line + 1]).group(0)) > indent
                   and match_list_item(lines[end_line + 1]) is None):
                end_line += 1
            while open_items and open_items[-1][0] >= indent:
                open_items.pop()
            parent = open_items[-1][1] if open_items else heading_rule
            if kind is None and parent is not None:
                kind = "bullet"  # any item nested under a rule is one of its sub-rules
            full_text = " ".join([item_text] + [lines[i].strip() for i in range(number + 1, end_line + 1)])
            start = offsets[number]
            rule_index = len(rules)
            if kind is not None:
                rules.append(SpecRule(
                    index=rule_index, kind=kind, label=label, text=full_text, line=number + 1, start=start,
                    end=offsets[end_line] + len(lines[end_line]), section=section.index,
                    depth=rules[parent].depth + 1 if parent is not None else 0, parent=parent))
                open_items.append((indent, rule_index))
            number = end_line + 1
    return rules


def _line_number(offsets: list[int], offset: int) -> int:
    """0-based line index containing `offset`."""
    low, high = 0, len(offsets) - 1
    while low < high:
        middle = (low + high + 1) // 2
        if offsets[middle] <= offset:
            low = middle
        else:
            high = middle - 1
    return low


def match_list_item(line: str) -> re.Match[str] | None:
    return _LABELLED.match(line) or _NUMBERED.match(line) or _BULLET.match(line)


def _match_rule_line(line: str) -> tuple[RuleKind | None, str | None, int, str] | None:
    """(kind or None for a non-directive list item, label, indent width, text) for list-item lines."""
    match = _LABELLED.match(line)
    if match:
        return "labelled", match.group("label"), indent_width(match.group("indent")), match.group("text").strip()
    match = _NUMBERED.match(line)
    if match:
        return "numbered", match.group("label"), indent_width(match.group("indent")), match.group("text").strip()
    match = _BULLET.match(line)
    if match:
        item = match.group("text").strip()
        kind: RuleKind | None = "bullet" if _is_directive(item) else None
        return kind, None, indent_width(match.group("indent")), item
    return None
