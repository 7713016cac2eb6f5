"""Agentic misalignment through Inspect AI: the published blackmail / leaking / murder task and our own
exfiltration task, each scored as *decided* (LLM judge) and *executed* (deterministic tool-call check).

    from msmkit.eval.agentic import AgenticConfig, ModelRef, run_agentic
    summary = run_agentic(AgenticConfig(model=ModelRef(model="embedded")), "runs/am")
"""

from msmkit.eval.agentic.conditions import Condition, build_grid
from msmkit.eval.agentic.models import ModelRef
from msmkit.eval.agentic.runner import AgenticConfig, run_agentic

__all__ = ["AgenticConfig", "Condition", "ModelRef", "build_grid", "run_agentic"]
