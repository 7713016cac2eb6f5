"""The numbered-or-bulleted list a base model writes when a completion prompt ends inside a list."""

from __future__ import annotations

import re

_ITEM = re.compile(r"^\s*(?:\d{1,3}[.)]|[-*\u2022])\s+(.+?)\s*$")


def parse_line_list(text: str, limit: int, min_chars: int = 3) -> list[str]:
    """Numbered or bulleted items of a completion, in order, without repeats; stops at the first non-item line
    after the list began (a base model tends to drift into other text)."""
    items: list[str] = []
    seen: set[str] = set()
    for line in text.splitlines():
        match = _ITEM.match(line)
        if match is None:
            if items and line.strip():
                break
            continue
        item = match.group(1).strip()
        key = item.casefold()
        if len(item) >= min_chars and key not in seen:
            seen.add(key)
            items.append(item)
        if len(items) >= limit:
            break
    return items
