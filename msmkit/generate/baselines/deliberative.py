"""Deliberative-alignment baseline (Guan et al. 2025): the generator sees the spec and reasons by quoting
it, then answers; the training rows keep that reasoning but never the spec (prompts are the user turn only).

It is the AFT pipeline with style `deliberative`: every quoted passage of the reasoning is checked
against the spec with `msmkit.spec.find_excerpt`, and an example whose quotes are not in the spec (or
that quotes nothing) is dropped with reason `unverified_quotes`.
"""

from __future__ import annotations

from pathlib import Path

from msmkit.generate.aft.config import AftDataConfig
from msmkit.generate.aft.pipeline import AftResult, Report, generate_aft


def deliberative_config(config: AftDataConfig) -> AftDataConfig:
    return config.model_copy(update={"style": "deliberative"})


def generate_deliberative(spec_path: str | Path, config: AftDataConfig, out_dir: str | Path, *,
                          report: Report | None = None) -> AftResult:
    return generate_aft(spec_path, deliberative_config(config), out_dir, report=report,
                        extra_stats={"baseline": "deliberative_alignment"})
