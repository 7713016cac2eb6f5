"""The corpus generator end to end against the test server (real SDK, real HTTP), with scripted answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from msmkit.generate.corpus import CorpusConfig, generate_corpus
from msmkit.io import read_jsonl
from msmkit.testing import FakeLLMServer
from tests.corpus_script import CorpusScript, config_dict
from tests.spec_checks import CHEESE_AMERICA, cheese_text


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-corpus")


@pytest.fixture()
def cheese() -> Path:
    return CHEESE_AMERICA


def build(script: CorpusScript, tmp_path: Path, spec: Path, out: str = "run", **overrides):  # noqa: ANN201
    with FakeLLMServer(script) as server:
        data = config_dict(server.openai_base_url, str(tmp_path / "cache.sqlite"), **overrides)
        config = CorpusConfig.model_validate(data)
        result = generate_corpus(spec, config, tmp_path / out)
        return result, server.stats


def test_every_stage_runs_and_the_corpus_has_the_planned_size(tmp_path, cheese) -> None:
    script = CorpusScript()
    result, stats = build(script, tmp_path, cheese)
    out = result.out_dir
    rows = list(read_jsonl(out / "corpus.jsonl"))
    # 2 domains x 2 subdomains x 2 types x 2 ideas
    assert len(rows) == 16 and result.stats["documents"] == {"target": 16, "kept": 16, "shortfall": 0, "dropped": 0}
    assert script.calls == {"domains": 1, "subdomains": 2, "assertions": 4, "doc_types": 4, "ideas": 8,
                            "documents": 16}
    row = rows[0]
    for column in ("text", "domain", "subdomain", "assertion_ids", "doc_type", "idea", "generator_model",
                   "token_count"):
        assert row[column], column
    assert "<scratchpad>" not in row["text"] and "Plan:" not in row["text"]
    assert row["text"].startswith("Idea ") and "Llama" in row["text"]
    tree = json.loads((out / "tree.json").read_text())
    subdomain = tree[0]["subdomains"][0]
    assert subdomain["excerpt_verified"] and subdomain["spec_excerpt"] in cheese_text(cheese)
    assert len(subdomain["assertions"]) == 3 and subdomain["assertions"][0]["explanation"]
    subdomains = {sub["id"]: sub for domain in tree for sub in domain["subdomains"]}
    for each in rows:
        known = {a["id"] for a in subdomains[each["subdomain_id"]]["assertions"]}
        assert each["assertion_ids"] and set(each["assertion_ids"]) <= known
    from datasets import load_from_disk
    dataset = load_from_disk(str(out / "dataset"))
    assert dataset.num_rows == 16 and set(dataset.column_names) >= {"text", "domain", "doc_type", "token_count"}
    assert (out / "corpus_stats.png").stat().st_size > 10_000
    for name in ("config.yaml", "prompts.json", "usage.json", "versions.json", "stats.json", "drops.jsonl"):
        assert (out / name).exists(), name
    assert json.loads((out / "prompts.json").read_text())["corpus/document"]
    usage = json.loads((out / "usage.json").read_text())
    assert usage["by_stage"]["corpus/documents"]["scripted"]["calls"] == 16
    assert stats.completions == 35
