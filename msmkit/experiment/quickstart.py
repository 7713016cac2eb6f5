"""`msm quickstart`: the packaged tiny cheese experiment on the embedded default."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

QUICKSTART_NOTE = ("the cheese design at tiny scale on Gemma 3 270M base, on this CPU. At 270M parameters the MSM "
                   "effect is not expected to be visible (replications saw it from 4B parameters up): this run shows "
                   "the pipeline end to end and what its outputs look like. For the real thing, run "
                   "`msm run examples/experiments/cheese_llama8b.yaml` on a GPU node (README: 'Reproducing the "
                   "paper'; `--preview` prints its cost first).")


def quickstart_config() -> Path:
    return Path(str(files("msmkit.examples").joinpath("quickstart.yaml")))
