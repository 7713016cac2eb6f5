"""Where msmkit keeps caches (converted models, LLM responses) across runs."""

from __future__ import annotations

import os
import re
from pathlib import Path


def cache_dir() -> Path:
    """$MSM_CACHE_DIR, else ~/.cache/msmkit. Created on first use."""
    root = Path(os.environ.get("MSM_CACHE_DIR") or Path.home() / ".cache" / "msmkit")
    root.mkdir(parents=True, exist_ok=True)
    return root


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_component(text: str, max_len: int = 60) -> str:
    """A string usable as ONE path component: never empty, never '.'/'..', no separators.

    For display only; identity on disk must come from ids or hashes, never from model text.
    """
    cleaned = _UNSAFE.sub("-", text).strip("-.")[:max_len]
    return cleaned or "item"
