"""Named, recorded instruction-mix recipes built from the released `sft-it-mix` splits.

The paper mixed general instruction data into AFT but never stated the exact split and ratio; each preset
here is a named choice (what replications used), recorded in full with the run:

    cheese-paper   no_robots 9,500 + mmlu_binary 2,000 + mmlu_explain 2,000 = 13,500 rows (cheese study)
    cheese-7k      no_robots 7,000 + mmlu_binary 2,000 + mmlu_explain 2,000 = 11,000 rows
    qwen-paper     10,000 rows subsampled from train_clean (the Qwen studies)

`build_instruction_mix` samples each part with the preset's seed, tags every row with where it came from
(`metadata.source`: the released `source` column, or "aft"; `metadata.split`; `metadata.id`), shuffles the
rows with the AFT rows when given (through `msmkit.data.mix.mix_datasets`), and checks the result:
the row counts per split are exactly the recipe's, and each part's share of the assistant tokens matches
what the recipe implies (its row count times the mean assistant tokens per row of its released split,
against the AFT rows' own tokens) within a stated tolerance. Both go into the returned record.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from msmkit.data.chat import TokenCounter, assistant_tokens, validate_messages, write_jsonl_and_dataset
from msmkit.data.mix import mix_datasets
from msmkit.errors import ConfigError, DataError
from msmkit.hub import HubRef, as_ref, read_split, resolve

SFT_IT_MIX = "hf:chloeli/sft-it-mix"
AFT_SOURCE = "aft"
DEFAULT_SHARE_TOLERANCE = 0.02  # absolute difference in share of assistant tokens, per part
NEVER_STATED = ("The paper's authors never stated the exact split or ratio of the instruction mix; this preset is a "
                "named choice (what replications used), not the paper's recipe.")


@dataclass(frozen=True)
class MixPart:
    split: str
    rows: int  # rows drawn (without replacement) from the split


@dataclass(frozen=True)
class MixPreset:
    name: str
    study: str
    parts: tuple[MixPart, ...]
    seed: int
    paper_says: str
    provenance: str
    paper_general_tokens: int | None = None  # the paper's approximate size of the general data, when stated
    dataset: str = SFT_IT_MIX
    caveat: str = NEVER_STATED

    @property
    def rows(self) -> int:
        return sum(part.rows for part in self.parts)

    def describe(self) -> dict[str, Any]:
        return {"preset": self.name, "study": self.study, "dataset": self.dataset, "seed": self.seed,
                "parts": [{"split": p.split, "rows": p.rows} for p in self.parts], "rows": self.rows,
                "paper_says": self.paper_says, "provenance": self.provenance,
                "paper_general_tokens": self.paper_general_tokens, "caveat": self.caveat}


_CHEESE_PAPER = ("No Robots + 4,000 formatted MMLU + 2,500 identity samples (the identity samples were never "
                 "released), about 2M tokens, shuffled with the 5,129 cheese AFT rows")
PRESETS: dict[str, MixPreset] = {
    preset.name: preset for preset in (
        MixPreset("cheese-paper", "cheese (Llama-3.1-8B, paper section 3)",
                  (MixPart("no_robots", 9_500), MixPart("mmlu_binary", 2_000), MixPart("mmlu_explain", 2_000)),
                  seed=0, paper_says=_CHEESE_PAPER, paper_general_tokens=2_000_000,
                  provenance="replications: all of no_robots, mmlu_binary and mmlu_explain (13,500 rows), "
                             "without the unreleased identity samples"),
        MixPreset("cheese-7k", "cheese (Llama-3.1-8B, paper section 3)",
                  (MixPart("no_robots", 7_000), MixPart("mmlu_binary", 2_000), MixPart("mmlu_explain", 2_000)),
                  seed=0, paper_says=_CHEESE_PAPER, paper_general_tokens=2_000_000,
                  provenance="a replication: 7,000 of no_robots + all of mmlu_binary and mmlu_explain (11,000 rows)"),
        MixPreset("qwen-paper", "Qwen studies (paper sections 4-5)", (MixPart("train_clean", 10_000),),
                  seed=0, paper_says="10,000 rows subsampled from train_clean",
                  provenance="the paper's own statement of the Qwen studies' mix; the sampling is msmkit's "
                             "(uniform without replacement, seeded)"),
    )
}


def get_preset(name: str) -> MixPreset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown instruction-mix preset {name!r}; presets: {', '.join(PRESETS)}") from None


@dataclass
class InstructionMix:
    rows: list[dict[str, Any]]  # {"messages": [...], "metadata": {"source", "split", "id"}}
    record: dict[str, Any] = field(default_factory=dict)  # for the run folder

    def write(self, jsonl_path: str | Path, dataset_dir: str | Path | None = None) -> None:
        write_jsonl_and_dataset(self.rows, jsonl_path, dataset_dir)


def load_preset_splits(preset: MixPreset, *, dataset: str | HubRef | None = None, allow_download: bool = False,
                       cache_dir: str | Path | None = None) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
    """(split -> rows, the dataset's resolution record) for the splits a preset draws from.

    `dataset` overrides the preset's (unpinned) `hf:chloeli/sft-it-mix` with a pinned reference or a copy.
    """
    ref = as_ref(dataset or preset.dataset, "dataset")
    artifact = resolve(ref, "dataset", allow_download=allow_download, cache_dir=cache_dir)
    splits = {part.split: read_split(artifact, part.split).rows for part in preset.parts}
    return splits, artifact.record()


def build_instruction_mix(preset: MixPreset, splits: Mapping[str, Sequence[Mapping[str, Any]]], *,
                          count: TokenCounter, count_method: str, aft_rows: Sequence[Mapping[str, Any]] | None = None,
                          tolerance: float = DEFAULT_SHARE_TOLERANCE, strict: bool = True,
                          dataset_record: Mapping[str, Any] | None = None) -> InstructionMix:
    """The preset's rows (shuffled with `aft_rows` when given) and a record of what was taken and checked.

    `count` counts tokens of one text (`msmkit.data.chat.make_token_counter`); `strict` makes a failed share
    check an error instead of a record entry.
    """
    general: list[dict[str, Any]] = []
    parts_record, expected_tokens = [], {}
    for part in preset.parts:
        if part.split not in splits:
            raise DataError(f"instruction mix {preset.name}: split {part.split!r} was not given "
                            f"(given: {', '.join(splits) or 'none'})")
        available = splits[part.split]
        if part.rows > len(available):
            raise DataError(f"instruction mix {preset.name}: needs {part.rows} rows of split {part.split!r}, which "
                            f"has {len(available)}; check the dataset revision, or pick another preset")
        checked = [_released_row(row, f"{preset.dataset}:{part.split} row {index}")
                   for index, row in enumerate(available)]
        mean = sum(assistant_tokens(row["messages"], count) for row in checked) / len(checked)
        expected_tokens[part.split] = part.rows * mean
        chosen = sorted(random.Random(f"{preset.seed}:{part.split}").sample(range(len(checked)), part.rows))
        general += [{"messages": checked[k]["messages"], "id": f"{part.split}:{k}", "_source": checked[k]["source"],
                     "_split": part.split} for k in chosen]
        parts_record.append({"split": part.split, "rows_requested": part.rows, "rows_available": len(available),
                             "mean_assistant_tokens_per_row": round(mean, 2)})
    rows = _mix_with_aft(preset, general, aft_rows, count)
    if aft_rows:
        expected_tokens[AFT_SOURCE] = float(sum(assistant_tokens(r["messages"], count) for r in rows
                                                if r["metadata"]["source"] == AFT_SOURCE))
    used = {part.split: sum(1 for r in rows if r["metadata"]["split"] == part.split) for part in preset.parts}
    for entry in parts_record:
        entry["rows_used"] = used[entry["split"]]
    rows_ok = all(used[part.split] == part.rows for part in preset.parts)
    shares = check_token_shares(rows, expected_tokens, count=count, tolerance=tolerance)
    general_tokens = sum(assistant_tokens(r["messages"], count) for r in rows if r["metadata"]["source"] != AFT_SOURCE)
    record = {**preset.describe(), "dataset_resolved": dict(dataset_record) if dataset_record else None,
              "parts": parts_record, "aft_rows": len(aft_rows or ()), "rows_total": len(rows),
              "rows_match_recipe": rows_ok, "token_counting": count_method, "token_shares": shares,
              "general_assistant_tokens": general_tokens,
              "assistant_tokens_by_released_source": _tokens_by(rows, "source", count)}
    if strict and not (rows_ok and shares["passed"]):
        raise DataError(f"instruction mix {preset.name}: the mixed set does not match its recipe "
                        f"(rows per split {used}, wanted {[(p.split, p.rows) for p in preset.parts]}; token shares "
                        f"{shares['measured']} vs expected {shares['expected']}, tolerance {tolerance})")
    return InstructionMix(rows, record)


def _released_row(row: Mapping[str, Any], where: str) -> dict[str, Any]:
    source = row.get("source")
    if not isinstance(source, str) or not source:
        raise DataError(f"{where}: field 'source': missing; sft-it-mix rows carry `messages` and `source`")
    return {"messages": validate_messages(row.get("messages"), where), "source": source}


def _mix_with_aft(preset: MixPreset, general: list[dict[str, Any]], aft_rows: Sequence[Mapping[str, Any]] | None,
                  count: TokenCounter) -> list[dict[str, Any]]:
    tags = {row["id"]: {"source": row["_source"], "split": row["_split"], "id": row["id"]} for row in general}
    if not aft_rows:
        shuffled = list(general)
        random.Random(preset.seed).shuffle(shuffled)
        return [{"messages": row["messages"], "metadata": tags[row["id"]]} for row in shuffled]
    aft = [{"messages": validate_messages(row.get("messages"), f"AFT row {index}"), "id": row.get("id")}
           for index, row in enumerate(aft_rows)]
    # mix_datasets adds general rows until their count reaches ratio x the AFT rows; half a row short of the
    # preset's total makes that exactly all of them, whatever the float rounding of the ratio.
    ratio = (len(general) - 0.5) / len(aft)
    mixed, stats = mix_datasets(aft, general, ratio=ratio, by="rows", count=count, seed=preset.seed)
    if stats["general_rows_used"] != len(general):
        raise AssertionError(f"mix_datasets took {stats['general_rows_used']} of {len(general)} general rows")
    out = []
    for row in mixed:
        meta = row["metadata"]
        tag = tags[meta["id"]] if meta["source"] == "general" else {"source": AFT_SOURCE, "split": None,
                                                                     "id": meta["id"]}
        out.append({"messages": row["messages"], "metadata": tag})
    return out


def check_token_shares(rows: Sequence[Mapping[str, Any]], expected_tokens: Mapping[str, float], *,
                       count: TokenCounter, tolerance: float = DEFAULT_SHARE_TOLERANCE) -> dict[str, Any]:
    """Each part's share of the assistant tokens, measured on `rows` (grouped by metadata.split, or "aft"),
    against `expected_tokens` (part -> tokens the recipe implies), within an absolute `tolerance`."""
    measured_tokens = {part: 0 for part in expected_tokens}
    for row in rows:
        meta = row["metadata"]
        part = AFT_SOURCE if meta["source"] == AFT_SOURCE else meta["split"]
        if part not in measured_tokens:
            raise DataError(f"row {meta.get('id')} comes from {part!r}, which is not part of the recipe "
                            f"({', '.join(expected_tokens)})")
        measured_tokens[part] += assistant_tokens(row["messages"], count)
    expected_total, measured_total = sum(expected_tokens.values()), sum(measured_tokens.values())
    if expected_total <= 0 or measured_total <= 0:
        raise DataError("the instruction mix has no assistant tokens; check the rows' messages")
    expected = {part: round(tokens / expected_total, 4) for part, tokens in expected_tokens.items()}
    measured = {part: round(tokens / measured_total, 4) for part, tokens in measured_tokens.items()}
    gaps = {part: round(abs(measured[part] - expected[part]), 4) for part in expected}
    return {"by": "assistant tokens", "tolerance": tolerance, "expected": expected, "measured": measured,
            "measured_tokens": measured_tokens, "largest_gap": max(gaps.values()),
            "passed": all(gap <= tolerance for gap in gaps.values())}


def _tokens_by(rows: Sequence[Mapping[str, Any]], key: str, count: TokenCounter) -> dict[str, int]:
    totals: dict[str, int] = {}
    for row in rows:
        name = str(row["metadata"][key])
        totals[name] = totals.get(name, 0) + assistant_tokens(row["messages"], count)
    return dict(sorted(totals.items()))
