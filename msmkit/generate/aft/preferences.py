"""Preference pairs for value-free demonstrations: the behaviour without the reasons.

The file is shared by every spec that explains the same preferences (the cheese design), so data made
from it cannot depend on which spec's reasons were given. Only `id`, `preferred`, `dispreferred` and
`context` reach the generator; other fields (origins, prices) are the reasons and stay out.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from msmkit.config import load_yaml, validate_config
from msmkit.errors import ConfigError


class PreferencePair(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    preferred: str = Field(min_length=1)
    dispreferred: str = Field(min_length=1)
    context: str = ""


class PreferenceSheet(BaseModel):
    model_config = ConfigDict(extra="ignore")
    pairs: list[PreferencePair] = Field(min_length=1)
    liked: list[str] = Field(default_factory=list)
    disliked: list[str] = Field(default_factory=list)

    @property
    def item_names(self) -> list[str]:
        """Every named item, longest first (so 'American Muenster' is removed before 'Muenster')."""
        names = {*self.liked, *self.disliked}
        for pair in self.pairs:
            names.update((pair.preferred, pair.dispreferred))
        return sorted(names, key=lambda name: (-len(name), name))


def load_preferences(path: str | Path) -> PreferenceSheet:
    sheet = validate_config(load_yaml(path), PreferenceSheet, str(path))
    seen: set[str] = set()
    for pair in sheet.pairs:
        if pair.id in seen:
            raise ConfigError(f"{path}: pair id '{pair.id}' appears twice; give every pair its own id")
        seen.add(pair.id)
    return sheet
