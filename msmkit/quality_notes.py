"""What the embedded default and base-model generators can and cannot show: one wording, used by every stage,
command and report that touches them."""

from __future__ import annotations

from msmkit.llm.types import LLMConfig
from msmkit.models.embedded import EMBEDDED

EMBEDDED_DEFAULT_NOTE = (
    "Made with the embedded default, Gemma 3 270M base, on a CPU. A 270M base model cannot follow instructions, "
    "write documents or demonstrations that faithfully explain a spec, judge anything, or show the MSM effect "
    "(replications saw it from 4B parameters up): these outputs show that the pipeline runs end to end and what its "
    "files look like, not what MSM does. For real data and results use a strong API model or a large model behind "
    "vLLM (README: 'Reproducing the paper'; `msm run CONFIG --preview` prints the cost first).")
BASE_MODEL_NOTE = (
    "A base model was prompted in completion style here: its text follows the spec only as far as it continues the "
    "prompt faithfully. Read a sample before training on it.")


def is_embedded(llm: LLMConfig) -> bool:
    return llm.provider == "local" and llm.model == EMBEDDED


def generation_note(*llms: LLMConfig | None) -> str | None:
    """The note a generated dataset carries, given the models that wrote and judged it."""
    used = [llm for llm in llms if llm is not None]
    if any(is_embedded(llm) for llm in used):
        return EMBEDDED_DEFAULT_NOTE
    return BASE_MODEL_NOTE if any(llm.is_base_model for llm in used) else None
