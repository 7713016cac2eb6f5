"""Shared fixtures. Every test gets its own msmkit cache folder (LLM response cache, batch journals),
while converted models are shared across the session so the embedded Gemma is converted at most once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MSM_NO_PROGRESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def shared_models_dir() -> Path:
    root = Path(os.environ.get("MSM_TEST_MODELS_DIR") or Path.home() / ".cache" / "msmkit" / "models")
    root.mkdir(parents=True, exist_ok=True)
    return root


@pytest.fixture(autouse=True)
def isolated_cache_dir(tmp_path_factory: pytest.TempPathFactory, shared_models_dir: Path,
                       monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path_factory.mktemp("msm-cache")
    (cache / "models").symlink_to(shared_models_dir, target_is_directory=True)
    monkeypatch.setenv("MSM_CACHE_DIR", str(cache))
    return cache


@pytest.fixture(scope="session")
def paper_specs_dir() -> Path:
    path = Path(__file__).resolve().parents[2] / "shared" / "paper_specs"
    if not path.is_dir():
        pytest.skip("../shared/paper_specs is not beside this checkout")
    return path
