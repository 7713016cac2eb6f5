"""Headless Chromium helpers for tests that check what a person sees."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--allow-file-access-from-files"]


def chromium_or_skip() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("headless Chromium is not installed (scripts/test.sh installs Debian's chromium)")


def render_dom(page: Path) -> str:
    """The DOM after Chromium loaded the page and ran its scripts."""
    binary = chromium_or_skip()
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom",
                               page.resolve().as_uri()], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def screenshot(page: Path, out: Path, width: int = 1200, height: int = 2400) -> Path:
    binary = chromium_or_skip()
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={out}",
                        f"--window-size={width},{height}", page.resolve().as_uri()],
                       capture_output=True, text=True, timeout=120, check=True)
    return out
