"""The content identity of a local model: digests of the files its weights, config and tokenizer load from.

A model folder (or a Hugging Face cache snapshot) is identified by the sha256 of its files' names and
contents, so a checkpoint retrained at the same path gets a new identity and a copy elsewhere keeps it.
Hashing a multi-gigabyte model takes seconds, so each file's digest is kept (in memory and in
`<cache dir>/file_digests.sqlite`) under its path, size, modification time, change time and inode, and
is recomputed only when one of those changes. Files in a Hugging Face cache are named by their content
hash already (`blobs/<sha>`); that name is used instead of reading them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from msmkit.fingerprint import file_digest

# What a loader reads from a model or adapter folder: weights, configs, tokenizer, chat template.
MODEL_FILE_SUFFIXES = (".safetensors", ".bin", ".json", ".model", ".jinja", ".txt", ".tiktoken", ".gguf")
# Training state saved beside the weights: it changes nothing about the answers.
IGNORED_FILES = frozenset({"training_args.bin", "trainer_state.json", "optimizer.bin", "scheduler.bin"})



def local_weights_identity(model: str) -> dict[str, str | None]:
    """{"base": digest, "adapter": digest or None} of the model `msmkit.models.loading` would load."""
    from msmkit.models.loading import resolve_model_source

    source = resolve_model_source(model)
    return {"base": folder_digest(_folder(source.base)),
            "adapter": folder_digest(_folder(source.adapter)) if source.adapter else None}


def _folder(location: str) -> Path:
    """A model folder, or the snapshot folder of a hub name in the local Hugging Face cache."""
    folder = Path(location).expanduser()
    if folder.is_dir():
        return folder
    from huggingface_hub import try_to_load_from_cache

    for name in ("config.json", "adapter_config.json"):
        found = try_to_load_from_cache(location, name)
        if isinstance(found, str):
            return Path(found).parent
    from msmkit.models.loading import ModelNotFoundError

    raise ModelNotFoundError(f"{location!r} is neither a folder nor a model in the local Hugging Face cache")


def model_files(folder: Path) -> list[Path]:
    """The files of `folder` (not its subfolders, e.g. intermediate checkpoints) a loader may read."""
    return sorted(path for path in folder.iterdir()
                  if path.name.endswith(MODEL_FILE_SUFFIXES) and path.name not in IGNORED_FILES
                  and not path.name.startswith(".") and path.is_file())


def folder_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in model_files(folder):
        digest.update(f"{path.name}\0{file_digest(path)}\n".encode("utf-8"))
    return digest.hexdigest()
