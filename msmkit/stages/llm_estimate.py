"""Turn projected LLM calls into a stage estimate."""

from __future__ import annotations

from typing import Any, Sequence

from msmkit.llm.projection import CallProjection, project_calls
from msmkit.llm.types import LLMConfig
from msmkit.stages.contract import Estimate

CallGroup = tuple[str, int, float, float, LLMConfig]  # name, calls, input tokens per call, output per call, model


def from_projections(projections: Sequence[CallProjection], **produced: Any) -> Estimate:
    costs = [p.cost_usd for p in projections]
    return Estimate(calls=sum(p.calls for p in projections), input_tokens=sum(p.input_tokens for p in projections),
                    output_tokens=sum(p.output_tokens for p in projections),
                    cost_usd=None if any(c is None for c in costs) else sum(c for c in costs if c is not None),
                    **produced)


def llm_estimate(groups: Sequence[CallGroup], **produced: Any) -> Estimate:
    return from_projections([project_calls(*group) for group in groups], **produced)
