"""`provider: vllm` without a vLLM install: the server's command line, its answer identity, and the errors a user
sees when vLLM is missing, cannot start, or is given a base_url. (tests/vllm runs it against the real server.)"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from msmkit.llm.client import LLMCallFailed, LLMClient
from msmkit.llm.failures import FailureKind
from msmkit.llm.pricing import price_for
from msmkit.llm.types import LLMConfig, LLMRequest
from msmkit.llm.vllm_server import served_model, server_arguments
from msmkit.llm.vllm_settings import VLLMSettings
from msmkit.models.tiny import tiny_model_dir


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model_dir(tmp_path_factory.getbasetemp() / "tiny-models")


@pytest.fixture(scope="module")
def adapter(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("adapter") / "my-adapter"
    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny),
                           LoraConfig(r=64, lora_alpha=128, target_modules=["q_proj", "v_proj"]))
    model.save_pretrained(out)
    return out


def ask(config: LLMConfig) -> LLMCallFailed:
    async def run() -> LLMCallFailed:
        async with LLMClient(config) as client:
            result = (await client.complete_many([LLMRequest.of("Hi", max_tokens=4)]))[0]
        assert isinstance(result, LLMCallFailed), result
        return result
    return asyncio.run(run())


def test_an_adapter_is_served_with_lora_at_its_own_rank(tiny: Path, adapter: Path) -> None:
    served = served_model(str(adapter))
    assert served.base == str(tiny) and served.adapter == str(adapter) and served.name == "my-adapter"
    settings = VLLMSettings(tensor_parallel_size=2, gpu_memory_utilization=0.45, extra_args=["--max-num-seqs", "64"])
    args = server_arguments(served, settings, port=8123, context_window=2048, template_file=None)
    pairs = dict(zip(args, args[1:]))
    assert pairs["--model"] == str(tiny) and pairs["--port"] == "8123" and pairs["--host"] == "127.0.0.1"
    assert pairs["--tensor-parallel-size"] == "2" and pairs["--gpu-memory-utilization"] == "0.45"
    assert pairs["--max-model-len"] == "2048" and pairs["--lora-modules"] == f"my-adapter={adapter}"
    assert pairs["--max-lora-rank"] == "64"  # vLLM's default of 16 would refuse the paper's r=64
    assert "--enable-lora" in args and args[-2:] == ["--max-num-seqs", "64"]
    plain = server_arguments(served_model(str(tiny)), VLLMSettings(max_model_len=512), port=1, context_window=2048,
                             template_file=None)
    assert "--enable-lora" not in plain and dict(zip(plain, plain[1:]))["--max-model-len"] == "512"


def test_the_identity_is_the_served_weights_not_the_server(tiny: Path, adapter: Path, tmp_path: Path) -> None:
    config = LLMConfig(provider="vllm", model=str(tiny), vllm=VLLMSettings(max_model_len=512))
    identity = config.answer_identity()
    assert identity["weights"] == LLMConfig(provider="local", model=str(tiny)).answer_identity()["weights"]
    assert "endpoint" not in identity and identity["context_window"] == 512 and identity["dtype"] == "auto"
    running = config.model_copy(update={"vllm": VLLMSettings(max_model_len=512, port=9000, tensor_parallel_size=4,
                                                             gpu_memory_utilization=0.3, enforce_eager=True)})
    assert running.answer_identity() == identity
    assert LLMConfig(provider="vllm", model=str(adapter)).answer_identity()["weights"]["adapter"] is not None
    assert price_for(config) is None and config.endpoint() is None


def test_a_missing_vllm_interpreter_says_how_to_install_it(tiny: Path, tmp_path: Path) -> None:
    config = LLMConfig(provider="vllm", model=str(tiny), max_retries=0,
                       vllm=VLLMSettings(python=str(tmp_path / "no-venv" / "bin" / "python")),
                       cache_path=str(tmp_path / "cache.sqlite"))
    failed = ask(config)
    assert failed.cause.kind is FailureKind.LOCAL_MODEL and "scripts/install_vllm.sh" in failed.cause.message


def test_a_server_that_exits_at_start_is_reported_with_its_log(tiny: Path, tmp_path: Path) -> None:
    # This interpreter has no vLLM: the server process starts, fails at its import, and the cause is quoted.
    config = LLMConfig(provider="vllm", model=str(tiny), max_retries=0, vllm=VLLMSettings(python=sys.executable),
                       cache_path=str(tmp_path / "cache.sqlite"))
    failed = ask(config)
    assert failed.cause.kind is FailureKind.LOCAL_MODEL and failed.attempts == 1
    assert "exited with status 1 before it was ready" in failed.cause.message
    assert "No module named 'vllm'" in failed.cause.message and "scripts/install_vllm.sh" in failed.cause.message


def test_provider_vllm_takes_no_base_url(tiny: Path, tmp_path: Path) -> None:
    failed = ask(LLMConfig(provider="vllm", model=str(tiny), base_url="http://127.0.0.1:8000/v1",
                           cache_path=str(tmp_path / "cache.sqlite")))
    assert failed.cause.kind is FailureKind.CONFIG and "openai_compatible" in failed.cause.message
