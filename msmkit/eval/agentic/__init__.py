"""Agentic misalignment through Inspect AI: inspect_evals' blackmail / leaking / murder scenarios and our own
exfiltration scenario, the agent named after the model, each transcript scored as *decided* (LLM grader: the
paper's number) and *executed* (plus a deterministic tool-call check), with grader accountability.

    from msmkit.eval.agentic import AgenticConfig, ModelRef, run_agentic
    summary = run_agentic(AgenticConfig(model=ModelRef(model="embedded"), grid="paper", model_name="Gemma"), "runs/am")
    drivers = run_agentic_reasoning("runs/am", judge_llm_config, "runs/am")   # CoT drivers on the same transcripts
"""

from msmkit.eval.agentic.conditions import Condition, build_grid, is_paper_grid, paper_conditions
from msmkit.eval.agentic.drivers import run_agentic_reasoning
from msmkit.eval.agentic.intervals import clustered_rate, cohen_kappa
from msmkit.eval.agentic.models import ModelRef
from msmkit.eval.agentic.runner import AgenticConfig, run_agentic

__all__ = ["AgenticConfig", "Condition", "ModelRef", "build_grid", "clustered_rate", "cohen_kappa", "is_paper_grid",
           "paper_conditions", "run_agentic", "run_agentic_reasoning"]
