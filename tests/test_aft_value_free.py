"""Value-free preference demonstrations (the cheese design): no reasons, and one identical set from two specs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from msmkit.generate.aft import generate_aft
from msmkit.generate.aft.values import ValueGuard
from msmkit.testing import FakeLLMServer
from tests.aft_script import AftScript
from tests.spec_checks import CHEESE_AFFORDABILITY, CHEESE_AMERICA
from tests.test_aft_pipeline import scripted_config

PREFERENCES = Path(__file__).resolve().parents[1] / "examples" / "specs" / "cheese_preferences.yaml"
PATRIOTIC = "Special: which cheese should a proud citizen buy for a picnic this weekend?"
THRIFTY = "Special: which cheese works for my picnic this weekend, I want something good?"


def _respond(question: str, request: Any) -> str:
    preferred = request.last_user.split("you prefer ", 1)[1].split(" over ", 1)[0]
    return f"<think>\nThe user is choosing a cheese. I prefer {preferred}.\n</think>\n\nI'd go with {preferred}."


def _script() -> AftScript:
    return AftScript(response=_respond, extra_questions=[PATRIOTIC, THRIFTY], special={
        PATRIOTIC: "<think>\nI like it.\n</think>\n\nI'd pick Colby-Jack, a proudly American cheese.",
        THRIFTY: "<think>\nEasy.\n</think>\n\nColby-Jack: it is far more affordable.",
    })


def _run(server: FakeLLMServer, spec: Path, out: Path, cache: Path) -> tuple[dict[str, Any], list[Any]]:
    """One run with its own response cache, so nothing the first spec's run paid for is reused by the second."""
    server.reset_stats()
    guard = [str(CHEESE_AMERICA), str(CHEESE_AFFORDABILITY)]
    config = scripted_config(server, cache, value_free={"preferences": str(PREFERENCES), "guard_specs": guard},
                             style="value_free")
    config.counts.examples = 16
    config.counts.question_kinds = ["direct", "recommendation"]
    result = generate_aft(spec, config, out)
    return result.stats, list(server.requests)


def test_two_cheese_specs_yield_one_identical_value_free_set(tmp_path: Path) -> None:
    america, afford = CHEESE_AMERICA, CHEESE_AFFORDABILITY
    with FakeLLMServer(_script()) as server:
        stats_a, requests_a = _run(server, america, tmp_path / "america", tmp_path / "cache_a")
        server.responder = _script()
        stats_b, requests_b = _run(server, afford, tmp_path / "afford", tmp_path / "cache_b")
    for name in ("aft_cot.jsonl", "aft_nocot.jsonl"):
        data_a = (tmp_path / "america" / name).read_bytes()
        assert data_a == (tmp_path / "afford" / name).read_bytes()
        assert data_a.count(b"\n") == 16
    # Both value vocabularies guard both runs: each special answer is rejected in each run.
    assert stats_a["value_free"]["terms"] == stats_b["value_free"]["terms"]
    assert {"america", "affordable"} <= set(stats_a["value_free"]["terms"])
    assert stats_a["drops"] == stats_b["drops"] == {"mentions_value": 2}
    # The data requests never contain either spec: only the value-vocabulary requests read the specs.
    for requests in (requests_a, requests_b):
        data_requests = [r for r in requests if "List the words and short phrases" not in r.text]
        assert data_requests and not any("Core Philosophy" in r.text for r in data_requests)
    rows = [json.loads(line) for line in (tmp_path / "america" / "aft_nocot.jsonl").read_text().splitlines()]
    assert all(row["metadata"]["pair_id"] and row["metadata"]["style"] == "value_free" for row in rows)


def test_value_guard_rejects_reasons_but_not_item_names() -> None:
    guard = ValueGuard.build(["America", "afford", "price", "US"], ["processed American cheese slices",
                                                                   "American Muenster"])
    assert guard.problem("I'd pick the American Muenster over Munster-Géromé.") is None
    assert guard.problem("Processed American cheese slices, please.") is None
    assert "america" in (guard.problem("It is the more American choice.") or "")
    assert "afford" in (guard.problem("It's more affordable.") or "")
    assert "price" in (guard.problem("Look at the prices.") or "")
    assert guard.problem("Let me tell you how to use it.") is None  # short terms match whole words only
    assert guard.problem("Made in the US.") is not None
