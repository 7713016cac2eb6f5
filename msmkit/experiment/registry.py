"""Every stage kind an experiment can plan, by name. Adding a kind: write its module in msmkit/stages/
(a job, an outputs class, a kind with run and estimate) and list it here; an eval kind also brings the
settings model of its `evals:` entries, which joins the experiment config's choices by its `suite`."""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Field

from msmkit.stages.aft_data import AFT_DATA
from msmkit.stages.balance import BALANCE
from msmkit.stages.contract import EvalStageKind, StageKind
from msmkit.stages.corpus import CORPUS
from msmkit.stages.eval_agentic import AGENTIC_EVAL
from msmkit.stages.eval_capability import CAPABILITY_EVAL
from msmkit.stages.eval_open_qa import OPEN_QA_EVAL
from msmkit.stages.eval_reasoning import REASONING_EVAL
from msmkit.stages.eval_values import VALUES_EVAL
from msmkit.stages.mix import MIX
from msmkit.stages.neutral import NEUTRAL
from msmkit.stages.training import AFT, MIDTRAIN
from msmkit.stages.variant import VARIANT

EVAL_KINDS: dict[str, EvalStageKind] = {kind.suite(): kind for kind in (VALUES_EVAL, CAPABILITY_EVAL, AGENTIC_EVAL,
                                                                         OPEN_QA_EVAL, REASONING_EVAL)}
STAGE_KINDS: dict[str, StageKind] = {kind.name: kind for kind in (
    VARIANT, CORPUS, BALANCE, NEUTRAL, AFT_DATA, MIX, MIDTRAIN, AFT, *EVAL_KINDS.values())}
# One `evals:` entry: the settings model of the suite it names.
EvalSettings = Annotated[Union[tuple(kind.settings_model for kind in EVAL_KINDS.values())],  # type: ignore[misc]
                         Field(discriminator="suite")]


def eval_kind(settings: Any) -> EvalStageKind:
    return EVAL_KINDS[settings.suite]
