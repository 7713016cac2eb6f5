"""The catalogue of the paper's released artifacts msmkit knows by name (released.yaml, with its sources)."""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from msmkit.config import validate_config


class KnownArtifact(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    repo_id: str
    kind: Literal["model", "dataset"]
    approx_bytes: int | None = Field(None, gt=0)
    rows: int | None = Field(None, gt=0)
    base_model: str | None = None  # for adapters: the model they sit on
    gated: bool = False
    revision: str | None = None  # the commit a public replication pinned
    notes: str | None = None

    def reference(self) -> str:
        """The `hf:` reference, pinned when a revision is known."""
        return f"hf:{self.repo_id}" + (f"@{self.revision}" if self.revision else "")


class ReleasedCatalogue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    artifacts: list[KnownArtifact]


@lru_cache(maxsize=1)
def catalogue() -> dict[str, KnownArtifact]:
    text = files("msmkit.paper").joinpath("released.yaml").read_text(encoding="utf-8")
    parsed = validate_config(yaml.safe_load(text), ReleasedCatalogue, "msmkit/paper/released.yaml")
    return {artifact.repo_id: artifact for artifact in parsed.artifacts}


def known_artifact(repo_id: str) -> KnownArtifact | None:
    return catalogue().get(repo_id)
