"""The experiment folder's own run record: tokens, cost and prompt hashes summed over its stages."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from msmkit.io import atomic_write_json, read_json
from msmkit.runs import PROMPTS_FILE, USAGE_FILE


def merge_stage_records(out: Path, stage_dirs: list[Path]) -> None:
    """Write <out>/usage.json (the stages' own usage records, keyed "<stage folder>/<step>", with totals; the
    same layout as every run folder's) and <out>/prompts.json (every prompt hash used)."""
    by_stage: dict[str, Any] = {}
    total: dict[str, float] = defaultdict(float)
    prompts: dict[str, str] = {}
    for directory in stage_dirs:
        path = directory / USAGE_FILE
        if path.exists():
            record = read_json(path)
            for step, models in record.get("by_stage", {}).items():
                by_stage[f"{directory.name}/{step}"] = models
            for key, value in record.get("total", {}).items():
                total[key] += value
        if (directory / PROMPTS_FILE).exists():
            prompts.update(read_json(directory / PROMPTS_FILE))
    atomic_write_json(out / USAGE_FILE, {"by_stage": by_stage, "total": dict(total)})
    atomic_write_json(out / PROMPTS_FILE, dict(sorted(prompts.items())))
