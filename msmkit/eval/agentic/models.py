"""Turn a model reference into an Inspect model: embedded default, local folder, base + PEFT adapter,
OpenAI-compatible server (vLLM), Anthropic or OpenAI.

- "embedded": the packaged Gemma 3 270M base (its converted safetensors folder), via Inspect's `hf` provider.
- a folder with config.json: a local checkpoint, via `hf`.
- a folder with adapter_config.json, or `adapter=`: the adapter is merged into its base once and kept in
  `<cache>/merged/<hash of the adapter's bytes + the base's files, sizes and mtimes>` (Inspect's hf provider
  cannot load PEFT adapters).
- an Inspect model name ("anthropic/claude-...", "openai/gpt-...", "openai-api/<service>/<model>", "vllm/..."),
  passed through; with `base_url` and no provider prefix, "openai-api/msm/<model>" (any OpenAI-compatible server).
API keys are read from the environment variable named by `api_key_env` and never written anywhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from filelock import FileLock

from msmkit.config import StrictModel
from msmkit.errors import ConfigError
from msmkit.paths import cache_dir
from msmkit.secrets import get_secret

ADAPTER_CONFIG = "adapter_config.json"
MERGE_MARKER = "msmkit-merged.json"

# Base models have no chat template; Inspect's hf provider would then write "role: content" lines with no
# open assistant turn. This renders the conversation the way msmkit prompts base models (completion style).
BASE_MODEL_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] | trim }}\n\n"
    "{% elif message['role'] == 'user' %}User: {{ message['content'] | trim }}\n\n"
    "{% else %}Assistant: {{ message['content'] | trim }}\n\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)


class ModelRef(StrictModel):
    """Which model to evaluate (or to grade with)."""

    model: str = "embedded"
    adapter: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    device: str | None = None  # hf provider only; default: cuda if available, else cpu
    model_args: dict[str, Any] = {}  # passed to Inspect's provider (e.g. {"batch_size": 4})

    def describe(self) -> str:
        parts = [self.model]
        if self.adapter:
            parts.append(f"+ adapter {self.adapter}")
        if self.base_url:
            parts.append(f"@ {self.base_url}")
        return " ".join(parts)


def _fingerprint(folder: Path) -> str:
    """Cheap identity of a (possibly huge) base checkpoint: resolved path, file names, sizes, mtimes."""
    digest = hashlib.sha256(str(folder.resolve()).encode())
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(folder)}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    return digest.hexdigest()


def _tree_hash(folder: Path) -> str:
    """Content hash (adapters are small: hash every byte)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def merged_checkpoint(base: str, adapter: str) -> Path:
    """Merge a PEFT adapter into its base model once; later calls reuse the cached folder."""
    from msmkit.models.loading import load_causal_lm

    adapter_dir = Path(adapter)
    if not (adapter_dir / ADAPTER_CONFIG).is_file():
        raise ConfigError(f"adapter folder {adapter} has no {ADAPTER_CONFIG}: pass a PEFT adapter folder")
    base_key = _fingerprint(Path(base)) if Path(base).is_dir() else base
    key = hashlib.sha256(f"{base_key}\0{_tree_hash(adapter_dir)}".encode()).hexdigest()[:24]
    root = cache_dir() / "merged"
    target = root / key
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / f"{key}.lock")):
        if (target / MERGE_MARKER).is_file():
            return target
        shutil.rmtree(target, ignore_errors=True)
        work = Path(tempfile.mkdtemp(prefix=f".{key}.tmp-", dir=root))
        try:
            lm, tokenizer = load_causal_lm(base, adapter=str(adapter_dir), merge_adapter=True, device="cpu")
            lm.save_pretrained(work)
            tokenizer.save_pretrained(work)
            marker = {"base": base, "adapter": str(adapter_dir.resolve())}
            (work / MERGE_MARKER).write_text(json.dumps(marker) + "\n", encoding="utf-8")
            os.rename(work, target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target


def is_local(ref: ModelRef) -> bool:
    """True when `ref` runs in process through Inspect's hf provider."""
    return ref.model == "embedded" or Path(ref.model).is_dir()


def _local_folder(ref: ModelRef) -> Path | None:
    """The folder to load with the hf provider, merging an adapter first; None for API models."""
    from msmkit.models.embedded import EMBEDDED, embedded_model_dir

    if ref.model == EMBEDDED:
        base = str(embedded_model_dir())
    elif Path(ref.model).is_dir():
        base = ref.model
    else:
        if ref.adapter:
            raise ConfigError(f"adapter {ref.adapter} given with model {ref.model!r}, which is not a local folder "
                              "or 'embedded'; for a served model load the adapter in the server (vLLM --lora-modules)")
        return None
    if (Path(base) / ADAPTER_CONFIG).is_file() and not ref.adapter:
        from msmkit.models.loading import resolve_model_source

        source = resolve_model_source(base)
        return merged_checkpoint(source.base, source.adapter or base)
    if ref.adapter:
        return merged_checkpoint(base, ref.adapter)
    return Path(base)


def inspect_model_args(ref: ModelRef) -> tuple[str, dict[str, Any]]:
    """(Inspect model name, keyword arguments for `inspect_ai.model.get_model`)."""
    folder = _local_folder(ref)
    if folder is not None:
        args: dict[str, Any] = {"model_path": str(folder), "tokenizer_path": str(folder), **ref.model_args}
        if ref.device:
            args["device"] = ref.device
        if not _has_chat_template(folder):
            args.setdefault("chat_template", BASE_MODEL_CHAT_TEMPLATE)
        return f"hf/{folder.name}", args
    name = ref.model
    if ref.base_url and "/" not in name:
        name = f"openai-api/msm/{name}"
    if "/" not in name:
        raise ConfigError(f"model {ref.model!r} is not 'embedded', a local folder, or an Inspect model name such as "
                          "'anthropic/claude-sonnet-4-6', 'openai/gpt-4o' or 'openai-api/vllm/<name>' "
                          "(with --base-url)")
    args = dict(ref.model_args)
    if ref.base_url:
        args["base_url"] = ref.base_url
    if ref.api_key_env:
        key = get_secret(ref.api_key_env)
        if not key:
            raise ConfigError(f"environment variable {ref.api_key_env} (api_key_env of model {ref.model!r}) is not set")
        args["api_key"] = key
    elif name.startswith("openai-api/") and ref.base_url:
        service = name.split("/")[1].upper().replace("-", "_")
        # local servers (vLLM without --api-key) accept any key; Inspect still insists on one
        args["api_key"] = os.environ.get(f"{service}_API_KEY") or "unused"
    return name, args


def _has_chat_template(folder: Path) -> bool:
    config = folder / "tokenizer_config.json"
    return (folder / "chat_template.jinja").is_file() or (
        config.is_file() and '"chat_template"' in config.read_text(encoding="utf-8"))


def _register_local_model_info(name: str, folder: Path) -> None:
    """Tell Inspect the context window of a local checkpoint. Without this, Inspect's model-info lookup falls
    back to instantiating `hf/<name>` as a *hub* model, which reaches for huggingface.co."""
    from inspect_ai.model import ModelInfo, set_model_info

    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    text = config.get("text_config") or config
    info = ModelInfo(context_length=text.get("max_position_embeddings"), organization="local checkpoint")
    for key in (name, name.split("/", 1)[1]):
        set_model_info(key, info)


def get_inspect_model(ref: ModelRef, **config: Any):
    """An Inspect Model for `ref`; `config` goes into its GenerateConfig."""
    from inspect_ai.model import GenerateConfig, get_model

    name, args = inspect_model_args(ref)
    if "model_path" in args:
        # local weights only: nothing may be downloaded at run time
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        _register_local_model_info(name, Path(args["model_path"]))
    return get_model(name, config=GenerateConfig(**config), **args)
