"""Counts the user planned are what they get; every drop reason is detected, recorded and replaced."""

from __future__ import annotations

import json
import re
from collections import Counter
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


def run(script: CorpusScript, tmp_path: Path, spec: Path, out: str = "run", judge: bool = False, **overrides):  # noqa: ANN201
    with FakeLLMServer(script) as server:
        data = config_dict(server.openai_base_url, str(tmp_path / "cache.sqlite"), **overrides)
        if judge:
            data["judge"] = dict(data["generator"])
        result = generate_corpus(spec, CorpusConfig.model_validate(data), tmp_path / out)
        return result, server


def test_short_answers_are_topped_up_and_long_ones_trimmed(tmp_path, cheese) -> None:
    script = CorpusScript(fewer={"domains": 1, "assertions": 2, "ideas": 1}, more={"subdomains": 2, "doc_types": 3})
    result, _ = run(script, tmp_path, cheese)
    stages = result.stats["steps"]
    tree = json.loads((result.out_dir / "tree.json").read_text())
    assert len(tree) == 2 and all(len(domain["subdomains"]) == 2 for domain in tree)
    for domain in tree:
        for sub in domain["subdomains"]:
            assert len(sub["assertions"]) == 3 and len(sub["doc_types"]) == 2
            assert all(len(doc_type["ideas"]) == 2 for doc_type in sub["doc_types"])
    assert stages["domains"]["topup_requests"] == 1 and stages["assertions"]["topup_requests"] == 4
    assert stages["ideas"]["topup_requests"] == 8
    assert stages["subdomains"]["items_trimmed"] == 4 and stages["doc_types"]["items_trimmed"] == 12
    assert result.stats["documents"]["kept"] == 16


def test_a_document_total_is_spread_over_cells_and_met_exactly(tmp_path, cheese) -> None:
    script = CorpusScript()
    result, _ = run(script, tmp_path, cheese, counts={"documents": 11})
    rows = list(read_jsonl(result.out_dir / "corpus.jsonl"))
    assert len(rows) == 11
    per_cell = Counter(row["doc_type_id"] for row in rows)
    assert sorted(per_cell.values()) == [1, 1, 1, 1, 1, 2, 2, 2]
    assert script.calls["ideas"] == 8 and script.calls["documents"] == 11


def test_each_drop_reason_is_recorded_and_the_drops_are_replaced(tmp_path, cheese) -> None:
    markers = ["[refuse] a", "[truncate] b", "[truncate-once] c", "[notags] d", "[short] e", "[long] f",
               "[dup] g", "[dup] h", "[qwen] i", "[reject] j"]
    script = CorpusScript(idea_titles=markers)
    result, server = run(script, tmp_path, cheese, judge=True)
    drops = list(read_jsonl(result.out_dir / "drops.jsonl"))
    reasons = Counter(drop["reason"] for drop in drops)
    assert reasons == {"refusal": 1, "truncated": 1, "missing_document_tags": 1, "too_short": 1, "too_long": 1,
                       "near_duplicate": 1, "identity": 1, "judge_rejected": 1}
    assert all(drop["idea_id"] and drop["detail"] for drop in drops)
    identity = next(drop for drop in drops if drop["reason"] == "identity")
    assert "Qwen" in identity["detail"]
    rows = list(read_jsonl(result.out_dir / "corpus.jsonl"))
    assert len(rows) == 16 and result.stats["documents"]["shortfall"] == 0  # 8 drops replaced by a top-up round
    assert any(row["idea"] == "[truncate-once] c" for row in rows)  # its larger retry was complete
    assert sum(1 for row in rows if row["round"] == 1) == 8
    # The truncated ones were retried once, as a new request with twice the budget.
    budgets = [r.max_tokens for r in server.requests
               if "[truncate" in r.last_user and "<document></document> tags" in r.last_user]
    assert sorted(budgets) == [2048, 2048, 4096, 4096]
    assert not any("[dup]" in row["idea"] and "h" in row["idea"] for row in rows)


def test_model_written_names_never_become_paths(tmp_path, cheese) -> None:
    script = CorpusScript(idea_titles=["../../etc/x", "Same name", "Same name"])
    result, _ = run(script, tmp_path, cheese)
    rows = list(read_jsonl(result.out_dir / "corpus.jsonl"))
    titled = [row for row in rows if row["idea"] in ("../../etc/x", "Same name")]
    assert len(titled) == 3 and len({row["id"] for row in titled}) == 3
    assert all(re.fullmatch(r"[0-9a-f]{16}", row["id"]) for row in titled)
    everything = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert all(p.resolve().is_relative_to(tmp_path.resolve()) for p in everything)
    assert not any(p.name == "x" or "Same" in p.name for p in everything)
    assert not (tmp_path.parent / "etc").exists()
    # Every idea is logged under its own id, so neither same-named idea overwrote the other.
    logged = {record["task"] for record in read_jsonl(result.out_dir / "steps" / "documents.jsonl")}
    assert {row["id"] for row in titled} <= logged


def test_a_spec_quote_that_is_not_in_the_spec_is_flagged_and_replaced(tmp_path, cheese) -> None:
    script = CorpusScript(bad_excerpts=1)
    result, _ = run(script, tmp_path, cheese)
    flags = list(read_jsonl(result.out_dir / "flags.jsonl"))
    assert len(flags) == 1 and flags[0]["kind"] == "unverified_excerpt" and flags[0]["similarity"] < 0.9
    assert "typewriters" in flags[0]["quoted"]
    tree = json.loads((result.out_dir / "tree.json").read_text())
    spec_text = cheese_text(cheese)
    subs = [sub for domain in tree for sub in domain["subdomains"]]
    assert len(subs) == 4 and all(sub["excerpt_verified"] and sub["spec_excerpt"] in spec_text for sub in subs)
    assert result.stats["steps"]["subdomains"]["items_rejected"] == 1


def test_a_failing_call_never_fails_its_stage_and_the_next_run_asks_again(tmp_path, cheese) -> None:
    from msmkit.testing import Fault

    script = CorpusScript(idea_titles=["Doomed idea"])
    with FakeLLMServer(script) as server:
        server.inject(Fault.SERVER_ERROR, times=3, match="Idea: Doomed idea")  # 1 try + 2 retries
        data = config_dict(server.openai_base_url, str(tmp_path / "cache.sqlite"), counts={"max_topup_rounds": 0})
        config = CorpusConfig.model_validate(data)
        first = generate_corpus(cheese, config, tmp_path / "run")
        assert first.stats["steps"]["documents"]["failed"] == 1
        assert first.stats["drops"] == {"call_failed": 1} and first.stats["documents"]["kept"] == 15
        second = generate_corpus(cheese, config, tmp_path / "run")
    assert second.stats["documents"]["kept"] == 16 and second.stats["drops"] == {}
    assert second.stats["steps"]["documents"]["requests"] == 1  # only the failed one was asked again


def test_a_torn_last_line_is_skipped_and_cut_before_appending(tmp_path) -> None:
    from msmkit.generate.step_log import StepLog

    path = tmp_path / "stage.jsonl"
    path.write_text('{"task": "a", "answered": true}\n{"task": "b", "answ')
    log = StepLog(path)
    assert list(log.records) == ["a"]
    log.append({"task": "c", "answered": True})
    log.close()
    assert [record["task"] for record in read_jsonl(path)] == ["a", "c"]


def test_embedding_dedup_drops_the_copy(tmp_path, cheese) -> None:
    # 80-word documents: the copy scores ~0.996 and chance pairs of the script's random documents stay below
    # ~0.96 (at 220 words chance pairs reach ~0.98, the threshold, so the outcome would depend on the spec).
    script = CorpusScript(doc_words=80, idea_titles=["[dup] one", "[dup] two"])
    result, _ = run(script, tmp_path, cheese, dedup={"method": "embedding", "embedding_threshold": 0.98},
                    counts={"max_topup_rounds": 0})
    drops = list(read_jsonl(result.out_dir / "drops.jsonl"))
    assert [drop["reason"] for drop in drops] == ["near_duplicate"] and "embedding" in drops[0]["detail"]
    assert result.stats["documents"]["kept"] == 15
