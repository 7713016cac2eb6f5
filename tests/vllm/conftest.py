"""The `vllm` tier: one real vLLM server for the whole test run, serving the converted embedded Gemma 3 270M.

The server is started through msmkit's own `provider: vllm` machinery (msmkit.llm.vllm_server.lease_server), from
the interpreter scripts/install_vllm.sh builds (.venv-vllm, or $MSM_VLLM_PYTHON). It serves one model folder, the
embedded weights with msmkit's default chat template beside them (as a trained checkpoint carries its template),
so chat mode (/v1/chat/completions) and completion mode (`base_model: true`, /v1/completions) share it, plus a
small LoRA adapter of that model (--enable-lora). A test's `provider: vllm` config with the same model and
`SERVER_SETTINGS` finds this server running and uses it instead of starting another.

Without vLLM these tests fail, loudly, never skip: run scripts/install_vllm.sh, or leave the tier out with
`-m "not vllm"`.
"""

from __future__ import annotations

import os
import re
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from msmkit.llm.types import LLMConfig
from msmkit.llm.vllm_server import ServerLease, lease_server, vllm_python
from msmkit.llm.vllm_settings import VLLMSettings

ROOT = Path(__file__).resolve().parents[2]
# Small and quick on 2 CPU cores: eager mode starts in about half the time; 2 GiB of KV cache is ~260k tokens.
SERVER_SETTINGS = VLLMSettings(dtype="bfloat16", max_model_len=8192, enforce_eager=True,
                               environment={"VLLM_CPU_KVCACHE_SPACE": "2"}, startup_timeout_s=900)
CHAT_MODEL_DIR = "gemma3-270m-chat"
ADAPTER_DIR = "gemma3-270m-lora"
_SUCCESS_LINE = re.compile(r"^vllm:request_success_total\{[^}]*\}\s+([0-9.e+]+)$", re.MULTILINE)


@dataclass(frozen=True)
class VLLMTestServer:
    lease: ServerLease
    model_dir: Path  # the served base: embedded weights + chat_template.jinja
    adapter_dir: Path  # a LoRA adapter of it, served beside it

    @property
    def base_url(self) -> str:
        return self.lease.server.base_url

    @property
    def model_name(self) -> str:
        """The base model's name in requests (openai_compatible configs and Inspect)."""
        return self.model_dir.name

    def config(self, **fields: Any) -> LLMConfig:
        """A `provider: vllm` config that this server answers."""
        values: dict[str, Any] = {"provider": "vllm", "model": str(self.model_dir), "vllm": SERVER_SETTINGS,
                                  "concurrency": 16, "max_retries": 1, "retry_base_delay_s": 0.1, **fields}
        return LLMConfig(**values)

    def remote_config(self, **fields: Any) -> LLMConfig:
        """The same server as an already running one (`provider: openai_compatible`)."""
        values: dict[str, Any] = {"provider": "openai_compatible", "model": self.model_name,
                                  "base_url": self.base_url, "concurrency": 16, "max_retries": 1,
                                  "retry_base_delay_s": 0.1, "price": {"input": 0.0, "output": 0.0}, **fields}
        return LLMConfig(**values)

    def finished_requests(self) -> int:
        """Requests the server has answered so far (its Prometheus counter, summed over finish reasons)."""
        with urllib.request.urlopen(f"{self.lease.server.url}/metrics", timeout=10) as response:
            text = response.read().decode()
        return int(sum(float(value) for value in _SUCCESS_LINE.findall(text)))


def _chat_model_folder(embedded: Path, target: Path) -> Path:
    """The embedded weights (linked, not copied) with msmkit's default chat template as the folder's own."""
    from msmkit.train.templates import default_chat_template

    target.mkdir()
    for path in embedded.iterdir():
        if path.is_file() and not path.name.startswith("."):
            (target / path.name).symlink_to(path)
    (target / "chat_template.jinja").write_text(default_chat_template(), encoding="utf-8")
    return target


def _small_lora_adapter(model_dir: Path, target: Path) -> Path:
    """A rank-8 LoRA of the served model whose random weights nudge the model (greedy answers differ) without
    turning it into noise."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    torch.manual_seed(0)
    peft_model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"],
                                                  init_lora_weights=False))
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.mul_(0.05)
    peft_model.save_pretrained(target)
    (target / "README.md").unlink(missing_ok=True)
    return target


@dataclass(frozen=True)
class VLLMModels:
    model_dir: Path
    adapter_dir: Path
    cache: Path  # the session's msmkit cache: the embedded model (linked) and the shared server's log


@pytest.fixture(scope="session")
def vllm_models(tmp_path_factory: pytest.TempPathFactory, shared_models_dir: Path) -> VLLMModels:
    root = tmp_path_factory.mktemp("vllm-tier")
    cache = root / "cache"
    cache.mkdir()
    (cache / "models").symlink_to(shared_models_dir, target_is_directory=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MSM_CACHE_DIR", str(cache))  # where the embedded model is converted, once
        from msmkit.models.embedded import embedded_model_dir

        model_dir = _chat_model_folder(embedded_model_dir(), root / CHAT_MODEL_DIR)
    return VLLMModels(model_dir, _small_lora_adapter(model_dir, root / ADAPTER_DIR), cache)


@pytest.fixture(scope="session")
def vllm_lease(vllm_models: VLLMModels) -> Iterator[ServerLease]:
    """The shared server, started but maybe not ready yet: tests that do not need it run while it loads."""
    python = vllm_python(SERVER_SETTINGS)
    found = subprocess.run([python, "-c", "import importlib.util as u; print(u.find_spec('vllm') is not None)"],
                           capture_output=True, text=True) if Path(python).is_file() else None
    if found is None or found.stdout.strip() != "True":
        pytest.fail(f"vLLM is not installed (looked for {python}): run scripts/install_vllm.sh (vllm-cpu into "
                    ".venv-vllm; scripts/test.sh does), or leave this tier out with -m 'not vllm'", pytrace=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MSM_CACHE_DIR", str(vllm_models.cache))  # its log: <cache>/vllm/server-*.log
        lease = lease_server(str(vllm_models.model_dir), SERVER_SETTINGS,
                             extra_adapters=[str(vllm_models.adapter_dir)])
    try:
        yield lease
    finally:
        lease.release()


@pytest.fixture(scope="session")
def vllm_server(vllm_lease: ServerLease, vllm_models: VLLMModels) -> VLLMTestServer:
    try:
        vllm_lease.wait_ready()
    except Exception as exc:
        pytest.fail(f"the vLLM server did not start: {exc}", pytrace=False)
    return VLLMTestServer(vllm_lease, vllm_models.model_dir, vllm_models.adapter_dir)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Within this tier, tests that do not need the shared server answering run first, while it loads."""
    here = Path(__file__).parent

    def waits_for_server(item: pytest.Item) -> bool:
        return here in Path(str(item.fspath)).parents and "vllm_server" in getattr(item, "fixturenames", ())
    items.sort(key=waits_for_server)  # stable: every other order is kept


@pytest.fixture
def vllm_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment for subprocesses that use the server: this checkout importable, vLLM's interpreter named."""
    python = vllm_python(SERVER_SETTINGS)
    monkeypatch.setenv("MSM_VLLM_PYTHON", python)
    return {**os.environ, "PYTHONPATH": str(ROOT), "MSM_VLLM_PYTHON": python}
