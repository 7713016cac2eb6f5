"""Instruction-mix presets from a tiny fake `sft-it-mix` in the released schema (`messages`, `source`, several
splits): rows per split, source tags, shuffling with the AFT rows, the token-share check and its record."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from msmkit.data.chat import make_token_counter, read_chat_dataset
from msmkit.data.presets import (
    NEVER_STATED,
    PRESETS,
    MixPart,
    MixPreset,
    build_instruction_mix,
    check_token_shares,
    get_preset,
    load_preset_splits,
)
from msmkit.errors import ConfigError, DataError
from msmkit.testing.hub_cache import write_dataset_snapshot

COUNT, METHOD = make_token_counter(None)


def chat(source: str, k: int, words: int) -> dict:
    return {"messages": [{"role": "user", "content": f"{source} question {k}"},
                         {"role": "assistant", "content": " ".join(["word"] * words) + f" {k}"}], "source": source}


def fake_mix(scale: int = 1) -> dict[str, list[dict]]:
    """Split sizes of the release divided by `scale`; assistant lengths differ by source (and within one)."""
    sizes = {"no_robots": 9_500, "mmlu_binary": 2_000, "mmlu_explain": 2_000, "lima": 1_029}
    lengths = {"no_robots": 40, "mmlu_binary": 2, "mmlu_explain": 25, "lima": 80}
    splits = {name: [chat(name, k, lengths[name] + k % 7) for k in range(size // scale)]
              for name, size in sizes.items()}
    clean_sources = ["no_robots", "lima", "mmlu_binary"]
    splits["train_clean"] = [chat(clean_sources[k % 3], k, 10 + k % 31) for k in range(14_465 // scale)]
    return splits


AFT = [{"messages": [{"role": "user", "content": f"Brie or cream cheese {k}?"},
                     {"role": "assistant", "content": f"Cream cheese, every time {k}."}]} for k in range(60)]
SMALL = MixPreset("test-small", "tests", (MixPart("no_robots", 30), MixPart("mmlu_binary", 12)), seed=3,
                  paper_says="-", provenance="-")


def test_presets_record_their_recipe_and_the_caveat() -> None:
    cheese = get_preset("cheese-paper")
    assert [(p.split, p.rows) for p in cheese.parts] == [("no_robots", 9_500), ("mmlu_binary", 2_000),
                                                          ("mmlu_explain", 2_000)] and cheese.rows == 13_500
    assert get_preset("cheese-7k").rows == 11_000
    assert [(p.split, p.rows) for p in get_preset("qwen-paper").parts] == [("train_clean", 10_000)]
    for preset in PRESETS.values():
        described = preset.describe()
        assert described["caveat"] == NEVER_STATED and "never stated" in described["caveat"]
        assert described["seed"] == preset.seed and described["dataset"] == "hf:chloeli/sft-it-mix"
    with pytest.raises(ConfigError, match="presets: cheese-paper, cheese-7k, qwen-paper"):
        get_preset("cheese")


def test_cheese_paper_mix_from_the_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    released = fake_mix()
    snapshot = write_dataset_snapshot(cache, "chloeli/sft-it-mix", released)
    preset = get_preset("cheese-paper")
    splits, dataset_record = load_preset_splits(preset, dataset=f"hf:chloeli/sft-it-mix@{snapshot.name}")
    assert set(splits) == {"no_robots", "mmlu_binary", "mmlu_explain"}
    mix = build_instruction_mix(preset, splits, count=COUNT, count_method=METHOD, aft_rows=AFT,
                                dataset_record=dataset_record)
    assert len(mix.rows) == 13_500 + len(AFT)
    tags = [row["metadata"] for row in mix.rows]
    assert sum(t["source"] == "aft" for t in tags) == len(AFT)
    assert Counter(t["split"] for t in tags if t["split"]) == {"no_robots": 9_500, "mmlu_binary": 2_000,
                                                               "mmlu_explain": 2_000}
    assert all(t["source"] == t["split"] for t in tags if t["source"] != "aft")  # per-source splits
    first_aft = next(k for k, t in enumerate(tags) if t["source"] == "aft")
    assert 0 < first_aft < len(tags) - len(AFT)  # AFT rows are shuffled in, not appended
    record = mix.record
    assert record["rows_match_recipe"] and record["token_shares"]["passed"]
    assert record["dataset_resolved"]["commit"] == snapshot.name and record["caveat"] == NEVER_STATED
    assert record["token_counting"] == METHOD and record["paper_general_tokens"] == 2_000_000
    assert [p["rows_used"] for p in record["parts"]] == [9_500, 2_000, 2_000]
    shares = record["token_shares"]
    assert set(shares["expected"]) == {"no_robots", "mmlu_binary", "mmlu_explain", "aft"}
    assert abs(sum(shares["measured"].values()) - 1) < 1e-3
    # The rows are plain chat rows msmkit's readers take.
    mix.write(tmp_path / "mix.jsonl")
    assert len(read_chat_dataset(tmp_path / "mix.jsonl")) == len(mix.rows)


def test_qwen_mix_subsamples_train_clean_with_its_seed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    write_dataset_snapshot(cache, "chloeli/sft-it-mix", {"train_clean": fake_mix()["train_clean"]})
    preset = get_preset("qwen-paper")
    splits, _ = load_preset_splits(preset)
    first = build_instruction_mix(preset, splits, count=COUNT, count_method=METHOD)
    again = build_instruction_mix(preset, splits, count=COUNT, count_method=METHOD)
    assert len(first.rows) == 10_000 and first.rows == again.rows
    ids = [row["metadata"]["id"] for row in first.rows]
    assert len(set(ids)) == 10_000 and all(i.startswith("train_clean:") for i in ids)
    assert set(first.record["assistant_tokens_by_released_source"]) == {"lima", "mmlu_binary", "no_robots"}
    # A subsample's share is its expectation up to sampling noise: well within the tolerance here.
    assert first.record["token_shares"]["passed"] and first.record["aft_rows"] == 0
    other_seed = build_instruction_mix(MixPreset("s", "t", preset.parts, seed=1, paper_says="-", provenance="-"),
                                       splits, count=COUNT, count_method=METHOD)
    assert {r["metadata"]["id"] for r in other_seed.rows} != set(ids)


def test_share_check_catches_a_mix_that_lost_long_rows() -> None:
    splits = {"no_robots": fake_mix(100)["no_robots"], "mmlu_binary": fake_mix(100)["mmlu_binary"]}
    mix = build_instruction_mix(SMALL, splits, count=COUNT, count_method=METHOD, aft_rows=AFT)
    expected = {"no_robots": 0.0, "mmlu_binary": 0.0, "aft": 0.0}
    for row in mix.rows:  # what the recipe implies for these very rows
        part = "aft" if row["metadata"]["source"] == "aft" else row["metadata"]["split"]
        expected[part] += sum(COUNT(m["content"]) for m in row["messages"] if m["role"] == "assistant")
    assert check_token_shares(mix.rows, expected, count=COUNT)["largest_gap"] == 0
    # A filter that silently dropped the longest no_robots rows shifts the shares past the tolerance.
    lengths = sorted(sum(COUNT(m["content"]) for m in r["messages"] if m["role"] == "assistant")
                     for r in mix.rows if r["metadata"]["split"] == "no_robots")
    cut = lengths[len(lengths) // 2]
    kept = [r for r in mix.rows if r["metadata"]["split"] != "no_robots"
            or sum(COUNT(m["content"]) for m in r["messages"] if m["role"] == "assistant") <= cut]
    failed = check_token_shares(kept, expected, count=COUNT, tolerance=0.02)
    assert not failed["passed"] and failed["largest_gap"] > 0.02
    assert check_token_shares(kept, expected, count=COUNT, tolerance=1.0)["passed"]  # the tolerance is stated


def test_wrong_inputs_are_errors_that_name_the_split_and_row() -> None:
    splits = {"no_robots": fake_mix(100)["no_robots"], "mmlu_binary": fake_mix(100)["mmlu_binary"]}
    with pytest.raises(DataError, match=r"needs 30 rows of split 'no_robots', which has 10"):
        build_instruction_mix(SMALL, {**splits, "no_robots": splits["no_robots"][:10]}, count=COUNT,
                              count_method=METHOD)
    with pytest.raises(DataError, match=r"split 'mmlu_binary' was not given"):
        build_instruction_mix(SMALL, {"no_robots": splits["no_robots"]}, count=COUNT, count_method=METHOD)
    broken = [dict(row) for row in splits["mmlu_binary"]]
    del broken[4]["source"]
    with pytest.raises(DataError, match=r"sft-it-mix:mmlu_binary row 4: field 'source'"):
        build_instruction_mix(SMALL, {**splits, "mmlu_binary": broken}, count=COUNT, count_method=METHOD)
    broken = [json.loads(json.dumps(row)) for row in splits["mmlu_binary"]]
    broken[7]["messages"][1]["role"] = "user"
    with pytest.raises(DataError, match=r"mmlu_binary row 7: turns must alternate"):
        build_instruction_mix(SMALL, {**splits, "mmlu_binary": broken}, count=COUNT, count_method=METHOD)
