"""How an experiment's evals run the model they evaluate when it must write text (open questions, the agentic
scenarios): in the stage's own process through transformers (`local`, the default), or on a vLLM server started
for the stage (`vllm`), which serves a trained LoRA adapter beside its base (--lora-modules) or a full checkpoint.

The forced-choice evals (values, capability) score options with the model's own logits and always run locally.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Literal

from pydantic import Field

from msmkit.config import StrictModel
from msmkit.llm.types import LLMConfig
from msmkit.llm.vllm_settings import VLLMSettings


class EvalEngine(StrictModel):
    kind: Literal["local", "vllm"] = Field("local", description=(
        "local: transformers in the eval stage's process; vllm: a vLLM server per eval stage (model or adapter), "
        "for large models and many samples on GPUs"))
    vllm: VLLMSettings = Field(default_factory=VLLMSettings, description=(
        "the server started for each eval stage (kind vllm): tensor parallel size, GPU memory share, ..."))
    concurrency: int = Field(64, ge=1, description="requests in flight to that server (kind vllm)")

    def identity(self) -> dict[str, Any] | None:
        """What of the engine changes the answers, for the stage key; None for `local`, so the keys of runs made
        before engines could be chosen stay as they were."""
        if self.kind == "local":
            return None
        return {"kind": self.kind, "dtype": self.vllm.dtype, "max_model_len": self.vllm.max_model_len,
                "seeded": self.vllm.seeded}

    def gpus(self) -> int:
        """GPUs one eval stage's server takes (0: the engine asks for none beyond the stage's own)."""
        return self.vllm.tensor_parallel_size if self.kind == "vllm" else 0

    def llm_config(self, model: str, *, base_model: bool) -> LLMConfig:
        """The evaluated model as an LLM config: `model` is a folder, an adapter folder or `embedded`."""
        if self.kind == "local":
            return LLMConfig(provider="local", model=model, base_model=base_model)
        return LLMConfig(provider="vllm", model=model, base_model=base_model, vllm=self.vllm,
                         concurrency=self.concurrency)

    @contextlib.contextmanager
    def served(self, model: str) -> Iterator[tuple[str, str]]:
        """(model name, OpenAI-compatible base URL) of a ready vLLM server for `model`, stopped afterwards (kind
        vllm only). A model with no chat template of its own is served with msmkit's base-model template."""
        from msmkit.eval.agentic.models import BASE_MODEL_CHAT_TEMPLATE
        from msmkit.llm.vllm_server import lease_server

        if self.kind != "vllm":
            raise ValueError("EvalEngine.served is for kind vllm")
        lease = lease_server(model, self.vllm, fallback_chat_template=BASE_MODEL_CHAT_TEMPLATE)
        try:
            lease.wait_ready()
            yield lease.model_name, lease.server.base_url
        finally:
            lease.release()
