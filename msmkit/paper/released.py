"""The catalogue of the paper's released artifacts msmkit knows by name (released.yaml, with its sources)."""

from __future__ import annotations

from collections.abc import Sequence
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


# The released item sets behind the paper's value evals (figures.yaml `eval` names).
RELEASED_EVAL_SETS = {"pro_america": "chloeli/pro-america-political-opinions",
                      "pro_affordability": "chloeli/pro-affordability-item-comparisons"}


def released_inputs(figure_ids: Sequence[str]) -> list[tuple[str, Literal["model", "dataset"]]]:
    """(hf: reference, kind) of every released adapter and eval set the figures' cells need, pinned where the
    catalogue knows a commit: what `msmkit.hub.describe_plan` takes for a gate's --preview."""
    from msmkit.paper.figures import packaged_figures

    figures = packaged_figures()
    wanted: dict[str, Literal["model", "dataset"]] = {}
    for figure_id in figure_ids:
        figure = figures.figure(figure_id)
        arms = figures.arms(figure.model)
        for cell in figure.cells:
            for arm in filter(None, (cell.arm, cell.minus)):
                wanted.setdefault(arms[arm].adapter, "model")
            if cell.eval in RELEASED_EVAL_SETS:
                wanted.setdefault(RELEASED_EVAL_SETS[cell.eval], "dataset")
    return [(_reference(repo_id), kind) for repo_id, kind in wanted.items()]


def _reference(repo_id: str) -> str:
    known = known_artifact(repo_id)
    return known.reference() if known else f"hf:{repo_id}"
