"""What every AFT step shares: the generation context plus the AFT config, spec and prompts."""

from __future__ import annotations

from dataclasses import dataclass

from msmkit.generate.aft.config import AftDataConfig
from msmkit.generate.aft.prompting import AftPrompts
from msmkit.generate.context import GenerationContext
from msmkit.spec import ModelSpec


@dataclass(kw_only=True)
class AftContext(GenerationContext):
    config: AftDataConfig
    spec: ModelSpec
    prompts: AftPrompts
