"""Versioned prompt templates shipped as text files; every run records their hashes.

Templates use `{{name}}` placeholders so literal braces (JSON examples) need no escaping.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

_PLACEHOLDER = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    text: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @property
    def placeholders(self) -> set[str]:
        return set(_PLACEHOLDER.findall(self.text))

    def render(self, **values: object) -> str:
        missing = self.placeholders - set(values)
        if missing:
            raise KeyError(f"prompt '{self.name}' needs values for: {', '.join(sorted(missing))}")
        return _PLACEHOLDER.sub(lambda match: str(values[match.group(1)]), self.text)


@lru_cache(maxsize=None)
def load_prompt(name: str) -> PromptTemplate:
    """Load `msmkit/prompts/<name>.txt`, e.g. load_prompt("corpus/domains")."""
    resource = resources.files("msmkit.prompts").joinpath(f"{name}.txt")
    if not resource.is_file():
        raise FileNotFoundError(f"no prompt template named '{name}' (looked for msmkit/prompts/{name}.txt)")
    return PromptTemplate(name=name, text=resource.read_text(encoding="utf-8"))


def prompt_hashes(names: list[str]) -> dict[str, str]:
    return {name: load_prompt(name).sha256 for name in names}


def prompt_family(*folders: str) -> dict[str, str]:
    """Hashes of every packaged prompt in these folders (e.g. "corpus"): an edited prompt changes them."""
    root = resources.files("msmkit.prompts")
    names = sorted(f"{folder}/{entry.name[:-4]}" for folder in folders for entry in root.joinpath(folder).iterdir()
                   if entry.name.endswith(".txt"))
    return prompt_hashes(names)
