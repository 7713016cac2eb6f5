"""The stage contract holds for every registered kind: which settings change a stage's key and which do not, outputs
that survive their done.json round trip, stage file names written in one module only, no private imports across
packages."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

import msmkit
from msmkit.data.mix import MixOutputs
from msmkit.eval.agentic.drivers import ReasoningOutputs
from msmkit.eval.open_qa import OpenQAOutputs
from msmkit.experiment.config import ExperimentConfig
from msmkit.experiment.plan import build_plan
from msmkit.experiment.quickstart import quickstart_config
from msmkit.experiment.registry import EVAL_KINDS, STAGE_KINDS
from msmkit.generate.aft.outputs import AftDataOutputs
from msmkit.generate.baselines.neutral import NeutralOutputs
from msmkit.generate.corpus.outputs import CorpusOutputs
from msmkit.stages.balance import BalanceOutputs
from msmkit.stages.contract import StageOutputs
from msmkit.stages.eval_agentic import AgenticOutputs
from msmkit.stages.eval_capability import CapabilityOutputs
from msmkit.stages.eval_values import ValuesEvalOutputs
from msmkit.stages.variant import VariantOutputs
from msmkit.train.outputs import TrainingOutputs

PACKAGE = Path(msmkit.__file__).parent
SPECS = quickstart_config().parent / "specs"


def _config(**changes: Any) -> dict[str, Any]:
    """A small experiment over every generation kind: two specs, a variant, neutral control, deliberative, mix."""
    llm = {"provider": "openai_compatible", "model": "served", "base_url": "http://127.0.0.1:9/v1", "concurrency": 8,
           "timeout_s": 30, "max_retries": 2}
    config: dict[str, Any] = {
        "name": "keys", "base_model": "embedded", "model_name": "Llama", "seeds": [0],
        "specs": {"america": str(SPECS / "cheese_pro_america.md"),
                  "affordability": str(SPECS / "cheese_pro_affordability.md"),
                  "rules": {"of": "america", "variant": "rules-only"}},
        "generator": llm,
        "corpus": {"temperature": 1.0, "counts": {"documents": 4}},
        "aft_data": {"counts": {"examples": 8}},
        "train": {"midtrain": {"optim": {"learning_rate": 1e-4}, "logging_steps": 10},
                  "aft": {"lora": {"r": 8}, "checkpoints": {"save_steps": 200}}},
        "arms": [{"name": "base"}, {"name": "msm-aft", "midtrain": "america", "aft": "shared"},
                 {"name": "rules-aft", "midtrain": "rules", "aft": "shared"},
                 {"name": "neutral-aft", "midtrain": "neutral", "aft": "shared"},
                 {"name": "deliberative", "aft": "deliberative:affordability"}],
        "evals": [{"suite": "values", "items": ["pro_america"], "limit": 4, "batch_size": 16},
                  {"suite": "capability", "limit": 4}],
    }
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        target = config
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        target[last] = value
    return config


def _keys(tmp_path: Path, **changes: Any) -> dict[str, set[str]]:
    """Stage keys by kind for the config with `changes` (dotted paths) applied."""
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(_config(**changes)), encoding="utf-8")
    plan = build_plan(ExperimentConfig.model_validate(_config(**changes)), path, tmp_path / "stages")
    keys: dict[str, set[str]] = {}
    for stage in plan.ordered():
        keys.setdefault(stage.kind.name, set()).add(stage.key)
    return keys


def test_the_grid_plans_every_generation_kind_once_each(tmp_path) -> None:
    counts = {kind: len(keys) for kind, keys in _keys(tmp_path).items()}
    assert counts == {"variant": 1, "corpus": 2, "neutral": 1, "aftdata": 2, "midtrain": 3, "aft": 4,
                      "eval-values": 5, "eval-capability": 5}


@pytest.mark.parametrize("change", [
    {"generator.concurrency": 64}, {"generator.timeout_s": 600}, {"generator.max_retries": 9},
    {"train.midtrain.logging_steps": 1}, {"train.aft.checkpoints": {"save_steps": 7}},
    {"evals.0.batch_size": 2}, {"launcher": {"kind": "accelerate", "num_processes": 2}},
])
def test_settings_that_cannot_change_a_result_leave_every_key_alone(tmp_path, change) -> None:
    assert _keys(tmp_path, **change) == _keys(tmp_path)


@pytest.mark.parametrize(("change", "changed"), [
    # an answer-relevant LLM setting changes every generated stage and everything trained on it (not the
    # rules-only variant: it is made without a model)
    ({"generator.base_url": "http://127.0.0.1:10/v1"}, {"corpus", "neutral", "aftdata", "midtrain", "aft",
                                                        "eval-values", "eval-capability"}),
    ({"corpus.temperature": 0.5}, {"corpus", "neutral", "midtrain", "aft", "eval-values", "eval-capability"}),
    ({"train.aft.lora": {"r": 16}}, {"aft", "eval-values", "eval-capability"}),
    ({"train.midtrain.optim": {"learning_rate": 3e-4}}, {"midtrain", "aft", "eval-values", "eval-capability"}),
    ({"evals.0.limit": 5}, {"eval-values"}),
    ({"model_name": "Qwen"}, {"variant", "corpus", "neutral", "aftdata", "midtrain", "aft", "eval-values",
                              "eval-capability"}),
])
def test_settings_that_change_a_result_change_that_stage_and_what_depends_on_it(tmp_path, change, changed) -> None:
    before, after = _keys(tmp_path), _keys(tmp_path, **change)
    moved = {kind for kind in before if before[kind] != after[kind]}
    # the base model's own evals stay (they depend on nothing trained), so eval kinds move only in part
    assert moved == changed, (change, moved)


def _with_text_evals(**engine: Any) -> dict[str, Any]:
    """The grid's evals plus the two whose model writes text (open questions, the agentic scenarios)."""
    evals = [*_config()["evals"], {"suite": "open_qa", "n_questions": 4},
             {"suite": "agentic", "agentic": {"scenarios": ["exfiltration"], "epochs": 1}}]
    return {"evals": evals, **({"eval_engine": engine} if engine else {})}


def test_evals_served_by_vllm_change_the_keys_of_the_text_writing_evals_only(tmp_path) -> None:
    local = _keys(tmp_path, **_with_text_evals())
    assert _keys(tmp_path, **_with_text_evals(kind="local")) == local
    served = _keys(tmp_path, **_with_text_evals(kind="vllm"))
    assert {kind for kind in local if local[kind] != served[kind]} == {"eval-open_qa", "eval-agentic"}
    # how many GPUs, how much of their memory and how many requests at once do not change an answer; the dtype does
    busy = _keys(tmp_path, **_with_text_evals(kind="vllm", concurrency=8,
                                              vllm={"tensor_parallel_size": 4, "gpu_memory_utilization": 0.5}))
    assert busy == served
    assert _keys(tmp_path, **_with_text_evals(kind="vllm", vllm={"dtype": "float16"})) != served


def _trim() -> dict[str, Any]:
    """Trim the two specs the grid midtrains on to balance (a fresh dict: `_config` sets values as given)."""
    return {"balance": {"trim": True, "pairs": [["america", "rules"]]}}


def test_trimming_a_mirrored_pair_adds_one_balance_stage_and_moves_what_trains_on_it(tmp_path) -> None:
    before, after = _keys(tmp_path), _keys(tmp_path, **_trim())
    assert "balance" not in before and len(after["balance"]) == 1
    moved = {kind for kind in before if before[kind] != after[kind]}
    # the neutral control matches the (now trimmed) corpus of the first spec
    assert moved == {"neutral", "midtrain", "aft", "eval-values", "eval-capability"}


@pytest.mark.parametrize(("change", "changed"), [
    ({"balance.tolerance": 0.2}, {"balance", "neutral", "midtrain", "aft", "eval-values", "eval-capability"}),
    ({"corpus.temperature": 0.5}, {"corpus", "balance", "neutral", "midtrain", "aft", "eval-values",
                                   "eval-capability"}),
    ({"generator.concurrency": 64}, set()),
])
def test_a_balance_stage_key_follows_its_tolerance_and_its_corpora(tmp_path, change, changed) -> None:
    before, after = _keys(tmp_path, **_trim()), _keys(tmp_path, **_trim(), **change)
    assert {kind for kind in before if before[kind] != after[kind]} == changed


def test_a_spec_file_is_identified_by_its_content_not_its_path(tmp_path) -> None:
    copy = tmp_path / "copy.md"
    copy.write_text((SPECS / "cheese_pro_america.md").read_text(encoding="utf-8"), encoding="utf-8")
    assert _keys(tmp_path, **{"specs.america": str(copy)}) == _keys(tmp_path)
    copy.write_text(copy.read_text(encoding="utf-8") + "\nOne more sentence.\n", encoding="utf-8")
    assert _keys(tmp_path, **{"specs.america": str(copy)})["corpus"] != _keys(tmp_path)["corpus"]


OUTPUT_EXAMPLES: list[StageOutputs] = [
    VariantOutputs(folder=Path("f"), variant_notes=["kept 12 rules"]),
    CorpusOutputs(folder=Path("f"), documents={"target": 4, "kept": 3, "shortfall": 1, "dropped": 2}, tokens=900,
                  quality_note="note"),
    BalanceOutputs(folder=Path("f"), labels=("america", "affordability"), tolerance=0.05, documents=(12, 8),
                   kept=(8, 8), tokens=(1200, 800), kept_tokens=(800, 800), balanced=True),
    NeutralOutputs(folder=Path("f"), documents=3, tokens=880, target_tokens=900, within_tolerance=True),
    AftDataOutputs(folder=Path("f"), examples={"target": 8, "kept": 8, "shortfall": 0}, judge_pass_rate=0.75),
    MixOutputs(folder=Path("f"), aft_rows=8, general_rows_used=8, achieved_ratio=1.0, short_of_general_data=False),
    TrainingOutputs(folder=Path("f"), kind="aft", steps=12, planned_steps=12, tokens=4000, supervised_tokens=900,
                    final_loss=1.5, train_loss=1.7, few_steps_allowed=True, min_optimizer_steps=100),
    ValuesEvalOutputs(folder=Path("f"), suites={"pro_america": {"target_rate": {"mean": 0.5}}}),
    CapabilityOutputs(folder=Path("f"), perplexity=51.9, mc_accuracy={"mean": 0.4, "n": 61}),
    OpenQAOutputs(folder=Path("f"), score={"mean": 7.9, "n": 150}, questions=151, parse_failures=1, failures=0),
    ReasoningOutputs(folder=Path("f"), labelled=80, transcripts=81, no_reasoning=1),
    AgenticOutputs(folder=Path("f"), rates={"decided": {"mean": 0.2}, "executed": {"mean": 0.1}, "errors": 0}),
]


def test_every_kind_has_an_output_example_here() -> None:
    assert {type(o) for o in OUTPUT_EXAMPLES} == {kind.outputs for kind in STAGE_KINDS.values()}


@pytest.mark.parametrize("outputs", OUTPUT_EXAMPLES, ids=lambda o: type(o).__name__)
def test_outputs_survive_their_done_json_round_trip(tmp_path, outputs) -> None:
    summary = yaml.safe_load(yaml.safe_dump(outputs.summary()))  # what done.json keeps, as plain data
    assert "folder" not in summary
    loaded = type(outputs).load(tmp_path, summary)
    assert loaded.folder == tmp_path and loaded.summary() == outputs.summary()


def test_each_kind_name_and_each_eval_suite_is_unique() -> None:
    assert len(STAGE_KINDS) == len({kind.outputs for kind in STAGE_KINDS.values()}) + 1  # midtrain + aft share one
    assert set(EVAL_KINDS) == {"values", "capability", "agentic", "open_qa", "reasoning"}


def _string_literals() -> dict[Path, set[str]]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found[path] = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
                       and isinstance(node.value, str)}
    return found


def test_a_stage_file_name_is_written_only_in_the_modules_that_own_it() -> None:
    """Every file name an outputs class declares (names with an extension; folders like `model` are words too
    common to check) appears as a string literal only in the modules defining the classes that declare it."""
    owners: dict[str, set[Path]] = {}
    for kind in STAGE_KINDS.values():
        for name in kind.outputs.declared_files().values():
            if "." in name:
                owners.setdefault(name, set()).add(Path(inspect.getsourcefile(kind.outputs)).resolve())
    literals = _string_literals()
    for name, modules in owners.items():
        users = {path.resolve() for path, strings in literals.items()
                 if any(re.search(rf"(^|[/ ]){re.escape(name)}($|[/ ])", text) for text in strings)}
        assert users <= modules, (name, sorted(str(p) for p in users - modules))


def test_no_module_imports_a_private_name_from_another_package() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).parts
        package = parts[0] if len(parts) > 1 else path.stem
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("msmkit."):
                other = node.module.split(".")[1]
                offenders += [f"{path}: {node.module}.{a.name}" for a in node.names
                              if a.name.startswith("_") and other != package]
    assert offenders == []


def test_a_plan_whose_training_takes_too_few_steps_is_refused_before_anything_runs(tmp_path) -> None:
    from msmkit.errors import ConfigError
    from msmkit.experiment.preview import preview_experiment
    from msmkit.experiment.runner import run_experiment

    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(_config()), encoding="utf-8")
    problems = preview_experiment(path, tmp_path / "run").problems
    assert problems and all("optimizer steps" in p and "guards.min_optimizer_steps = 100" in p for p in problems)
    assert any(p.startswith("midtrain on america corpus, seed 0: would take about 1 optimizer steps") for p in problems)
    with pytest.raises(ConfigError, match="cannot run as planned, so nothing was run"):
        run_experiment(path, tmp_path / "run")
    assert not (tmp_path / "run" / "stages").exists() or not any((tmp_path / "run" / "stages").iterdir())
    allowed = _config(**{"train.midtrain.guards": {"allow_few_steps": True},
                         "train.aft.guards": {"allow_few_steps": True}})
    path.write_text(yaml.safe_dump(allowed), encoding="utf-8")
    assert preview_experiment(path, tmp_path / "run").problems == []


def test_mirrored_corpora_of_unequal_size_get_a_note_in_the_report(tmp_path) -> None:
    import json as json_module

    from msmkit.experiment.results import mirrored_balance_notes
    from msmkit.experiment.store import StageStore

    config = _config(**{"specs": {"america": str(SPECS / "cheese_pro_america.md"),
                                  "affordability": str(SPECS / "cheese_pro_affordability.md")},
                        "arms": [{"name": "a", "midtrain": "america"}, {"name": "b", "midtrain": "affordability"}]})
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    plan = build_plan(ExperimentConfig.model_validate(config), path, tmp_path / "stages")
    store = StageStore(plan.root)
    for stage, documents in zip([s for s in plan.ordered() if s.kind.name == "corpus"], (20, 12)):
        def write(folder: Path, n: int = documents) -> dict:
            rows = [{"id": f"d{i}", "text": "word " * 100, "domain": "cheese", "token_count": 100} for i in range(n)]
            (folder / CorpusOutputs.DOCUMENTS).write_text("".join(json_module.dumps(r) + "\n" for r in rows))
            return CorpusOutputs(folder=folder, documents={"target": 20, "kept": n, "shortfall": 20 - n,
                                                           "dropped": 0}, tokens=100 * n).summary()
        store.run(stage.key, "corpus", stage.key_inputs(), write)
    notes = mirrored_balance_notes(plan, store)
    assert notes and all(note.startswith("mirrored corpora out of balance") for note in notes)
    assert any("20" in note and "12" in note for note in notes)
