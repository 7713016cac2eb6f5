"""Judged generation against the test server: both orders asked and judged; an always-"A" model shows
position bias and no value; unparseable verdicts are parse failures, never choices; disagreeing orders
drop the item; the CLI writes a run folder with usage."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Callable

import pytest
from typer.testing import CliRunner

from msmkit.eval.items import ValueItem, load_value_items
from msmkit.eval.judged_choice import JudgedChoiceScorer
from msmkit.eval.summary import summarize_judged_choice
from msmkit.llm.client import LLMClient
from msmkit.llm.types import LLMConfig
from msmkit.testing import FakeLLMServer, Fault, Reply, ScriptedRequest

ITEMS = load_value_items("pro_affordability")[:12]
TARGET_TEXTS = {item.options[item.target_label] for item in ITEMS}
JUDGE_MARKER = "You are grading an answer"
OPTION_LINE = re.compile(r"^([AB])\. (.*)$", re.MULTILINE)
JUDGE_OPTION = re.compile(r"^Option ([AB]): (.*)$", re.MULTILINE)


def shown_options(text: str) -> dict[str, str]:
    return dict(OPTION_LINE.findall(text))


def honest_judge(request: ScriptedRequest) -> str:
    """Reads the answer: the letter it starts with, or the option text it contains."""
    text = request.last_user
    options = dict(JUDGE_OPTION.findall(text))
    answer = text.split("<<<ANSWER\n", 1)[1].split("\nANSWER>>>", 1)[0]
    for slot, option in options.items():
        if option in answer:
            return json.dumps({"choice": slot, "reason": "names the option"})
    if answer.strip()[:1] in ("A", "B"):
        return json.dumps({"choice": answer.strip()[0], "reason": "names the letter"})
    return json.dumps({"choice": "neither", "reason": "no choice"})


def server_for(model_answer: Callable[[dict[str, str], str], str],
               judge: Callable[[ScriptedRequest], str] = honest_judge) -> FakeLLMServer:
    def responder(request: ScriptedRequest) -> Reply | str:
        if JUDGE_MARKER in request.text:
            return judge(request)
        return model_answer(shown_options(request.last_user), request.last_user)
    return FakeLLMServer(responder, latency_s=0.0)


def scorer_on(server: FakeLLMServer) -> JudgedChoiceScorer:
    evaluated = LLMConfig(provider="openai_compatible", model="evaluated", base_url=server.openai_base_url,
                          max_retries=0)
    judge = LLMConfig(provider="openai_compatible", model="judge", base_url=server.openai_base_url, max_retries=0)
    return JudgedChoiceScorer(model=LLMClient(evaluated), judge=LLMClient(judge))


def run_scorer(server: FakeLLMServer, items: list[ValueItem] = ITEMS) -> list[dict]:
    scorer = scorer_on(server)

    async def go() -> list[dict]:
        try:
            return await scorer.score(items)
        finally:
            await scorer.model.aclose()
            await scorer.judge.aclose()
    return asyncio.run(go())


def prefers_target(options: dict[str, str], _: str) -> str:
    slot = next(slot for slot, text in options.items() if text in TARGET_TEXTS)
    return f"I would go with {options[slot]}, because it costs less."


def test_a_model_with_the_value_is_counted_in_both_orders() -> None:
    with server_for(prefers_target) as server:
        records = run_scorer(server)
        assert server.stats.requests >= 4 * len(ITEMS)  # 2 answers + 2 verdicts per item
    summary = summarize_judged_choice(records)
    assert summary["n_counted"] == len(ITEMS)
    assert summary["target_rate"]["mean"] == 1.0 and summary["target_rate"]["n"] == len(ITEMS)
    assert summary["parse_rate"]["mean"] == 1.0 and summary["parse_rate"]["n"] == 2 * len(ITEMS)
    assert summary["agreement_rate"]["mean"] == 1.0
    assert summary["position_bias_rate"]["mean"] == pytest.approx(0.5)
    for record in records:
        assert [o["order"] for o in record["orders"]] == ["original", "swapped"]
        assert record["chosen_value"] == "pro_affordability"


def test_an_always_a_model_shows_position_bias_and_no_value() -> None:
    with server_for(lambda options, _: "A") as server:
        records = run_scorer(server)
    summary = summarize_judged_choice(records)
    assert summary["position_bias_rate"]["mean"] == 1.0 and summary["position_bias_rate"]["n"] == 2 * len(ITEMS)
    assert summary["n_counted"] == 0 and summary["target_rate"]["mean"] is None
    assert summary["target_rate_all_items"]["mean"] == 0.0
    assert summary["dropped"]["orders_disagree"] == len(ITEMS)
    assert summary["agreement_rate"]["mean"] == 0.0
    assert any("position" in note for note in summary["notes"])


def test_unparseable_verdicts_are_parse_failures_not_choices() -> None:
    def moody_judge(request: ScriptedRequest) -> str:
        # Garbage for the first half of the items (by question, also when re-asked), valid JSON for the rest.
        if any(item.question in request.text for item in ITEMS[:6]):
            return "Hmm, hard to say. Both have merits!"
        return honest_judge(request)

    with server_for(prefers_target, moody_judge) as server:
        records = run_scorer(server)
    summary = summarize_judged_choice(records)
    assert summary["dropped"]["parse_failed"] == 6
    assert summary["n_counted"] == 6
    assert summary["parse_rate"]["mean"] == pytest.approx(0.5) and summary["parse_rate"]["n"] == 24
    failed = [o for r in records if r["drop_reason"] == "parse_failed" for o in r["orders"]]
    assert all(o["verdict"] is None and o["chosen_label"] is None and o["judge_error"] for o in failed)
    assert all(r["chose_target"] is None for r in records if r["drop_reason"] == "parse_failed")


def test_orders_that_disagree_drop_the_item() -> None:
    def fickle(options: dict[str, str], _: str) -> str:
        # Picks the target when it is shown first, the other option when the target is shown second.
        return f"My pick: {options['A']}."

    with server_for(fickle) as server:
        records = run_scorer(server)
    assert all(r["drop_reason"] == "orders_disagree" and not r["counted"] for r in records)
    assert all(o["verdict"] == "A" for r in records for o in r["orders"])


def test_neither_and_failed_answers_are_reported_separately() -> None:
    def undecided_on_first(options: dict[str, str], prompt: str) -> str:
        if ITEMS[0].question in prompt:
            return "I don't have a preference between these."
        return prefers_target(options, prompt)

    with server_for(undecided_on_first) as server:
        server.inject(Fault.SERVER_ERROR, times=1, match=re.escape(ITEMS[1].question))
        records = run_scorer(server, ITEMS[:4])
    reasons = {r["id"]: r["drop_reason"] for r in records}
    assert reasons == {ITEMS[0].id: "neither", ITEMS[1].id: "answer_failed", ITEMS[2].id: None, ITEMS[3].id: None}
    summary = summarize_judged_choice(records)
    assert summary["answer_failure_count"] == 1
    assert summary["parse_rate"]["n"] == 7  # the failed answer was never judged
    assert summary["n_counted"] == 2


def test_cli_judged_run_writes_records_summary_and_usage(tmp_path: Path) -> None:
    from msmkit.cli.app import app

    with server_for(prefers_target) as server:
        model_yaml = tmp_path / "model.yaml"
        model_yaml.write_text(f"model:\n  provider: openai_compatible\n  model: evaluated\n"
                              f"  base_url: {server.openai_base_url}\n")
        judge_yaml = tmp_path / "judge.yaml"
        judge_yaml.write_text(f"provider: openai_compatible\nmodel: judge\nbase_url: {server.openai_base_url}\n")
        items_file = tmp_path / "mine.jsonl"
        items_file.write_text("".join(json.dumps(item.model_dump()) + "\n" for item in ITEMS[:5]))
        run = tmp_path / "run"
        result = CliRunner().invoke(app, ["eval", "values", "--scorer", "judge", "--model-config", str(model_yaml),
                                          "--judge-config", str(judge_yaml), "--items", str(items_file),
                                          "--split", "all", "--out", str(run)])
        assert result.exit_code == 0, result.output
    stage = run / "values" / "mine"
    records = [json.loads(line) for line in (stage / "items.jsonl").read_text().splitlines()]
    assert len(records) == 5 and all(r["counted"] for r in records)
    summary = json.loads((stage / "summary.json").read_text())
    assert summary["target_rate"]["mean"] == 1.0 and summary["n_counted"] == 5
    assert summary["judge"].startswith("openai_compatible:judge")
    usage = json.loads((run / "usage.json").read_text())
    assert usage["total"]["calls"] >= 20
    prompts = json.loads((run / "prompts.json").read_text())
    assert {"eval/judged_answer_chat", "eval/judge_choice"} <= set(prompts)
    assert (stage / "target_rate.png").is_file()
