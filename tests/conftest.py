"""Shared fixtures. Every test gets its own msmkit cache folder (LLM response cache, batch journals),
while converted models are shared across the session so the embedded Gemma is converted at most once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from msmkit.testing.network_guard import NetworkGuard

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



# Installed for the whole session (collection included) so that module imports and fixtures are guarded too.
_NETWORK_GUARD = NetworkGuard()


def pytest_configure(config: pytest.Config) -> None:
    _NETWORK_GUARD.install()


def pytest_unconfigure(config: pytest.Config) -> None:
    _NETWORK_GUARD.uninstall()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """Fails the test if it (or a fixture set up for it) tried to reach a host other than this machine, even when
    a library swallowed the NetworkBlocked error."""
    result = yield
    attempts = _NETWORK_GUARD.take()
    if attempts:
        pytest.fail("the test tried to reach the network (only loopback is allowed): " + "; ".join(attempts),
                    pytrace=False)
    return result


@pytest.fixture
def network_guard() -> NetworkGuard:
    """The session's guard; `with network_guard.expected() as attempts:` lets a block try (still blocked)."""
    return _NETWORK_GUARD
