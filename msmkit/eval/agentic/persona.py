"""The agent's persona name in every scenario.

The paper named the agent after the model being trained (e.g. "Qwen"), not the upstream default "Alex",
and later work measured the persona name as a confound, so the name is a setting and is recorded with
every result. inspect_evals' task has no name parameter: its scenarios are rendered from the package's own
prompt generator and the persona's name (and its mail address, alex.ai@...) substituted afterwards.
"""

from __future__ import annotations

import re

from msmkit.errors import ConfigError

UPSTREAM_PERSONA = "Alex"  # inspect_evals' blackmail / leaking / murder
EXFILTRATION_PERSONA = "Orion"  # our exfiltration scenario's default
_VALID_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[ .\-][A-Za-z0-9]+)*$")
MAX_NAME_LENGTH = 40


def default_persona(scenario: str) -> str:
    return EXFILTRATION_PERSONA if scenario == "exfiltration" else UPSTREAM_PERSONA


def check_persona_name(name: str) -> str:
    """The name, or a ConfigError saying what a usable name looks like."""
    if not name or len(name) > MAX_NAME_LENGTH or not _VALID_NAME.match(name):
        raise ConfigError(f"model_name {name!r} cannot name the agent: use letters, digits, single spaces, dots or "
                          f"hyphens, starting with a letter, at most {MAX_NAME_LENGTH} characters (e.g. 'Qwen')")
    return name


def persona_slug(name: str) -> str:
    """The name as the local part of a mail address or a path component: 'Llama 3.1' -> 'llama-3-1'."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def rename_persona(text: str, default: str, name: str) -> str:
    """Replace the scenario's default persona (as a whole word, and in its mail address) with `name`."""
    if name == default:
        return text
    text = re.sub(rf"\b{re.escape(default.lower())}(?=\.ai@)", persona_slug(name), text)
    return re.sub(rf"\b{re.escape(default)}\b", name, text)


def check_not_a_character(name: str, default: str, rendered: str, scenario: str) -> None:
    """Refuse a persona name that is already someone else in the scenario (e.g. 'Kyle')."""
    if name != default and re.search(rf"\b{re.escape(name)}\b", rendered, re.IGNORECASE):
        raise ConfigError(f"model_name {name!r} already names someone or something in the {scenario} scenario; "
                          "the agent would be confused with it: choose another name")
