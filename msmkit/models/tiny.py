"""Tiny randomly initialised causal LMs with a real tokenizer, for tests (no download, ~1 s, deterministic).

The tokenizer is a byte-level BPE trained on a short text shipped with the package (tiny_corpus.txt),
so it can encode any string (every byte is in the alphabet) and has the special tokens the rest of the
toolkit relies on: <bos>, <eos>, <pad>, <start_of_turn>, <end_of_turn>. It adds <bos> in front of each
encoded text, like Gemma and Llama tokenizers. No chat template unless one is passed in.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from importlib.resources import files
from pathlib import Path
from typing import Literal

import torch
from filelock import FileLock
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    Gemma3TextConfig,
    LlamaConfig,
    PretrainedConfig,
    PreTrainedTokenizerFast,
    Qwen2Config,
)

Family = Literal["gemma3", "llama", "qwen2"]
FAMILIES: tuple[str, ...] = ("gemma3", "llama", "qwen2")
SPECIAL_TOKENS = ("<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>")  # ids 0..4, in this order
DEFAULT_VOCAB = 512
_BYTE_ALPHABET = 256
MARKER_FILE = "msmkit-tiny.json"


# transformers loads some families' tokenizers with their own class, which insists on its own tokens.
_FAMILY_TOKENS = {"qwen2": ("<|endoftext|>",)}


def build_tiny_tokenizer(vocab: int = DEFAULT_VOCAB, extra_tokens: tuple[str, ...] = ()) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer of exactly `vocab` entries (special tokens included)."""
    specials = [*SPECIAL_TOKENS, *extra_tokens]
    minimum = _BYTE_ALPHABET + len(specials)
    if vocab < minimum:
        raise ValueError(f"vocab={vocab} is too small: a byte-level tokenizer needs at least {minimum} entries")
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), min_frequency=1)
    corpus = files("msmkit.models").joinpath("tiny_corpus.txt").read_text(encoding="utf-8")
    backend.train_from_iterator(corpus.splitlines(keepends=True), trainer=trainer)
    # Merges stop early on a small corpus; pad with unused filler tokens so the size is what was asked.
    missing = vocab - backend.get_vocab_size()
    if missing > 0:
        backend.add_tokens([f"<unused{i}>" for i in range(missing)])
    bos_id = backend.token_to_id("<bos>")
    backend.post_processor = processors.TemplateProcessing(single="<bos> $A", pair="<bos> $A $B",
                                                           special_tokens=[("<bos>", bos_id)])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
        extra_special_tokens=["<start_of_turn>", "<end_of_turn>"], padding_side="left",
        model_max_length=1024,
    )


def tiny_config(family: Family, tokenizer: PreTrainedTokenizerFast, *, max_positions: int = 1024) -> PretrainedConfig:
    """A 2-layer, hidden-64 config of the given family whose vocabulary matches `tokenizer`."""
    common = dict(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=max_positions,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True,
    )
    if family == "gemma3":
        return Gemma3TextConfig(**common, query_pre_attn_scalar=16, sliding_window=64,
                                layer_types=["sliding_attention", "full_attention"])
    if family == "llama":
        return LlamaConfig(**common)
    if family == "qwen2":
        return Qwen2Config(**common)
    raise ValueError(f"unknown tiny model family {family!r}; use one of {', '.join(FAMILIES)}")


def build_tiny_model(out_dir: str | Path, family: Family = "gemma3", vocab: int = DEFAULT_VOCAB, *,
                     seed: int = 0, chat_template: str | None = None, max_positions: int = 1024) -> Path:
    """Save a randomly initialised model + tokenizer to `out_dir` (created) and return it.

    Same arguments, same files: weights come from `seed`, the tokenizer from the packaged text.
    """
    out = Path(out_dir)
    tokenizer = build_tiny_tokenizer(vocab, _FAMILY_TOKENS.get(family, ()))
    tokenizer.model_max_length = max_positions
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    config = tiny_config(family, tokenizer, max_positions=max_positions)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    reloaded = AutoTokenizer.from_pretrained(out)
    if len(reloaded) != config.vocab_size:  # e.g. a family tokenizer class that adds tokens of its own
        raise RuntimeError(f"tiny {family} tokenizer reloads with {len(reloaded)} tokens, the model has "
                           f"{config.vocab_size}; add the missing tokens to _FAMILY_TOKENS")
    info = {"family": family, "vocab": vocab, "seed": seed, "chat_template": chat_template is not None}
    (out / MARKER_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return out


def tiny_model_dir(root: str | Path, family: Family = "gemma3", vocab: int = DEFAULT_VOCAB, *,
                   seed: int = 0) -> Path:
    """A tiny model under `root`, built once and reused (safe across processes: lock + atomic rename).

    Meant for session-scoped pytest fixtures:
    `tiny_model_dir(tmp_path_factory.getbasetemp() / "tiny-models")`.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    target = root / f"tiny-{family}-v{vocab}-s{seed}"
    if (target / MARKER_FILE).is_file():
        return target
    with FileLock(str(root / f"{target.name}.lock")):
        if (target / MARKER_FILE).is_file():
            return target
        shutil.rmtree(target, ignore_errors=True)
        work = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=root))
        try:
            built = build_tiny_model(work / "model", family, vocab, seed=seed)
            built.rename(target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target
