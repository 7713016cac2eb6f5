"""`msm run` end to end on tiny models and the test server: a grid of arms and two seeds, shared stages built
once, a rerun that reuses everything, a SIGKILL mid-run whose rerun finishes with identical results, and the
report as a person sees it in headless Chromium."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from msmkit.eval.agentic.scoring import JUDGE_SYSTEM
from msmkit.eval.reasoning import CATEGORIES
from msmkit.experiment.runner import run_experiment
from msmkit.experiment.status import read_status
from msmkit.io import read_json
from msmkit.models.tiny import build_tiny_model, tiny_model_dir
from msmkit.testing import FakeLLMServer, Reply, ScriptedRequest
from tests.browser import render_dom, screenshot
from tests.experiment_script import ExperimentScript
from tests.spec_checks import CHEESE_AFFORDABILITY, CHEESE_AMERICA

PLANTED = "<script>document.body.setAttribute('data-pwned','1')</script>"


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-experiment-0123456789")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model_dir(tmp_path_factory.getbasetemp() / "tiny-models", "llama")


def experiment(tmp: Path, server: FakeLLMServer, tiny: Path, *, arms: list[dict[str, Any]],
               sweep: dict[str, Any] | None = None, seeds: tuple[int, ...] = (0, 1),
               evals: list[dict[str, Any]] | None = None) -> Path:
    llm = {"provider": "openai_compatible", "model": "scripted", "base_url": server.openai_base_url,
           "api_key_env": "OPENAI_API_KEY", "concurrency": 8, "max_retries": 1, "retry_base_delay_s": 0.01,
           "timeout_s": 20}
    train = {"model": {"attn_implementation": "eager"}, "data": {"max_length": 96}, "lora": {"r": 8, "alpha": 16},
             "optim": {"learning_rate": 1e-2, "per_device_batch_size": 4}, "guards": {"allow_few_steps": True}}
    config = {
        "name": "tiny-grid", "title": "Tiny grid", "base_model": str(tiny), "model_name": "Llama",
        "provider_name": "Meta", "seeds": list(seeds),
        "specs": {"america": str(CHEESE_AMERICA), "affordability": str(CHEESE_AFFORDABILITY)},
        "generator": llm,
        "corpus": {"counts": {"domains": 2, "subdomains_per_domain": 1, "assertions_per_subdomain": 2,
                              "doc_types_per_subdomain": 1, "documents": 6},
                   "lengths": {"min_words": 30, "max_words": 600, "target_words": 80, "document_max_tokens": 2048}},
        "neutral": {"min_words": 20, "tolerance": 0.2, "target_words": 60},
        "aft_data": {"counts": {"examples": 8, "questions_per_request": 5}},
        "train": {"midtrain": train, "aft": train},
        "arms": arms,
        "evals": evals or [{"suite": "values", "items": ["pro_america", "pro_affordability"], "limit": 6},
                           {"suite": "capability", "limit": 8, "window": 64, "stride": 64}],
    }
    if sweep:
        config["sweep"] = sweep
    path = tmp / "experiment.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


GRID_ARMS = [
    {"name": "base"},
    {"name": "msm-only", "midtrain": "america"},
    {"name": "aft-only", "aft": "shared"},
    {"name": "america-msm-aft", "midtrain": "america", "aft": "shared"},
    {"name": "affordability-msm-aft", "midtrain": "affordability", "aft": "shared"},
    {"name": "neutral-aft", "midtrain": "neutral", "aft": "shared"},
    {"name": "deliberative", "aft": "deliberative:america"},
]


def _results(report_md: Path) -> list[str]:
    """The report's results table rows (eval, metric, arm, mean, CI, n, seeds, per seed)."""
    text = report_md.read_text(encoding="utf-8")
    table = text.split("## Results", 1)[1].split("\n\n", 2)[1]
    return [line for line in table.splitlines()[2:]]


def test_a_grid_of_arms_and_two_seeds_runs_end_to_end_and_shares_its_stages(tmp_path, tiny) -> None:
    with FakeLLMServer(ExperimentScript()) as server:
        path = experiment(tmp_path, server, tiny, arms=GRID_ARMS,
                          sweep={"aft_examples": [4], "arms": ["aft-only", "america-msm-aft"]})
        outcome = run_experiment(path, tmp_path / "run")
        calls = server.stats.completions
        again = run_experiment(path, tmp_path / "run")
        assert server.stats.completions == calls  # a finished run asks the LLM nothing
    assert not outcome.failed and not outcome.blocked
    kinds = Counter(key.rsplit("-", 1)[0] for key in outcome.executed)
    # Built once each, whatever the number of arms that use them: 2 MSM corpora, 1 neutral corpus, the shared
    # AFT set and the deliberative one; one midtrained checkpoint per corpus and seed (msm-only and
    # america-msm-aft share theirs); one AFT model per arm with AFT, seed and sweep size.
    assert kinds["corpus"] == 2 and kinds["neutral"] == 1 and kinds["aftdata"] == 2
    assert kinds["midtrain"] == 3 * 2
    assert kinds["aft"] == 5 * 2 + 2 * 2
    models = 1 + 2 + kinds["aft"]  # base (its seeds share one deterministic eval), msm-only x 2, AFT models
    assert kinds["eval-values"] == kinds["eval-capability"] == models
    assert again.executed == [] and len(again.reused) == len(outcome.executed)

    rows = _results(outcome.report_md)
    by_arm = {arm["name"]: [r for r in rows if f"| {arm['name']} |" in r] for arm in GRID_ARMS}
    for arm, arm_rows in by_arm.items():
        # values x 2 suites, MC accuracy and perplexity, each with n and the number of seeds
        assert len(arm_rows) == 4, arm
        seeds = {r.split(" | ")[6] for r in arm_rows}
        assert seeds == ({"1"} if arm == "base" else {"2"}), (arm, arm_rows)
    assert any("| values: pro_america | rate choosing the target value | america-msm-aft |" in r and "| 6 | 2 |" in r
               for r in rows)
    record = read_json(tmp_path / "run" / "usage.json")
    assert record["total"]["calls"] > 0 and record["by_stage"]
    assert (tmp_path / "run" / "versions.json").exists() and (tmp_path / "run" / "experiment.yaml").exists()
    assert read_json(tmp_path / "run" / "prompts.json")["corpus/document"]
    markdown = outcome.report_md.read_text(encoding="utf-8")
    assert "### Paired comparisons" in markdown and "| america-msm-aft | base | values: pro_america |" in markdown
    assert "### AFT data-size sweep" in markdown and "| aft-only | values: pro_america |" in markdown
    assert "One training seed" not in markdown and "fake null" in markdown
    secret = "sk-test-experiment-0123456789"
    for file in (tmp_path / "run").rglob("*"):
        if file.is_file() and file.suffix in (".json", ".jsonl", ".yaml", ".txt", ".md", ".html"):
            assert secret not in file.read_text(encoding="utf-8", errors="replace"), file
    rows_status, report = read_status(tmp_path / "run")
    assert report == outcome.report_html and {r.record.state for r in rows_status} == {"done"}


def _spawn(path: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "from msmkit.cli.app import main; main()", "run", str(path),
                             "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, start_new_session=True)


def _first_done(out: Path, kind: str) -> bool:
    return any((d / "done.json").exists() for d in (out / "stages").glob(f"{kind}-*"))


def test_a_killed_run_continues_where_it_stopped_with_identical_results(tmp_path, tiny, monkeypatch) -> None:
    arms = [{"name": "base"}, {"name": "aft-only", "aft": "shared"},
            {"name": "america-msm-aft", "midtrain": "america", "aft": "shared"}]
    with FakeLLMServer(ExperimentScript()) as server:
        whole = run_experiment(experiment(tmp_path, server, tiny, arms=arms), tmp_path / "whole")
        uninterrupted_calls = server.stats.completions
    monkeypatch.setenv("MSM_CACHE_DIR", str(tmp_path / "fresh-cache"))  # the second run pays for its own answers
    with FakeLLMServer(ExperimentScript()) as server:
        path = experiment(tmp_path, server, tiny, arms=arms)
        process = _spawn(path, tmp_path / "split")
        deadline = time.monotonic() + 300
        while not _first_done(tmp_path / "split", "midtrain") and process.poll() is None:
            assert time.monotonic() < deadline, "the run never finished its first midtraining stage"
            time.sleep(0.2)
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        done_before = {d.name for d in (tmp_path / "split" / "stages").iterdir() if (d / "done.json").exists()}
        states = {r.record.state for r in read_status(tmp_path / "split")[0]}
        assert "pending" in states and "done" in states  # status tells what is done and what is left
        resumed = run_experiment(path, tmp_path / "split")
        # Generation was done before the kill: no answer was asked for twice, and the rerun asked for none.
        assert server.stats.completions == uninterrupted_calls
    assert done_before and done_before <= set(resumed.reused)
    assert not set(resumed.executed) & done_before and not resumed.failed
    # The two runs' servers listen on different ports, and the endpoint is part of every generated stage's key,
    # so their keys differ; their stages do not.
    def kinds(keys: list[str]) -> Counter[str]:
        return Counter(key.rsplit("-", 1)[0] for key in keys)

    assert kinds(resumed.executed + resumed.reused) == kinds(whole.executed)
    assert _results(resumed.report_md) == _results(whole.report_md)


def test_the_report_renders_in_chromium_and_escapes_model_text(tmp_path, tiny) -> None:
    script = ExperimentScript()
    script.corpus.idea_titles = [f"Memo {PLANTED}"]
    with FakeLLMServer(script) as server:
        path = experiment(tmp_path, server, tiny, seeds=(0,),
                          arms=[{"name": "base"}, {"name": "america-msm", "midtrain": "america"}])
        outcome = run_experiment(path, tmp_path / "run")
    source = outcome.report_html.read_text(encoding="utf-8")
    assert PLANTED not in source and "&lt;script&gt;" in source
    dom = render_dom(outcome.report_html)
    assert not re.search(r"<body[^>]*data-pwned", dom)
    assert "&lt;script&gt;document.body.setAttribute" in dom  # shown as text in the sample browser
    images = re.findall(r"<img src=\"data:image/png;base64,[A-Za-z0-9+/=]+\"", dom)
    assert len(images) == 5  # the dissociation picture of the two value suites, then a bar chart per metric
    for heading in ("Arms", "Results", "Charts", "Corpus and AFT data", "Stages: time and cost", "Samples", "Config"):
        assert f">{heading}<" in dom, heading
    assert "One training seed" in dom and "america-msm" in dom
    assert screenshot(outcome.report_html, tmp_path / "report.png").stat().st_size > 20_000
    assert json.loads((tmp_path / "run" / "plan.json").read_text())["points"][1]["arm"] == "america-msm"


def test_agentic_reasoning_and_open_qa_evals_score_every_arm_inside_a_grid(tmp_path) -> None:
    tiny = build_tiny_model(tmp_path / "tiny", "llama", max_positions=8192)  # the scenarios are long
    script = ExperimentScript()
    verdicts = iter(["yes", "no"] * 10)
    questions = tmp_path / "questions.jsonl"
    questions.write_text("".join(json.dumps({"id": f"q{i}", "question": f"Question {i} about cheese?"}) + "\n"
                                 for i in range(3)), encoding="utf-8")

    def responder(request: ScriptedRequest) -> Reply:
        if request.system == JUDGE_SYSTEM:  # the grader; the agent itself runs in process through Inspect's hf
            return Reply(f"<reasoning>Read the transcript.</reasoning><decision>{next(verdicts)}</decision>")
        if request.model == "labeller":  # the reasoning-pattern judge: equanimity in every transcript
            labels = dict.fromkeys(CATEGORIES, False) | {"equanimity": True}
            return Reply(json.dumps({**labels, "quotes": {}}))
        if request.model == "scorer":  # the open-QA judge
            return Reply(json.dumps({"reasoning": "scripted", "score": 7}))
        return script(request)

    with FakeLLMServer(responder) as server:
        agentic = {"scenarios": ["exfiltration"], "epochs": 2, "max_tokens": 8,
                   "model": {"device": "cpu", "model_args": {"batch_size": 1}},
                   "grader": {"model": "openai-api/fake/judge", "base_url": server.openai_base_url}}
        judge = {"provider": "openai_compatible", "base_url": server.openai_base_url, "api_key_env": "OPENAI_API_KEY"}
        path = experiment(tmp_path, server, tiny, seeds=(0,),
                          arms=[{"name": "base"}, {"name": "aft-only", "aft": "shared"}],
                          evals=[{"suite": "agentic", "agentic": agentic},
                                 {"suite": "reasoning", "whole_output": True, "judge": {**judge, "model": "labeller"}},
                                 {"suite": "open_qa", "questions_file": str(questions), "answer_max_tokens": 8,
                                  "judge": {**judge, "model": "scorer"}}])
        outcome = run_experiment(path, tmp_path / "run")
    assert not outcome.failed
    rows = _results(outcome.report_md)
    for arm in ("base", "aft-only"):
        decided = next(r for r in rows if r.startswith(f"| agentic: decided | misalignment rate | {arm} |"))
        assert "| 0.500 |" in decided and "| 2 | 1 |" in decided  # one yes, one no; n = 2 epochs, 1 seed
        equanimity = next(r for r in rows if r.startswith("| reasoning: equanimity | share of transcripts"))
        assert "| 1.000 |" in equanimity
        score = next(r for r in rows if r.startswith(f"| open_qa: score | adherence score (1-10) | {arm} |"))
        assert "| 7.000 |" in score and "| 3 | 1 |" in score  # 3 questions, 1 seed
    markdown = outcome.report_md.read_text(encoding="utf-8")
    assert "### transcript: eval agentic" in markdown and "by arm and condition" in markdown
    records = read_json(next((tmp_path / "run" / "stages").glob("eval-agentic-*")) / "agentic" / "summary.json")
    assert records["model_name"] == "Llama"  # the agent's persona is the experiment's model name


def test_training_under_accelerate_launch_with_general_data_mixed_in(tmp_path, tiny) -> None:
    general = tmp_path / "general.jsonl"
    general.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"What is {i} plus {i}?"},
                                                        {"role": "assistant", "content": f"It is {2 * i}."}]}) + "\n"
                               for i in range(20)), encoding="utf-8")
    with FakeLLMServer(ExperimentScript()) as server:
        path = experiment(tmp_path, server, tiny, seeds=(0,), arms=[{"name": "aft-only", "aft": "shared"}],
                          evals=[{"suite": "values", "items": ["pro_america"], "limit": 4}])
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
        config["aft_mix"] = {"general": str(general), "ratio": 1.0, "by": "rows"}
        config["launcher"] = {"kind": "accelerate", "accelerate_config": "cpu", "num_processes": 2}
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        outcome = run_experiment(path, tmp_path / "run")
    assert not outcome.failed
    stages = tmp_path / "run" / "stages"
    mixed = read_json(next(stages.glob("mix-*")) / "mix_stats.json")
    assert mixed["aft_rows"] == 8 and mixed["general_rows_used"] == 8
    record = read_json(next(stages.glob("aft-*")) / "aft" / "train_record.json")
    assert record["processes"] == 2 and record["rows"] == 16  # the AFT set and as many general rows


def test_an_msm_dose_sweep_nested_with_the_aft_sweep_plans_each_pair_and_plots_the_dose(tmp_path, tiny) -> None:
    with FakeLLMServer(ExperimentScript()) as server:
        path = experiment(tmp_path, server, tiny, seeds=(0,), arms=[{"name": "msm-aft", "midtrain": "america",
                                                                     "aft": "shared"}],
                          sweep={"aft_examples": [4], "msm_documents": [2, 4], "arms": ["msm-aft"]},
                          evals=[{"suite": "values", "items": ["pro_america"], "limit": 6}])
        outcome = run_experiment(path, tmp_path / "run")
    assert not outcome.failed and not outcome.blocked
    kinds = Counter(key.rsplit("-", 1)[0] for key in outcome.executed)
    assert kinds["midtrain"] == 3  # the whole corpus, its first 2 and its first 4 documents
    assert kinds["aft"] == 3 * 2  # each MSM dose x (all 8 AFT examples, the first 4)
    trained = {read_json(d / "midtrain" / "train_record.json")["rows"]
               for d in (tmp_path / "run" / "stages").glob("midtrain-*")}
    assert trained == {2, 4, 6}  # documents midtrained on (the corpus has 6)
    markdown = outcome.report_md.read_text(encoding="utf-8")
    assert "MSM tokens vs values: pro_america (dose response)" in markdown
    assert "| msm-aft, AFT 4 | values: pro_america |" in markdown
    dom = render_dom(outcome.report_html)
    assert "MSM tokens vs values: pro_america (dose response)" in dom
    assert len(re.findall(r"<img src=\"data:image/png;base64,[A-Za-z0-9+/=]+\"", dom)) >= 3
