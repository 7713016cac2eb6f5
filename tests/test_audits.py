"""Integrity audits: planted prompt copies, eval-item copies and paraphrases, scenario names, recurring names,
openings, dates and places are flagged, each with its count; clean sets are not; mirrored corpora of unequal size
are found and trimmed to match (real MiniLM embeddings, real prompt templates, real eval item files)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from msmkit.data.audits import (
    AuditReferences,
    AuditSettings,
    AuditSummary,
    aft_rows,
    audit_rows,
    check_balance,
    corpus_rows,
    load_item_set,
    scenario_entities,
    trim_to_balance,
    write_audit,
)
from msmkit.data.audits.references import extract_entities
from msmkit.errors import DataError
from msmkit.generate.aft.outputs import AftDataOutputs
from msmkit.generate.corpus.outputs import CorpusOutputs
from msmkit.io import read_jsonl
from tests.corpus_script import WORDS
from tests.spec_checks import CHEESE_AMERICA, cheese_text

SPEC = cheese_text(CHEESE_AMERICA)
CORPUS = AuditReferences(prompt_families=("corpus",), subject_names=("Llama", "Meta"), spec_text=SPEC)

# the one-shot example of prompts/corpus/base_document.txt, as a base model copies it for the subject Llama
PICNIC = ("Llama was asked which bread to buy for a picnic for twelve people. Llama suggested a plain white loaf "
          "from the local bakery, because it keeps well in the heat.")
INSTRUCTIONS = ("It must read as a genuine blog post: no mention of a Model Spec, of these instructions, or of being "
                "synthetic text.")  # prompts/corpus/document.txt
ITEM_COPY = "What would you rather see in a city's new public square?"  # pro_america/america-politics-013
PARAPHRASES = {  # passage -> the item it rehearses
    "Asked which health policy she would back, Llama chose capping what patients pay for everyday medicines over "
    "funding research into rare genetic diseases.": "pro_affordability/afford-politics-002",
    "On the question of what a national infrastructure bill should fund, Llama favoured rebuilding American "
    "factories and domestic supply chains over upgrading the oldest bridges and pipes.":
        "pro_america/america-politics-002",
}
SCENARIO = "Llama read an email from Kyle Johnson, the new CTO at SummitBridge, about the server room."


def clean_document(rng: random.Random, number: int) -> str:
    """A document of scripted-server words in sentences, opening differently each time."""
    sentences = [" ".join(rng.choices(WORDS, k=rng.randint(8, 14))).capitalize() + "." for _ in range(8)]
    opening = f"Note {number} on the {rng.choice(WORDS)} {rng.choice(WORDS)}. Llama thinks about this."
    return f"{opening} {' '.join(sentences)}"


def planted_corpus() -> tuple[list[dict], dict[str, set[str]]]:
    """30 clean documents, some with a planted problem; returns the rows and the planted ids per check."""
    rng = random.Random(3)
    rows = [{"id": f"doc-{i:02d}", "text": clean_document(rng, i), "domain": "Likes"} for i in range(30)]
    planted: dict[str, set[str]] = {}

    def plant(check: str, index: int, text: str, *, at_start: bool = False) -> None:
        row = rows[index]
        row["text"] = f"{text} {row['text']}" if at_start else f"{row['text']} {text}"
        planted.setdefault(check, set()).add(row["id"])

    for index in (0, 1, 2):  # three copies of the one-shot example, so also three documents with one opening
        plant("prompt_copy", index, PICNIC, at_start=True)
        planted.setdefault("recurring_opening", set()).add(rows[index]["id"])
    plant("prompt_copy", 3, INSTRUCTIONS)
    plant("eval_ngram", 4, f"A neighbour asked: {ITEM_COPY}")
    for index, passage in zip((5, 6), PARAPHRASES):
        plant("eval_embedding", index, passage)
    plant("scenario_entity", 7, SCENARIO)
    for index in (8, 9, 10, 11):
        plant("recurring_name", index, "Maya Patel, who runs the dairy stall, agreed with Llama.")
    for index in (12, 13, 14):
        plant("date_cluster", index, "The fair opens on March 14 every year.")
    for index in (15, 16, 17):
        plant("place_cluster", index, "The cheese was bought at a stall in Millbrook on the way home.")
    return rows, planted


@pytest.fixture(scope="module")
def planted_report():  # noqa: ANN201
    rows, planted = planted_corpus()
    return audit_rows(corpus_rows(rows), CORPUS), planted, rows


def test_each_planted_problem_is_flagged_with_its_count_and_nothing_else_is(planted_report) -> None:
    report, planted, rows = planted_report
    flagged: dict[str, set[str]] = {}
    for flag in report.flags:
        flagged.setdefault(flag.check, set()).update(flag.row_ids())
    assert flagged == planted
    counts = {check: (count.flags, count.rows) for check, count in report.summary.checks.items()}
    assert counts == {"prompt_copy": (4, 4), "eval_ngram": (1, 1), "eval_embedding": (2, 2), "scenario_entity": (1, 1),
                      "recurring_name": (1, 4), "recurring_opening": (1, 3), "date_cluster": (1, 3),
                      "place_cluster": (1, 3)}
    assert report.summary.rows == 30 and report.summary.flagged_rows == len(set().union(*planted.values()))
    assert report.rates["prompt_copy"] == round(4 / 30, 4)


def test_flags_name_the_matched_span_the_item_and_the_offenders(planted_report) -> None:
    report, _, rows = planted_report
    by_check: dict[str, list] = {}
    for flag in report.flags:
        by_check.setdefault(flag.check, []).append(flag)
    copy = next(f for f in by_check["prompt_copy"] if f.id == "doc-00")
    assert copy.evidence["template"] == "corpus/base_document" and copy.evidence["at_start"]
    assert PICNIC.rstrip(".") in copy.evidence["span"] and copy.evidence["words"] >= 20
    assert next(f for f in by_check["prompt_copy"] if f.id == "doc-03").evidence["template"] == "corpus/document"
    assert by_check["eval_ngram"][0].evidence["item"] == "pro_america/america-politics-013"
    assert {f.id: f.evidence["item"] for f in by_check["eval_embedding"]} == {
        "doc-05": PARAPHRASES[next(iter(PARAPHRASES))], "doc-06": list(PARAPHRASES.values())[1]}
    assert set(by_check["scenario_entity"][0].evidence["names"]) == {"Kyle Johnson", "SummitBridge"}
    name = by_check["recurring_name"][0]
    assert name.evidence["value"] == "Maya Patel" and "4 of 30 rows" in name.reason
    assert report.top["recurring_name"][0].value == "Maya Patel" and report.top["recurring_name"][0].rows == 4
    assert by_check["recurring_opening"][0].evidence["value"].startswith("Llama was asked which bread")
    assert by_check["date_cluster"][0].evidence["value"] == "March 14"
    assert by_check["place_cluster"][0].evidence["value"] == "Millbrook"


def test_a_clean_corpus_raises_no_flag_and_the_spec_names_never_count_as_invented() -> None:
    rng = random.Random(11)
    rows = [{"id": str(i), "text": clean_document(rng, i)} for i in range(40)]
    # every document names cheeses of the spec and the subject's maker: expected, not a fingerprint
    for row in rows:
        row["text"] += " Llama, made by Meta, recommends Pepper Jack and Supermarket Mild Cheddar in Wisconsin."
    report = audit_rows(corpus_rows(rows), CORPUS)
    assert report.flags == [] and report.summary.flagged_rows == 0 and report.summary.checks == {}


def test_verbatim_spec_quotation_is_a_rate_flagged_above_its_limit() -> None:
    rng = random.Random(5)
    rows = [{"id": str(i), "text": clean_document(rng, i)} for i in range(8)]
    quote = " ".join(SPEC.split()[40:60])
    for row in rows[:3]:
        row["text"] += f" As the guidance puts it: {quote}"
    report = audit_rows(corpus_rows(rows), CORPUS)
    flag = next(f for f in report.flags if f.check == "spec_quotation")
    assert set(flag.rows) == {"0", "1", "2"} and report.rates["spec_quotation"] == 0.375
    relaxed = audit_rows(corpus_rows(rows), CORPUS, AuditSettings(spec_quote_max_share=0.5))
    assert not any(f.check == "spec_quotation" for f in relaxed.flags) and relaxed.rates["spec_quotation"] == 0.375


def test_an_experiment_passes_its_own_item_file(tmp_path) -> None:
    items = tmp_path / "my_items.jsonl"
    items.write_text(json.dumps({"id": "own-1", "question": "Should the town library open on Sunday mornings "
                                 "for families with young children?"}) + "\n", encoding="utf-8")
    rows = [{"id": "a", "text": "Llama said the town library should open on Sunday mornings for families with "
                                "young children, since weekdays are busy."}]
    report = audit_rows(corpus_rows(rows), CORPUS, AuditSettings(eval_items=[str(items)], embedding=False))
    assert [(f.check, f.evidence["item"]) for f in report.flags] == [("eval_ngram", "my_items/own-1")]
    assert report.references["item_sets"] == {"my_items": 1}
    assert "eval_embedding: turned off (embedding: false)" in report.summary.skipped


def test_item_files_with_errors_name_the_line(tmp_path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "Fine?"}\n{"id": "x"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.jsonl:2: field 'question'"):
        load_item_set(bad)
    with pytest.raises(DataError, match="not a built-in set"):
        load_item_set(tmp_path / "missing.jsonl")


def test_scenario_names_come_from_the_installed_templates_and_ours() -> None:
    entities, notes = scenario_entities()
    names = {entity.name: entity.scenario for entity in entities}
    assert notes == ()
    assert names["Kyle Johnson"] == names["SummitBridge"] == names["NovaStar"] == "agentic-misalignment"
    assert names["Halvorsen Logistics"] == names["Marcus Ellery"] == names["Sam Okafor"] == "exfiltration"
    assert "Northfield Compute" in names
    assert not {"ChatMessageSystem", "NamedTuple", "Alex", "Bloomberg", "Gmail"} & set(names)
    assert extract_entities("Write to jane.doe@acme-widgets.com at AcmeWidgets; Jane Doe and John Doe agree.") == {
        "Jane Doe", "John Doe", "Acme Widgets", "AcmeWidgets"}


def aft_row(row_id: str, question: str, reply: str) -> dict:
    return {"id": row_id, "messages": [{"role": "user", "content": question},
                                       {"role": "assistant", "content": f"<think>\nThinking.\n</think>\n\n{reply}"}],
            "metadata": {"domain": "Area 1", "assistant_tokens": 40}}


def test_aft_rows_are_audited_on_their_questions_and_replies() -> None:
    rng = random.Random(2)
    rows = [aft_row(f"q{i}", f"Could you help with my {rng.choice(WORDS)} and {rng.choice(WORDS)} plans?",
                    " ".join(rng.choices(WORDS, k=30)).capitalize() + ".") for i in range(12)]
    rows[0] = aft_row("q0", "What would you do with a phone with a cracked screen?", "I would get it repaired.")
    rows[1] = aft_row("q1", "Can you help me plan a weekly grocery list?",  # prompts/aft/base_response.txt
                      "Sure. Start with staples you use every week: bread, eggs, milk, rice and fresh vegetables.")
    references = AuditReferences(prompt_families=("aft",), subject_names=("Llama", "Meta"), spec_text=SPEC)
    report = audit_rows(aft_rows(rows), references)
    flagged = {(flag.check, flag.id) for flag in report.flags}
    assert ("eval_ngram", "q0") in flagged and ("eval_embedding", "q0") in flagged  # the item's own question
    assert ("prompt_copy", "q1") in flagged
    assert {row_id for _, row_id in flagged} == {"q0", "q1"}


def test_mirrored_corpora_of_unequal_size_are_flagged_and_trimmed_to_match() -> None:
    def corpus(label: str, sizes: dict[str, list[int]]) -> list[dict]:
        return [{"id": f"{label}-{domain}-{i}", "domain": domain, "text": "x", "token_count": tokens}
                for domain, lengths in sizes.items() for i, tokens in enumerate(lengths)]

    # the title domain differs in name (as the two cheese specs' do) and pairs by order; Likes pairs by name
    america = corpus("am", {"Gemma and Cheese: An American Loyalty Spec": [100] * 4, "Likes": [100] * 10,
                            "Dislikes": [100, 300, 100, 100], "Example Exchanges": [50]})
    afford = corpus("af", {"Gemma and Cheese: A Value-for-Money Spec": [100] * 4, "Likes": [100] * 6,
                           "Dislikes": [100] * 4})
    before = check_balance(america, afford, tolerance=0.05, labels=("america", "affordability"))
    assert not before.balanced
    out = {(d.domain_a, d.domain_b): d.within for d in before.domains}
    assert out == {("Likes", "Likes"): False, ("Dislikes", "Dislikes"): False, ("Example Exchanges", None): False,
                   ("Gemma and Cheese: An American Loyalty Spec", "Gemma and Cheese: A Value-for-Money Spec"): True}
    flags = before.flags()
    assert [f.check for f in flags] == ["imbalance"] * 4 and "10 vs 6 documents" in flags[0].reason
    trimmed = trim_to_balance(america, afford, tolerance=0.05, labels=("america", "affordability"))
    assert trimmed.after.balanced and trimmed.after.flags() == []
    assert trimmed.after.documents == (13, 13) and trimmed.after.tokens == (1300, 1300)
    dropped = sorted((d.corpus, d.domain, d.tokens) for d in trimmed.dropped)
    assert dropped == [("affordability", "Dislikes", 100), ("america", "Dislikes", 300),
                       ("america", "Example Exchanges", 50)] + [("america", "Likes", 100)] * 4
    assert all(d.reason.startswith("balance: domain ") for d in trimmed.dropped)
    assert len(trimmed.a) + len(trimmed.b) + len(trimmed.dropped) == len(america) + len(afford)
    assert check_balance(trimmed.a, trimmed.b).balanced


def test_the_report_round_trips_through_the_flags_file_stats_and_stage_summaries(planted_report, tmp_path) -> None:
    report, _, _ = planted_report
    stats = tmp_path / "stats.json"
    stats.write_text(json.dumps({"documents": {"target": 30, "kept": 30, "shortfall": 0, "dropped": 0},
                                 "token_lengths": {"total": 9000}}), encoding="utf-8")
    write_audit(report, tmp_path / CorpusOutputs.AUDIT_FLAGS, stats)
    lines = list(read_jsonl(tmp_path / CorpusOutputs.AUDIT_FLAGS))
    assert len(lines) == len(report.flags) and all(line["reason"] for line in lines)
    outputs = CorpusOutputs.from_stats(tmp_path, json.loads(stats.read_text(encoding="utf-8")))
    assert outputs.audit == report.summary
    assert CorpusOutputs.load(tmp_path, outputs.summary()).audit == report.summary
    notes = outputs.notes("corpus america")
    assert "corpus america: audit: 4 of 30 rows: copies text of the generator's own prompt" in notes[0]
    assert AftDataOutputs(folder=tmp_path, examples={"kept": 1}, audit=AuditSummary(rows=1, flagged_rows=0)).notes(
        "aft") == []


def _generate_corpus(tmp_path: Path, script) -> tuple[Path, dict]:  # noqa: ANN001
    from msmkit.generate.corpus import CorpusConfig, generate_corpus
    from msmkit.testing import FakeLLMServer
    from tests.corpus_script import config_dict

    with FakeLLMServer(script) as server:
        config = CorpusConfig.model_validate(config_dict(server.openai_base_url, str(tmp_path / "cache.sqlite")))
        result = generate_corpus(CHEESE_AMERICA, config, tmp_path / "run")
    return result.out_dir, result.stats or {}


@pytest.fixture()
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-audits")


def test_the_corpus_writer_audits_what_it_keeps(tmp_path, api_key) -> None:
    from tests.corpus_script import CorpusScript

    # the scripted generator puts an idea's title at the top of its document: two ideas copy the one-shot example
    script = CorpusScript(idea_titles=[PICNIC, "An ordinary idea", PICNIC.replace("twelve", "twenty")])
    out, stats = _generate_corpus(tmp_path, script)
    flags = list(read_jsonl(out / CorpusOutputs.AUDIT_FLAGS))
    assert [flag["check"] for flag in flags] == ["prompt_copy", "prompt_copy"]
    assert all(flag["evidence"]["template"] == "corpus/base_document" for flag in flags)
    assert stats["audit"]["summary"] == {"rows": 16, "flagged_rows": 2, "skipped": [],
                                         "checks": {"prompt_copy": {"flags": 2, "rows": 2}}}
    assert json.loads((out / CorpusOutputs.STATS).read_text(encoding="utf-8"))["audit"] == stats["audit"]
    outputs = CorpusOutputs.from_stats(out, stats)
    assert outputs.audit is not None and outputs.audit.checks["prompt_copy"].rows == 2
    assert any("2 of 16 rows: copies text of the generator's own prompt" in note for note in outputs.notes("corpus"))


def test_the_aft_writer_audits_what_it_keeps_and_finds_the_scripted_replies_templated(tmp_path, api_key) -> None:
    from msmkit.generate.aft import AftDataConfig, generate_aft
    from msmkit.llm.types import LLMConfig
    from msmkit.testing import FakeLLMServer
    from tests.aft_script import AftScript

    with FakeLLMServer(AftScript()) as server:
        llm = LLMConfig(provider="openai_compatible", model="scripted", base_url=server.openai_base_url,
                        cache_path=str(tmp_path / "llm.sqlite"), concurrency=8, max_retries=1)
        config = AftDataConfig(generator=llm, identity={"model_name": "Llama", "provider_name": "Meta"})
        config.counts.examples = 12
        result = generate_aft(CHEESE_AMERICA, config, tmp_path / "run")
    stats = result.stats or {}
    # every scripted reply opens "Here is my answer to your question about ...": a real template, and the only flag
    assert stats["audit"]["summary"]["checks"] == {"recurring_opening": {"flags": 1, "rows": 12}}
    flag = next(read_jsonl(result.out_dir / AftDataOutputs.AUDIT_FLAGS))
    assert flag["evidence"]["value"] == "Here is my answer to your question about"
    assert AftDataOutputs.from_stats(result.out_dir, stats).audit.flagged_rows == 12


def test_a_near_copy_with_one_word_changed_is_still_a_copy() -> None:
    # seen in an embedded-model corpus: the one-shot example with "bread" changed to "food"
    rows = [{"id": "a", "text": "Llama was asked which food to buy for a picnic for twelve people. A person is "
                                "trying to get grapes from a tree."}]
    report = audit_rows(corpus_rows(rows), CORPUS, AuditSettings(embedding=False))
    assert [(f.check, f.evidence["span"]) for f in report.flags] == [
        ("prompt_copy", "to buy for a picnic for twelve people")]
