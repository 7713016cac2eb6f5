"""The generated part of the documentation: every config field, every CLI command and option, every error
message, read from the code at build time so it cannot drift (docs/hooks/reference.py adds the pages).

CONFIG_FILES is the one list of config models the reference starts from: a renamed or moved model is a
one-line change here. Every model nested in them is found by walking their fields. INTERNAL_MODELS names
the StrictModel classes that no user writes (tests check that every other one is reachable from the list).
"""

from __future__ import annotations

import importlib

from pydantic import BaseModel

# (title, where the file or section is read, "module:Class")
CONFIG_FILES: tuple[tuple[str, str, str], ...] = (
    ("Experiment", "`msm run EXPERIMENT.yaml`. The stage sections `corpus`, `neutral`, `aft_data` and `train` take "
     "the fields of the stage configs below; `generator` and `judge` fill the stages' LLM fields unless a section "
     "sets its own. Relative paths are relative to the experiment file.", "msmkit.experiment.config:ExperimentConfig"),
    ("LLM", "Every `generator:`, `judge:` and `model:` block, and the files given to `--judge-config`, "
     "`--model-config`, `--generator-config` and `--llm-config` (top level or under the named section).",
     "msmkit.llm.types:LLMConfig"),
    ("Corpus", "`msm generate corpus --config FILE` (fields at top level or under `corpus:`), and an experiment's "
     "`corpus:` section.", "msmkit.generate.corpus.config:CorpusConfig"),
    ("AFT data", "`msm generate aft | deliberative | anti-spec --config FILE` (fields at top level or under "
     "`aft:`), and an experiment's `aft_data:` section.", "msmkit.generate.aft.config:AftDataConfig"),
    ("Neutral corpus", "`msm generate neutral --config FILE` (fields at top level or under `neutral:`), and an "
     "experiment's `neutral:` section.", "msmkit.generate.baselines.neutral:NeutralConfig"),
    ("Training", "`msm train --config FILE` (`midtrain:` and `aft:` sections; `msm train midtrain|aft` read their "
     "own), and an experiment's `train:` section. Defaults are the paper's recipe.", "msmkit.train.config:TrainConfig"),
    ("Agentic evaluation", "`msm eval agentic --config FILE` (fields at top level or under `agentic:`); in an "
     "experiment, the `agentic:` mapping of an `evals:` entry with `suite: agentic` (without `model`: the arm "
     "decides).", "msmkit.eval.agentic.runner:AgenticConfig"),
    ("Fake server script", "`msm llm serve-fake --script FILE`: scripted answers for dry runs.",
     "msmkit.testing.responders:Script"),
)

# StrictModel classes that are not config a user writes, with the reason.
INTERNAL_MODELS: dict[str, str] = {
    "msmkit.eval.open_qa:OpenQAConfig": "built from the options of `msm eval open-qa`",
}


def load_class(path: str) -> type[BaseModel]:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def config_roots() -> list[tuple[str, str, type[BaseModel]]]:
    return [(title, where, load_class(path)) for title, where, path in CONFIG_FILES]


def reference_pages() -> dict[str, str]:
    """Site path -> Markdown of every generated page."""
    from msmkit.reference.cli_page import cli_page
    from msmkit.reference.config_page import config_page
    from msmkit.reference.errors_page import errors_page

    return {"reference/config.md": config_page(config_roots()), "reference/cli.md": cli_page(),
            "reference/errors.md": errors_page()}
