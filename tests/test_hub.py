"""`hf:` references: the grammar, offline resolution from a hub cache built by hand, download hints, the plan."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from msmkit.errors import ConfigError, DataError
from msmkit.hub import (
    ArtifactNotCachedError,
    HubRef,
    describe_plan,
    format_plan,
    hub_cache_dir,
    load_dataset_rows,
    parse_ref,
    resolve,
)
from msmkit.testing.hub_cache import write_dataset_snapshot, write_snapshot

COMMIT = "42a80a90954a12e5f6dfab2f45e2e85ffb3744c1"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(folder))
    return folder


def test_tests_run_offline() -> None:
    assert os.environ["HF_HUB_OFFLINE"] == "1"


@pytest.mark.parametrize("text, kind, expected", [
    ("hf:chloeli/llama-3.1-8b-baseline", "model", HubRef("chloeli/llama-3.1-8b-baseline")),
    (f"hf:chloeli/llama-3.1-8b-baseline@{COMMIT}", "model", HubRef("chloeli/llama-3.1-8b-baseline", COMMIT)),
    ("hf:chloeli/sft-it-mix@v1.0:no_robots", "dataset",
     HubRef("chloeli/sft-it-mix", "v1.0", None, "no_robots", "dataset")),
    ("hf:owner/set.name:subset/validation", "dataset",
     HubRef("owner/set.name", None, "subset", "validation", "dataset")),
])
def test_grammar_round_trips(text: str, kind: str, expected: HubRef) -> None:
    ref = parse_ref(text, kind)  # type: ignore[arg-type]
    assert ref == expected
    assert parse_ref(ref.text(), kind) == ref  # type: ignore[arg-type]
    assert ref.pinned == (ref.revision == COMMIT)


@pytest.mark.parametrize("text, message", [
    ("chloeli/llama-3.1-8b-baseline", "not a Hugging Face reference"),
    ("hf:just-a-name", "OWNER/NAME"),
    ("hf:chloeli/x@", "OWNER/NAME"),
    ("hf:chloeli/x@rev:train", "picks a dataset split, but a model is expected"),
])
def test_bad_references_say_the_grammar(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_ref(text)


def test_cache_folder_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert hub_cache_dir() == tmp_path / "home" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "elsewhere"))
    assert hub_cache_dir() == tmp_path / "elsewhere"


def test_models_resolve_by_commit_and_branch_without_the_network(cache: Path) -> None:
    files = {"adapter_config.json": json.dumps({"base_model_name_or_path": "meta-llama/Llama-3.1-8B"}),
             "chat_template.jinja": "{{ messages }}"}
    snapshot = write_snapshot(cache, "chloeli/llama-3.1-8b-baseline", files, commit=COMMIT)
    pinned = resolve(f"hf:chloeli/llama-3.1-8b-baseline@{COMMIT}")
    assert pinned.path == snapshot and pinned.commit == COMMIT and not pinned.downloaded
    assert (pinned.path / "chat_template.jinja").read_text() == "{{ messages }}"
    branch = resolve("hf:chloeli/llama-3.1-8b-baseline")  # refs/main -> the same commit
    assert branch.commit == COMMIT and branch.record()["pinned"] is False


def test_missing_artifacts_raise_with_the_command_and_size(cache: Path) -> None:
    with pytest.raises(ArtifactNotCachedError) as caught:
        resolve(f"hf:chloeli/llama-3.1-8b-cheese-aft@{COMMIT}")
    message = str(caught.value)
    assert f"`hf download chloeli/llama-3.1-8b-cheese-aft --revision {COMMIT}`" in message
    assert "about 671.1 MB" in message and "--allow-download" in message and str(cache) in message
    with pytest.raises(ArtifactNotCachedError, match=r"--repo-type dataset.*Pin a revision"):
        resolve("hf:chloeli/pro-america-political-opinions", "dataset")
    # Allowing a download while the hub is offline fails with a message, and reaches no network.
    with pytest.raises(ArtifactNotCachedError, match="download failed"):
        resolve("hf:chloeli/pro-america-political-opinions", "dataset", allow_download=True)


def test_a_partial_model_snapshot_is_not_taken_for_a_model(cache: Path) -> None:
    write_snapshot(cache, "owner/half", {"README.md": "weights still downloading"}, commit=COMMIT)
    with pytest.raises(ArtifactNotCachedError, match="neither adapter_config.json nor config.json"):
        resolve(f"hf:owner/half@{COMMIT}")


def test_dataset_splits_are_read_as_rows(cache: Path) -> None:
    rows = {"train": [{"question": f"q{i}", "answer": "A"} for i in range(3)],
            "no_robots": [{"question": "only", "answer": "B"}]}
    snapshot = write_dataset_snapshot(cache, "chloeli/sft-it-mix", rows)
    train = load_dataset_rows("hf:chloeli/sft-it-mix")
    assert train.split == "train" and train.rows == rows["train"] and train.columns == ["question", "answer"]
    chosen = load_dataset_rows(f"hf:chloeli/sft-it-mix@{snapshot.name}:no_robots")
    assert chosen.rows == rows["no_robots"] and chosen.record()["commit"] == snapshot.name
    assert load_dataset_rows("hf:chloeli/sft-it-mix", split="no_robots").rows == rows["no_robots"]
    with pytest.raises(DataError, match=r"no split 'nope'; it has .*no_robots.*:SPLIT"):
        load_dataset_rows("hf:chloeli/sft-it-mix:nope")
    jsonl = write_dataset_snapshot(cache, "owner/jsonl-set", {"train": rows["train"]}, file_format="jsonl")
    assert load_dataset_rows(f"hf:owner/jsonl-set@{jsonl.name}").rows == rows["train"]


def test_plan_lists_cached_and_missing_inputs_with_base_models(cache: Path, tmp_path: Path) -> None:
    base = tmp_path / "tiny-base"
    base.mkdir()
    write_snapshot(cache, "chloeli/llama-3.1-8b-cheese-aft",
                   {"adapter_config.json": json.dumps({"base_model_name_or_path": str(base)})}, commit=COMMIT)
    write_dataset_snapshot(cache, "chloeli/pro-america-political-opinions", {"train": [{"question": "q"}]})
    plan = describe_plan([f"hf:chloeli/llama-3.1-8b-cheese-aft@{COMMIT}", "hf:chloeli/llama-3.1-8b-baseline",
                          ("hf:chloeli/pro-america-political-opinions", "dataset")])
    by_ref = {entry.name: entry for entry in plan}
    cached = by_ref[f"hf:chloeli/llama-3.1-8b-cheese-aft@{COMMIT}"]
    assert cached.cached and cached.commit == COMMIT and not cached.notes
    assert by_ref[str(base)].cached and by_ref[str(base)].needed_by == cached.ref.text()
    missing = by_ref["hf:chloeli/llama-3.1-8b-baseline"]
    assert not missing.cached and missing.approx_bytes == 671_088_640 and missing.size_source == "catalogue estimate"
    assert any("not pinned" in note for note in missing.notes)
    gated = by_ref["meta-llama/Llama-3.1-8B"]  # the missing adapter's base, from the catalogue
    assert not gated.cached and gated.needed_by == missing.ref.text() and any("gated" in n for n in gated.notes)
    assert by_ref["hf:chloeli/pro-america-political-opinions"].cached
    text = format_plan(plan)
    assert "3 cached, 2 to download" in text
    assert ("download: hf download chloeli/llama-3.1-8b-baseline" in text
            and "hf download meta-llama/Llama-3.1-8B" in text)
    assert plan[0].to_dict()["download_command"] is None and missing.to_dict()["download_command"]
