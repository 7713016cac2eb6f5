"""Self-describing run folders: config, versions, prompt hashes, usage and cost, logs, stage outputs."""

from __future__ import annotations

import json
import logging
import platform
import sys
import threading
from collections import defaultdict
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from msmkit.io import atomic_write_json, atomic_write_text, read_json
from msmkit.llm.types import LLMResponse, Usage
from msmkit.secrets import redact

USAGE_FILE = "usage.json"
PROMPTS_FILE = "prompts.json"
VERSIONS_FILE = "versions.json"
RUN_FILE = "run.json"
LOG_FILE = "log.txt"
TRACKED_PACKAGES = (
    "msmkit", "torch", "transformers", "trl", "peft", "accelerate", "datasets", "anthropic",
    "openai", "pydantic", "inspect-ai", "inspect-evals", "sentence-transformers", "gguf",
)


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class UsageLedger:
    """Thread-safe token and cost totals per (stage, model); persisted to usage.json."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._totals: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
        if path is not None and path.exists():
            self._totals.update(read_json(path).get("by_stage", {}))

    def add(self, stage: str, response: LLMResponse) -> None:
        with self._lock:
            entry = self._totals[stage].setdefault(
                response.model,
                {"calls": 0, "cached_calls": 0, "input_tokens": 0, "output_tokens": 0,
                 "cache_read_tokens": 0, "cache_write_tokens": 0, "cost_usd": 0.0},
            )
            entry["calls"] += 1
            if response.cached:
                entry["cached_calls"] += 1
                return  # a cache hit costs nothing this run
            usage: Usage = response.usage
            entry["input_tokens"] += usage.input_tokens
            entry["output_tokens"] += usage.output_tokens
            entry["cache_read_tokens"] += usage.cache_read_tokens
            entry["cache_write_tokens"] += usage.cache_write_tokens
            entry["cost_usd"] += response.cost_usd

    def totals(self) -> dict[str, Any]:
        with self._lock:
            by_stage = json.loads(json.dumps(self._totals))
        grand: dict[str, float] = defaultdict(float)
        for models in by_stage.values():
            for entry in models.values():
                for key, value in entry.items():
                    grand[key] += value
        return {"by_stage": by_stage, "total": dict(grand)}

    def save(self) -> None:
        if self._path is not None:
            atomic_write_json(self._path, self.totals())


class RunDir:
    """A run folder. Creating one over an existing folder resumes it (nothing is deleted)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.usage = UsageLedger(self.path / USAGE_FILE)
        self.logger = self._make_logger()
        if not (self.path / RUN_FILE).exists():
            atomic_write_json(self.path / RUN_FILE, {"created": _now(), "argv": [redact(a) for a in sys.argv]})
        self.write_json(VERSIONS_FILE, package_versions())

    def _make_logger(self) -> logging.Logger:
        logger = logging.getLogger(f"msmkit.run.{self.path.resolve()}")
        logger.setLevel(logging.INFO)
        logger.propagate = False
        if not logger.handlers:
            handler = logging.FileHandler(self.path / LOG_FILE, encoding="utf-8")
            handler.setFormatter(_RedactingFormatter("%(asctime)s %(levelname)s %(message)s"))
            logger.addHandler(handler)
        return logger

    def stage_dir(self, name: str) -> Path:
        directory = self.path / name
        directory.mkdir(parents=True, exist_ok=True)
        return directory

    def write_json(self, relative: str, obj: Any) -> Path:
        text = json.dumps(obj, indent=2, ensure_ascii=False, default=str)
        return atomic_write_text(self.path / relative, redact(text) + "\n")

    def write_text(self, relative: str, text: str) -> Path:
        return atomic_write_text(self.path / relative, redact(text))

    def write_config(self, config: Any, relative: str = "config.yaml") -> Path:
        """Record the resolved config (a pydantic model or plain data)."""
        data = config.model_dump(mode="json") if hasattr(config, "model_dump") else config
        return self.write_text(relative, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))

    def record_prompts(self, hashes: dict[str, str]) -> None:
        path = self.path / PROMPTS_FILE
        existing = read_json(path) if path.exists() else {}
        existing.update(hashes)
        self.write_json(PROMPTS_FILE, existing)

    def record_usage(self, stage: str, response: LLMResponse) -> None:
        self.usage.add(stage, response)

    def save_usage(self) -> None:
        self.usage.save()

    def log(self, message: str, level: int = logging.INFO) -> None:
        self.logger.log(level, message)

    def close(self) -> None:
        self.save_usage()
        for handler in list(self.logger.handlers):
            handler.close()
            self.logger.removeHandler(handler)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def usage_totals(folder: Path) -> dict[str, Any]:
    """The `total` block of a run folder's usage record (empty when it made no LLM calls)."""
    path = folder / USAGE_FILE
    return read_json(path).get("total", {}) if path.exists() else {}
