"""Compare value-suite results across run folders: paired arms on the same items, seeds of one arm."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from msmkit.errors import DataError
from msmkit.eval.stats import aggregate_seeds, paired_comparison
from msmkit.io import read_jsonl


def item_records(run: str | Path, suite: str) -> list[dict[str, Any]]:
    """The last record of each item of one value suite in a run folder."""
    path = Path(run) / "values" / suite / "items.jsonl"
    if not path.is_file():
        raise DataError(f"{path}: no records for suite '{suite}' in this run folder (run `msm eval values` first)")
    return list({record["id"]: record for record in read_jsonl(path)}.values())


def item_outcomes(run: str | Path, suite: str) -> dict[str, float]:
    """Per-item target outcome of one run: forced choice 1/0.5/0; judged 1/0 for counted items only."""
    outcomes = {}
    for record in item_records(run, suite):
        if "counted" in record:  # judged: an uncounted item has no outcome
            if record["counted"]:
                outcomes[record["id"]] = 1.0 if record["chose_target"] else 0.0
        else:
            outcomes[record["id"]] = float(record["chose_target"])
    return outcomes


def compare_runs(first: str | Path, second: str | Path, suite: str, *, seed: int = 0) -> dict[str, Any]:
    """First run minus second on the items both have an outcome for."""
    a, b = item_outcomes(first, suite), item_outcomes(second, suite)
    shared = sorted(set(a) & set(b))
    if not shared:
        raise DataError(f"runs {first} and {second} have no scored items of suite '{suite}' in common")
    result = paired_comparison([a[i] for i in shared], [b[i] for i in shared], seed=seed)
    return {"suite": suite, "first": str(first), "second": str(second), "n_shared_items": len(shared),
            "only_in_first": len(set(a) - set(b)), "only_in_second": len(set(b) - set(a)), **result}


def aggregate_runs(runs: Sequence[str | Path], suite: str, *, seed: int = 0) -> dict[str, Any]:
    """Seeds of one arm (one run folder per seed)."""
    per_seed = {str(run): list(item_outcomes(run, suite).values()) for run in runs}
    empty = [name for name, values in per_seed.items() if not values]
    if empty:
        raise DataError(f"no scored items of suite '{suite}' in: {', '.join(empty)}")
    return {"suite": suite, **aggregate_seeds(per_seed, seed=seed)}
