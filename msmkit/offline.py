"""No network at run time unless the user asks for it.

msmkit never downloads weights or data sets while it runs (models come from disk or the local Hugging Face
cache). The Hugging Face libraries would still look things up on the hub on their own, e.g. PEFT checking a
base model's config.json; offline mode stops that. `apply_offline_defaults` runs once when the CLI starts,
before any Hugging Face library is imported (they read these variables at import time), and subprocesses
such as `accelerate launch` inherit them.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")
ALLOW_DOWNLOAD_VARIABLE = "MSM_ALLOW_DOWNLOAD"
_TRUE = frozenset({"1", "true", "yes", "on"})


def downloads_allowed(environ: MutableMapping[str, str] | None = None) -> bool:
    """True when the user set MSM_ALLOW_DOWNLOAD to 1 / true / yes / on."""
    environ = os.environ if environ is None else environ
    return environ.get(ALLOW_DOWNLOAD_VARIABLE, "").strip().lower() in _TRUE


def apply_offline_defaults(allow_download: bool = False,
                           environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Set each Hugging Face offline variable to 1 unless the user set it already or downloads are allowed.

    `allow_download` (the CLI's --allow-download) also sets MSM_ALLOW_DOWNLOAD=1 so that subprocesses agree.
    Returns the variables this call set.
    """
    environ = os.environ if environ is None else environ
    if allow_download:
        environ[ALLOW_DOWNLOAD_VARIABLE] = "1"
    if downloads_allowed(environ):
        return {}
    applied = {name: "1" for name in OFFLINE_VARIABLES if name not in environ}
    environ.update(applied)
    return applied
