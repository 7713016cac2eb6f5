"""The last loaded model, kept so that several evals of one checkpoint load it once."""

from __future__ import annotations

import gc
from typing import Any


class ModelCache:
    def __init__(self) -> None:
        self._key: str | None = None
        self._loaded: tuple[Any, Any] | None = None

    def get(self, model: str) -> tuple[Any, Any]:
        """(model, tokenizer) of a model folder, adapter folder, cached hub name or 'embedded'."""
        from msmkit.models.loading import load_causal_lm

        if self._key != model:
            self.release()
            self._loaded, self._key = load_causal_lm(model), model
        assert self._loaded is not None
        return self._loaded

    def release(self) -> None:
        """Free the model's memory (before training, or before a tool that loads its own copy)."""
        self._key, self._loaded = None, None
        gc.collect()
