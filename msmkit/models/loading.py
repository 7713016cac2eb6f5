"""Load any causal language model the toolkit uses, from disk only (nothing is ever downloaded).

`model` may be "embedded" (the packaged Gemma 3 270M base), a local Hugging Face folder, a folder
holding a PEFT adapter (its base model is found through adapter_config.json and loaded first), a
hub name already in the local Hugging Face cache, or an `hf:OWNER/NAME@REVISION` reference (msmkit.hub;
resolved from the cache, never downloaded here). An explicit `adapter` takes the same forms and is applied
with PEFT.

An adapter or checkpoint folder that carries its own chat template (chat_template.jinja, else
tokenizer_config.json's chat_template, else chat_template.json) is prompted with that template, never a
substitute: it replaces whatever the base tokenizer brings. `load_model` returns the template with its
sha256 so callers can record it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from msmkit.errors import MsmError
from msmkit.hub import ArtifactNotCachedError, is_hub_ref, resolve_model_path
from msmkit.models.embedded import EMBEDDED, embedded_model_dir

logger = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"
TEMPLATE_FILE = "chat_template.jinja"
_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
           "float16": torch.float16, "fp16": torch.float16}


class ModelNotFoundError(MsmError):
    """The named model (or adapter) is not on this machine, or its folder cannot be loaded."""


@dataclass(frozen=True)
class ChatTemplateInfo:
    """The chat template a loaded model is prompted with, where it came from, and its sha256."""

    text: str
    origin: str  # the file it was read from, or "tokenizer of LOCATION"
    kind: Literal["adapter", "checkpoint", "tokenizer"]  # adapter/checkpoint: the folder's own template
    sha256: str

    @classmethod
    def of(cls, text: str, origin: str, kind: Literal["adapter", "checkpoint", "tokenizer"]) -> ChatTemplateInfo:
        return cls(text, origin, kind, hashlib.sha256(text.encode("utf-8")).hexdigest())

    @property
    def own(self) -> bool:
        """True when the adapter or checkpoint folder carries this template itself."""
        return self.kind != "tokenizer"

    def record(self) -> dict[str, str]:
        return {"origin": self.origin, "kind": self.kind, "sha256": self.sha256}


@dataclass(frozen=True)
class ModelSource:
    """Where the weights come from: a base model (folder or cached hub name) and an optional adapter."""

    base: str  # a folder path or a hub name present in the local cache
    adapter: str | None = None
    tokenizer: str | None = None  # where to read the tokenizer; None = from the base
    own_template: ChatTemplateInfo | None = None  # the adapter's (or checkpoint folder's) own chat template


@dataclass
class LoadedModel:
    model: Any
    tokenizer: PreTrainedTokenizerBase
    source: ModelSource
    chat_template: ChatTemplateInfo | None  # what apply_chat_template will use; None = no template


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype(dtype: torch.dtype | str | None, device: str) -> torch.dtype:
    """float32 on CPU, bfloat16 on CUDA unless told otherwise ("bf16", "float32", a torch.dtype ...)."""
    if dtype is None or dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return _DTYPES[dtype.lower()]
    except KeyError:
        raise MsmError(f"unknown dtype {dtype!r}; use one of {', '.join(sorted(_DTYPES))}") from None


def load_causal_lm(model: str, *, adapter: str | None = None, dtype: torch.dtype | str | None = None,
                   device: str | None = None, trainable_adapter: bool = False,
                   merge_adapter: bool = False) -> tuple[Any, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer (pad token set, left padding for generation).

    `trainable_adapter` keeps adapter weights trainable (to continue training it, e.g. AFT after MSM);
    `merge_adapter` folds the adapter into the base weights for faster inference. `load_model` is the same
    and also says which chat template the tokenizer carries (and its sha256).
    """
    loaded = load_model(model, adapter=adapter, dtype=dtype, device=device, trainable_adapter=trainable_adapter,
                        merge_adapter=merge_adapter)
    return loaded.model, loaded.tokenizer


def load_model(model: str, *, adapter: str | None = None, dtype: torch.dtype | str | None = None,
               device: str | None = None, trainable_adapter: bool = False, merge_adapter: bool = False) -> LoadedModel:
    """`load_causal_lm`, returning the model, tokenizer, where they came from and the chat template in force."""
    device = device or default_device()
    torch_dtype = resolve_dtype(dtype, device)
    source = resolve_model_source(model, adapter)
    tokenizer = _load_tokenizer(source.tokenizer or source.base, model)
    template = _apply_own_template(tokenizer, source)
    logger.info("loading %s (%s, %s)%s", source.base, device, torch_dtype,
                f" with adapter {source.adapter}" if source.adapter else "")
    try:
        lm: Any = AutoModelForCausalLM.from_pretrained(_weights_folder(source.base), dtype=torch_dtype,
                                                       local_files_only=True)
    except OSError as exc:
        raise ModelNotFoundError(f"cannot load model weights from {source.base} (for {model!r}): {exc}") from exc
    if source.adapter:
        lm = _apply_adapter(lm, tokenizer, source.adapter, trainable=trainable_adapter, merge=merge_adapter)
    lm.to(device)
    _prepare_padding(lm, tokenizer)
    return LoadedModel(lm, tokenizer, source, template)


def resolve_model_source(model: str, adapter: str | None = None) -> ModelSource:
    """Work out base model, adapter, tokenizer and own chat template without loading any weights."""
    base, own_adapter = _resolve_one(model)
    if own_adapter and adapter:
        raise MsmError(f"{model!r} is itself a PEFT adapter; pass its base model as `model` to add "
                       f"the adapter {adapter!r}, or load one adapter at a time")
    adapter_location = own_adapter
    if adapter:
        adapter_location = _resolve_adapter(adapter)
    tokenizer = adapter_location if adapter_location and _has_tokenizer(adapter_location) else None
    if adapter_location:
        own = find_chat_template(adapter_location, "adapter")
    else:
        own = find_chat_template(base, "checkpoint") if Path(base).is_dir() else None
    return ModelSource(base=base, adapter=adapter_location, tokenizer=tokenizer, own_template=own)


def own_chat_template(model: str, adapter: str | None = None) -> ChatTemplateInfo | None:
    """The chat template the adapter (or checkpoint folder) carries itself, or None. Loads no weights."""
    return resolve_model_source(model, adapter).own_template


def find_chat_template(location: str, kind: Literal["adapter", "checkpoint"]) -> ChatTemplateInfo | None:
    """A folder's (or cached hub repo's) own chat template: chat_template.jinja, then tokenizer_config.json's
    chat_template, then chat_template.json. None when it carries none."""
    folder = Path(location).expanduser()

    def read(name: str) -> tuple[str, str] | None:
        if folder.is_dir():
            path = folder / name
            return (path.read_text(encoding="utf-8"), str(path)) if path.is_file() else None
        cached = _cached_file(location, name)
        return (Path(cached).read_text(encoding="utf-8"), f"{location}/{name}") if cached else None

    found = read(TEMPLATE_FILE)
    if found:
        return ChatTemplateInfo.of(found[0], found[1], kind)
    for name in ("tokenizer_config.json", "chat_template.json"):
        found = read(name)
        if not found:
            continue
        try:
            text = _default_template(json.loads(found[0]).get("chat_template"))
        except (ValueError, AttributeError) as exc:
            raise ModelNotFoundError(f"{found[1]}: not valid JSON ({exc}); cannot read its chat template") from None
        if text:
            return ChatTemplateInfo.of(text, f"{found[1]}:chat_template", kind)
    return None


def _default_template(value: Any) -> str | None:
    """A chat_template value is a string, or a list of {name, template} of which "default" is the one used."""
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, list):
        for entry in value:
            if isinstance(entry, dict) and entry.get("name") == "default" and isinstance(entry.get("template"), str):
                return entry["template"]
    return None


def _apply_own_template(tokenizer: PreTrainedTokenizerBase, source: ModelSource) -> ChatTemplateInfo | None:
    """Put the adapter's or checkpoint's own template on the tokenizer; say which template is in force."""
    if source.own_template is not None:
        tokenizer.chat_template = source.own_template.text
        return source.own_template
    raw = getattr(tokenizer, "chat_template", None)
    current = raw.get("default") if isinstance(raw, dict) else _default_template(raw)
    if not current:
        return None
    return ChatTemplateInfo.of(current, f"tokenizer of {source.tokenizer or source.base}", "tokenizer")


def _resolve_one(model: str) -> tuple[str, str | None]:
    """(base location, adapter location or None) for a model name, folder or adapter folder."""
    if model == EMBEDDED:
        return str(embedded_model_dir()), None
    if is_hub_ref(model):
        return _resolve_one(str(_hub_folder(model)))
    folder = Path(model).expanduser()
    if folder.is_dir():
        if (folder / ADAPTER_CONFIG).is_file():
            base_name = _adapter_base(folder / ADAPTER_CONFIG)
            base, nested = _resolve_one(base_name)
            if nested:
                raise MsmError(f"{folder / ADAPTER_CONFIG}: its base model {base_name!r} is itself an adapter; "
                               "merge the first adapter into its base before stacking another")
            return base, str(folder)
        if not (folder / "config.json").is_file():
            raise ModelNotFoundError(f"{folder} has neither config.json (a Hugging Face model folder) nor "
                                     f"{ADAPTER_CONFIG} (a PEFT adapter); point `model` at a saved model folder")
        return str(folder), None
    if folder.exists():
        raise ModelNotFoundError(f"{folder} is a file; `model` must be a model folder, a cached hub name or "
                                 f"{EMBEDDED!r}")
    cached_adapter = _cached_file(model, ADAPTER_CONFIG)
    if cached_adapter:
        base, _ = _resolve_one(_adapter_base(Path(cached_adapter)))
        return base, model
    if not _cached_file(model, "config.json"):
        raise ModelNotFoundError(_not_found_message(model))
    return model, None


def _hub_folder(reference: str) -> Path:
    try:
        return resolve_model_path(reference)
    except ArtifactNotCachedError as exc:
        raise ModelNotFoundError(str(exc)) from None


def _resolve_adapter(adapter: str) -> str:
    if is_hub_ref(adapter):
        adapter = str(_hub_folder(adapter))
    folder = Path(adapter).expanduser()
    if folder.is_dir():
        if not (folder / ADAPTER_CONFIG).is_file():
            raise ModelNotFoundError(f"adapter folder {folder} has no {ADAPTER_CONFIG}; point `adapter` at the "
                                     "folder a PEFT training run saved")
        return str(folder)
    if _cached_file(adapter, ADAPTER_CONFIG):
        return adapter
    raise ModelNotFoundError(f"adapter {adapter!r} is neither a folder with {ADAPTER_CONFIG} nor a PEFT adapter "
                             "in the local Hugging Face cache; nothing is downloaded at run time")


def _adapter_base(config_path: Path) -> str:
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
        base = config["base_model_name_or_path"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelNotFoundError(f"{config_path}: cannot read base_model_name_or_path ({exc}); set it to the base "
                                 f"model folder, hub name or {EMBEDDED!r}") from exc
    if not isinstance(base, str) or not base:
        raise ModelNotFoundError(f"{config_path}: base_model_name_or_path is empty; set it to the base model "
                                 f"folder, hub name or {EMBEDDED!r}")
    return base


def _weights_folder(base: str) -> str:
    """The folder on disk holding `base`'s weights: `base` itself, or a cached hub repo's snapshot folder."""
    if Path(base).is_dir():
        return base
    cached_config = _cached_file(base, "config.json")
    return str(Path(cached_config).parent) if cached_config else base


def _cached_file(repo: str, filename: str) -> str | None:
    """Path of `filename` of hub repo `repo` in the local HF cache, or None. Never touches the network."""
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError

    try:
        found = try_to_load_from_cache(repo, filename)
    except HFValidationError:  # not a valid repo id (e.g. a mistyped folder path)
        return None
    return found if isinstance(found, str) else None


def _not_found_message(model: str) -> str:
    return (f"model {model!r} is not a folder on this machine and not in the local Hugging Face cache. "
            "msmkit never downloads weights at run time. Either point `model` at a saved model folder, "
            f"use {EMBEDDED!r} (the packaged Gemma 3 270M base), or fetch the weights once where there is "
            f"network access: `hf download {model}` (they land in the Hugging Face cache, "
            "$HF_HOME/hub, which you can copy to this machine).")


def _has_tokenizer(location: str) -> bool:
    folder = Path(location)
    if folder.is_dir():
        return (folder / "tokenizer_config.json").is_file() or (folder / "tokenizer.json").is_file()
    return _cached_file(location, "tokenizer_config.json") is not None


def _load_tokenizer(location: str, model: str) -> PreTrainedTokenizerBase:
    try:
        return AutoTokenizer.from_pretrained(location, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(f"cannot load a tokenizer from {location} (for {model!r}): {exc}") from exc


def _apply_adapter(lm: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, adapter: str, *, trainable: bool,
                   merge: bool) -> Any:
    from peft import PeftModel

    # Training may have added tokens (e.g. chat markers); the base embeddings must match the adapter's.
    if len(tokenizer) > lm.get_input_embeddings().num_embeddings:
        lm.resize_token_embeddings(len(tokenizer))
    extra = {} if Path(adapter).is_dir() else {"local_files_only": True}
    try:
        peft_model = PeftModel.from_pretrained(lm, adapter, is_trainable=trainable, **extra)
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(f"cannot apply adapter {adapter}: {exc}") from exc
    # PEFT reads the base's config.json when it saves the adapter; give it the weights' folder, not the name the
    # adapter records ("embedded", a hub id), which PEFT would otherwise look up on the hub.
    for config in peft_model.peft_config.values():
        config.base_model_name_or_path = lm.name_or_path
    return peft_model.merge_and_unload() if merge else peft_model


def _prepare_padding(lm: Any, tokenizer: PreTrainedTokenizerBase) -> None:
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token if tokenizer.eos_token is not None else tokenizer.unk_token
    tokenizer.padding_side = "left"  # generation continues every row from its last real token
    generation_config = getattr(lm, "generation_config", None)
    if generation_config is not None and generation_config.pad_token_id is None:
        generation_config.pad_token_id = tokenizer.pad_token_id
