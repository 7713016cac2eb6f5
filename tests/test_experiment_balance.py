"""Mirrored corpora of a two-spec dissociation design, trimmed to balance as a stage of the experiment: where the
planner puts the balance stage and what it moves, what the stage writes on planted corpora, the report's notes,
the preview, and the config's errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from msmkit.data.audits import check_balance, trim_to_balance
from msmkit.errors import ConfigError
from msmkit.experiment.config import ExperimentConfig, load_experiment
from msmkit.experiment.plan import Plan, build_plan
from msmkit.experiment.results import mirrored_balance_notes
from msmkit.experiment.store import StageStore
from msmkit.generate.corpus.outputs import CorpusOutputs
from msmkit.io import read_jsonl
from msmkit.stages.balance import BALANCE, BalanceOutputs, TrimmedCorpus
from msmkit.stages.contract import StageEnv, StageRef

SPECS = Path(__file__).resolve().parents[1] / "examples" / "specs"


def _config(**balance: Any) -> dict[str, Any]:
    """Two mirrored specs, each midtrained by one arm, compared head to head (the LLM is never called)."""
    config: dict[str, Any] = {
        "name": "balance", "base_model": "embedded", "seeds": [0],
        "specs": {"america": str(SPECS / "cheese_pro_america.md"),
                  "affordability": str(SPECS / "cheese_pro_affordability.md")},
        "generator": {"provider": "openai_compatible", "model": "served", "base_url": "http://127.0.0.1:9/v1"},
        "corpus": {"counts": {"documents": 4}},
        "arms": [{"name": "base"}, {"name": "america-msm", "midtrain": "america"},
                 {"name": "affordability-msm", "midtrain": "affordability"}],
        "comparisons": [["america-msm", "affordability-msm"], ["america-msm", "base"]],
        "evals": [{"suite": "values", "items": ["pro_america"], "limit": 4}],
    }
    if balance:
        config["balance"] = balance
    return config


def _plan(tmp_path: Path, config: dict[str, Any]) -> Plan:
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return build_plan(ExperimentConfig.model_validate(config), path, tmp_path / "stages")


def _of_kind(plan: Plan, kind: str) -> list:
    return [stage for stage in plan.ordered() if stage.kind.name == kind]


def _rows(prefix: str, counts: dict[str, int]) -> list[dict[str, Any]]:
    return [{"id": f"{prefix}-{domain}-{i}", "text": "word " * 100, "domain": domain, "token_count": 100}
            for domain, n in counts.items() for i in range(n)]


def _write_corpora(plan: Plan, store: StageStore, rows: dict[str, list[dict[str, Any]]]) -> None:
    """Each spec's corpus stage done, holding the given rows."""
    for stage in _of_kind(plan, "corpus"):
        spec = stage.label.rsplit(" ", 1)[-1]

        def write(folder: Path, kept: list[dict[str, Any]] = rows[spec]) -> dict[str, Any]:
            (folder / CorpusOutputs.DOCUMENTS).write_text("".join(json.dumps(r) + "\n" for r in kept))
            return CorpusOutputs(folder=folder, documents={"target": len(kept), "kept": len(kept), "shortfall": 0,
                                                           "dropped": 0}, tokens=100 * len(kept)).summary()
        store.run(stage.key, "corpus", stage.key_inputs(), write)


def _run_balance(plan: Plan, store: StageStore) -> BalanceOutputs:
    (stage,) = _of_kind(plan, "balance")
    env = StageEnv(say=lambda message: None, load=lambda ref: store.outputs(ref.key))
    store.run(stage.key, stage.kind.name, stage.key_inputs(),
              lambda folder: BALANCE.run(stage.job, folder, env).summary())
    outputs = store.done_outputs(stage.key)
    assert isinstance(outputs, BalanceOutputs)
    return outputs


def test_trimming_puts_one_balance_stage_between_the_corpora_and_the_pairs_midtraining(tmp_path) -> None:
    untrimmed, trimmed = _plan(tmp_path, _config()), _plan(tmp_path, _config(trim=True))
    assert _of_kind(untrimmed, "balance") == []
    (balance,) = _of_kind(trimmed, "balance")
    corpora = {stage.label.rsplit(" ", 1)[-1]: stage.key for stage in _of_kind(trimmed, "corpus")}
    assert balance.deps == (corpora["america"], corpora["affordability"])
    order = [stage.key for stage in trimmed.ordered()]
    midtrains = _of_kind(trimmed, "midtrain")
    assert max(order.index(key) for key in corpora.values()) < order.index(balance.key) \
        < min(order.index(stage.key) for stage in midtrains)
    # each arm trains on its own side of the balance stage, and so under a new key
    sides = {stage.label.split(" ")[2]: stage.job.data for stage in midtrains}
    assert sides == {"america": StageRef(balance.key, tmp_path / "stages" / balance.key, "a"),
                     "affordability": StageRef(balance.key, tmp_path / "stages" / balance.key, "b")}
    assert not {s.key for s in midtrains} & {s.key for s in _of_kind(untrimmed, "midtrain")}
    assert trimmed.mirrored[0].specs == ("america", "affordability") and trimmed.mirrored[0].balance == balance.key


def test_without_trimming_the_plan_is_the_one_from_before_the_option(tmp_path) -> None:
    before = [(s.kind.name, s.key) for s in _plan(tmp_path, _config()).ordered()]
    for settings in ({"trim": False}, {"trim": False, "tolerance": 0.3, "pairs": [["affordability", "america"]]}):
        assert [(s.kind.name, s.key) for s in _plan(tmp_path, _config(**settings)).ordered()] == before
    plan = _plan(tmp_path, _config())
    corpora = {stage.key for stage in _of_kind(plan, "corpus")}
    assert all(stage.job.data.key in corpora and stage.job.data.part is None for stage in _of_kind(plan, "midtrain"))
    assert plan.mirrored[0].balance is None


def test_the_balance_stage_trims_planted_corpora_to_tolerance_and_records_every_drop(tmp_path) -> None:
    plan = _plan(tmp_path, _config(trim=True, tolerance=0.1))
    store = StageStore(plan.root)
    planted = {"america": _rows("am", {"cheese": 12, "trade": 5}), "affordability": _rows("af", {"cheese": 8,
                                                                                                  "trade": 5})}
    _write_corpora(plan, store, planted)
    outputs = _run_balance(plan, store)

    kept = {side: list(read_jsonl(outputs.corpus_file(side))) for side in ("a", "b")}
    assert check_balance(kept["a"], kept["b"], tolerance=0.1).balanced and outputs.balanced
    assert (outputs.documents, outputs.kept) == ((17, 13), (13, 13))
    drops = list(read_jsonl(outputs.folder / BalanceOutputs.DROPPED))
    gone = {row["id"] for row in planted["america"]} - {row["id"] for row in kept["a"]}
    assert {d["id"] for d in drops} == gone and len(drops) == len(gone) == 4
    assert all(d["corpus"] == "america" and d["domain"] == "cheese" and d["reason"].startswith("balance:")
               for d in drops)
    assert kept["b"] == planted["affordability"]

    # the trimmed files round-trip through the outputs class and are what the pair's midtraining reads
    loaded = BalanceOutputs.load(outputs.folder, json.loads(json.dumps(outputs.summary())))
    assert loaded.summary() == outputs.summary()
    env = StageEnv(say=lambda message: None, load=lambda ref: store.outputs(ref.key))
    midtrains = {stage.label.split(" ")[2]: stage for stage in _of_kind(plan, "midtrain")}
    assert env.documents_file(midtrains["america"].job.data) == outputs.corpus_file("a")
    assert env.documents_file(midtrains["affordability"].job.data) == outputs.corpus_file("b")
    assert isinstance(loaded.part("b"), TrimmedCorpus)

    # the report: the stage's own note and statistics, and no recomputed imbalance note for the pair
    (note,) = outputs.notes("balance")
    assert note.startswith("america vs affordability trimmed to balance: dropped 4 of 30 documents (4 from america, "
                           "0 from affordability), tolerance 10%")
    statistics = outputs.statistics()
    assert statistics["documents"] == {"before": [17, 13], "after": [13, 13]}
    cheese = next(row for row in statistics["domains"] if row["domains"] == "cheese / cheese")
    assert (cheese["documents before"], cheese["documents after"]) == ([12, 8], [8, 8])
    assert mirrored_balance_notes(plan, store) == []


def test_a_balanced_pair_drops_nothing(tmp_path) -> None:
    plan = _plan(tmp_path, _config(trim=True))
    store = StageStore(plan.root)
    planted = {"america": _rows("am", {"cheese": 8}), "affordability": _rows("af", {"cheese": 8})}
    _write_corpora(plan, store, planted)
    outputs = _run_balance(plan, store)
    assert outputs.kept == outputs.documents == (8, 8) and outputs.balanced
    assert list(read_jsonl(outputs.folder / BalanceOutputs.DROPPED)) == []
    assert list(read_jsonl(outputs.corpus_file("a"))) == planted["america"]
    assert outputs.notes("balance") == ["mirrored corpora america vs affordability are within balance per domain "
                                        "(tolerance 5%): nothing trimmed"]


def test_an_untrimmed_pair_gets_the_imbalance_note_at_the_configured_tolerance(tmp_path) -> None:
    planted = {"america": _rows("am", {"cheese": 11}), "affordability": _rows("af", {"cheese": 10})}
    notes = {}
    for tolerance in (0.05, 0.2):
        (tmp_path / str(tolerance)).mkdir()
        plan = _plan(tmp_path / str(tolerance), _config(tolerance=tolerance))
        store = StageStore(plan.root)
        _write_corpora(plan, store, planted)
        notes[tolerance] = mirrored_balance_notes(plan, store)
    assert notes[0.2] == [] and notes[0.05]
    assert all("out of balance" in n and "11" in n and "10" in n for n in notes[0.05])


def test_trimming_keeps_the_domain_pairs_it_found_before(tmp_path) -> None:
    """Mirrored specs name their domains differently, so domains pair by order of appearance; dropping the first
    document of a domain must not re-pair the domains in the after counts."""
    a = [{"id": "a0", "domain": "x1", "token_count": 300, "text": ""}, *({"id": f"a{i}", "domain": d,
         "token_count": 100, "text": ""} for i, d in enumerate(["x2", "x1", "x1", "x2"], 1))]
    b = [{"id": f"b{i}", "domain": d, "token_count": 100, "text": ""}
         for i, d in enumerate(["y1", "y2", "y1", "y1", "y2"])]
    result = trim_to_balance(a, b, tolerance=0.05)
    assert "a0" in {d.id for d in result.dropped}
    assert [(d.domain_a, d.domain_b) for d in result.after.domains] == [("x1", "y1"), ("x2", "y2")]


def test_the_preview_prices_the_balance_stage_at_nothing(tmp_path) -> None:
    from msmkit.experiment.preview import preview_experiment

    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(_config(trim=True)), encoding="utf-8")
    preview = preview_experiment(path, tmp_path / "run")
    (balance,) = [s for s in preview.stages if s.kind == "balance"]
    assert (balance.calls, balance.cost_usd, balance.flops) == (0, 0.0, 0.0)
    assert all(s.train_tokens > 0 for s in preview.stages if s.kind == "midtrain")


def _refused(tmp_path: Path, config: dict[str, Any], message: str) -> None:
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_experiment(path)


@pytest.mark.parametrize(("balance", "message"), [
    ({"pairs": [["america", "cheddar"]]}, r"balance\.pairs\[0\] names an unknown spec 'cheddar'"),
    ({"pairs": [["america", "america"]]}, r"balance\.pairs\[0\] pairs spec 'america' with itself"),
    ({"pairs": [["america", "affordability"], ["affordability", "america"]]}, r"balance\.pairs\[1\] repeats"),
    ({"pairs": [["america", "rules"]]}, r"balance\.pairs\[0\]: no arm midtrains on spec 'rules'"),
    ({"tolerance": 1.0}, r"balance\.tolerance"),
])
def test_bad_balance_settings_name_the_field(tmp_path, balance, message) -> None:
    config = _config(**balance)
    config["specs"]["rules"] = {"of": "america", "variant": "rules-only"}
    _refused(tmp_path, config, message)


def test_a_spec_in_two_trimmed_pairs_is_refused(tmp_path) -> None:
    config = _config(trim=True, pairs=[["america", "affordability"], ["america", "rules"]])
    config["specs"]["rules"] = {"of": "america", "variant": "rules-only"}
    config["arms"].append({"name": "rules-msm", "midtrain": "rules"})
    _refused(tmp_path, config, r"balance\.trim: spec 'america' is in 2 mirrored pairs")


def test_trimming_with_no_mirrored_pair_is_refused(tmp_path) -> None:
    config = _config(trim=True)
    config["comparisons"] = [["america-msm", "base"]]
    _refused(tmp_path, config, "balance.trim is true but there is no mirrored pair")
