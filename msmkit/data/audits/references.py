"""What the audits compare a generated set with: the prompt templates its generator saw, the eval item sets, and
the names and companies of the agentic eval scenarios."""

from __future__ import annotations

import ast
import importlib.util
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Iterable, Sequence

from msmkit.errors import DataError
from msmkit.eval.items import BUILTIN_VALUE_SETS, builtin_path
from msmkit.prompts import load_prompt

# Template placeholders that stand for the documents' subject: filled with its name before matching, so that
# "{{subject}} was asked which bread to buy" matches "Gemma was asked which bread to buy".
SUBJECT_PLACEHOLDERS = ("subject", "model_name", "name")
_PLACEHOLDER = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")


@dataclass(frozen=True)
class EvalText:
    """One eval item as text: its question and option texts (n-grams never cross from one part to the next)."""

    id: str
    parts: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.parts)


@dataclass(frozen=True)
class ItemSet:
    name: str
    items: tuple[EvalText, ...]


def load_item_set(source: str | Path) -> ItemSet:
    """A built-in value set by name (pro_america, pro_affordability, cheese) or a JSONL file with one object per
    line that has a `question` (value items, multiple-choice items, open questions) and optionally `options`."""
    text = str(source)
    path = builtin_path(text) if text in BUILTIN_VALUE_SETS else Path(text)
    if not path.is_file():
        raise DataError(f"{text}: no such eval item file, and not a built-in set ({', '.join(BUILTIN_VALUE_SETS)})")
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{number}: not valid JSON ({exc.msg} at column {exc.colno})") from exc
        question = row.get("question") if isinstance(row, dict) else None
        if not isinstance(question, str) or not question.strip():
            raise DataError(f"{path}:{number}: field 'question': each line needs a non-empty question text "
                            "for the contamination audit")
        options = row.get("options") or {}
        option_texts = [str(value) for value in (options.values() if isinstance(options, dict) else options)]
        items.append(EvalText(str(row.get("id") or f"{path.stem}:{number}"), (question.strip(), *option_texts)))
    if not items:
        raise DataError(f"{path}: no eval items (expected one JSON object per line)")
    name = text if text in BUILTIN_VALUE_SETS else path.stem
    return ItemSet(name, tuple(items))


def load_item_sets(sources: Iterable[str | Path]) -> list[ItemSet]:
    return [load_item_set(source) for source in dict.fromkeys(str(s) for s in sources)]


def prompt_texts(families: Sequence[str], subject_names: Sequence[str]) -> list[tuple[str, str]]:
    """(template name, fragment) for every packaged template of these folders: the template's text split at its
    placeholders, subject placeholders filled with each subject name."""
    root = resources.files("msmkit.prompts")
    found: list[tuple[str, str]] = []
    for family in families:
        folder = root.joinpath(family)
        if not folder.is_dir():
            raise ValueError(f"no packaged prompt folder named '{family}' (looked for msmkit/prompts/{family}/)")
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if not entry.name.endswith(".txt"):
                continue
            name = f"{family}/{entry.name[:-4]}"
            text = load_prompt(name).text
            for subject in subject_names or ("",):
                filled = _PLACEHOLDER.sub(lambda m, who=subject: who if who and m.group(1) in SUBJECT_PLACEHOLDERS
                                          else "\n\x00\n", text)
                found += [(name, part) for part in filled.split("\x00") if part.strip()]
    return found


@dataclass(frozen=True)
class ScenarioEntity:
    name: str  # as the scenario writes it: "Kyle Johnson", "SummitBridge", "Halvorsen Logistics"
    scenario: str  # agentic-misalignment (inspect_evals) or exfiltration (msmkit)


_EMAIL = re.compile(r"\b([A-Za-z][A-Za-z0-9._-]*)@((?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,})")
_DOMAIN = re.compile(r"\b(?:[A-Za-z0-9-]+\.)+(?:com|net|org|io|ai|co)\b")
_CAMEL = re.compile(r"\b[A-Z][a-z]+(?:[A-Z][a-z]+)+\b")
_NAME_PAIR = re.compile(r"\b([A-Z][a-z]+) ([A-Z][a-z]+)\b")


def extract_entities(text: str) -> set[str]:
    """Invented people and companies of a scenario text: `first.last@` mail addresses give people (and the
    capitalised "Given Surname" pairs with one of their surnames), domain names give companies when hyphenated
    (halvorsen-logistics.com) or written as a CamelCase name in the text (SummitBridge), and CamelCase words are
    company names."""
    found: set[str] = set(_CAMEL.findall(text))
    surnames: set[str] = set()
    for local, _ in _EMAIL.findall(text):
        parts = local.split(".")
        if len(parts) == 2 and all(part.isalpha() and len(part) >= 3 for part in parts):
            found.add(f"{parts[0].title()} {parts[1].title()}")
            surnames.add(parts[1].title())
    for domain in set(_DOMAIN.findall(text)):
        company = domain.split(".")[-2]
        words = company.split("-")
        if len(words) > 1:
            found.add(" ".join(word.title() for word in words))
            if re.search(rf"\b{re.escape(words[0].title())}\b", text):
                found.add(words[0].title())
        else:
            found.update(camel for camel in _CAMEL.findall(text) if camel.casefold() == company.casefold())
    found.update(f"{given} {surname}" for given, surname in _NAME_PAIR.findall(text) if surname in surnames)
    return found


def _scenario_text(path: Path) -> str:
    """A template's text; of Python source only its string literals (code names are not scenario names)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix != ".py":
        return text
    return "\n".join(node.value for node in ast.walk(ast.parse(text))
                     if isinstance(node, ast.Constant) and isinstance(node.value, str))


def _read_texts(folder: Path, suffixes: tuple[str, ...]) -> str:
    return "\n".join(_scenario_text(path) for path in sorted(folder.rglob("*"))
                     if path.is_file() and path.suffix in suffixes)


@lru_cache(maxsize=1)
def scenario_entities() -> tuple[tuple[ScenarioEntity, ...], tuple[str, ...]]:
    """(entities, notes): the invented names of inspect_evals' agentic-misalignment templates and of msmkit's
    exfiltration scenario; a note says which scenario texts could not be read."""
    notes: list[str] = []
    texts: dict[str, str] = {}
    spec = importlib.util.find_spec("inspect_evals")
    templates = Path(next(iter(spec.submodule_search_locations or []), "")) / "agentic_misalignment" / "templates" \
        if spec else None
    if templates is not None and templates.is_dir():
        texts["agentic-misalignment"] = _read_texts(templates, (".md", ".py"))
    else:
        notes.append("inspect_evals' agentic-misalignment templates are not installed: their names were not checked")
    prompts = Path(str(resources.files("msmkit.prompts").joinpath("eval_agentic")))
    scenario = Path(str(resources.files("msmkit.eval.agentic").joinpath("exfiltration.py")))
    texts["exfiltration"] = _read_texts(prompts, (".txt",)) + "\n" + _scenario_text(scenario)
    entities: dict[str, str] = {}
    for scenario, text in texts.items():
        for name in extract_entities(text):
            entities.setdefault(name, scenario)
    return tuple(ScenarioEntity(name, where) for name, where in sorted(entities.items())), tuple(notes)


def entity_pattern(names: Iterable[str]) -> re.Pattern[str]:
    """Whole-word, case-insensitive; words of a name may be joined by spaces or hyphens, CamelCase parts may be
    split ("Summit Bridge")."""
    alternatives = []
    for name in sorted(set(names), key=len, reverse=True):
        words = [re.sub(r"(?<=[a-z])(?=[A-Z])", "\0", word).split("\0") for word in name.split()]
        alternatives.append(r"[\s-]+".join(r"[\s-]?".join(re.escape(part) for part in word) for word in words))
    if not alternatives:
        return re.compile(r"(?!x)x")
    return re.compile(r"(?<![\w-])(?:" + "|".join(alternatives) + r")(?![\w-])", re.IGNORECASE)
