"""API keys come from the environment (or a .env file the user names) and never reach disk.

Every file the tool writes goes through `redact`, which replaces any known secret value.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from dotenv import dotenv_values

SECRET_ENV_VARS = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "MSM_API_KEY", "HF_TOKEN")
_KEY_LIKE = re.compile(r"\b(sk-[A-Za-z0-9_\-]{16,}|sk-ant-[A-Za-z0-9_\-]{16,})\b")
_extra_secret_names: set[str] = set()


def load_dotenv_file(path: str | Path) -> None:
    """Load KEY=VALUE pairs from a .env file into os.environ (existing variables win)."""
    for name, value in dotenv_values(path).items():
        if value is not None:
            os.environ.setdefault(name, value)
            if name.endswith(("_KEY", "_TOKEN", "_SECRET")):
                _extra_secret_names.add(name)


def register_secret_env(name: str) -> None:
    """Mark an environment variable (e.g. one named by `api_key_env`) as secret."""
    _extra_secret_names.add(name)


def get_secret(name: str) -> str | None:
    register_secret_env(name)
    value = os.environ.get(name)
    return value or None


def secret_values() -> list[str]:
    names = set(SECRET_ENV_VARS) | _extra_secret_names
    values = [os.environ.get(name, "") for name in names]
    return sorted({value for value in values if len(value) >= 8}, key=len, reverse=True)


def redact(text: str) -> str:
    """Replace every known secret value, and anything shaped like an API key, with a marker."""
    for value in secret_values():
        text = text.replace(value, "[REDACTED]")
    return _KEY_LIKE.sub("[REDACTED]", text)
