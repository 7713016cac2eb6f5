"""A progress bar for many concurrent requests (rich), quiet when output is not a terminal."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[Callable[[], None]]:
    console = Console(stderr=True)
    enabled = total > 1 and console.is_terminal and not os.environ.get("MSM_NO_PROGRESS")
    if not enabled:
        yield lambda: None
        return
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False) as progress:
        task = progress.add_task(description, total=total)
        yield lambda: progress.advance(task)


class GrowingProgress:
    """Advance as items finish; `add` raises the total as new items appear (item-by-item pipelines)."""

    def __init__(self, progress: Progress | None, description: str) -> None:
        self._progress = progress
        self._task = progress.add_task(description, total=0) if progress is not None else None
        self.total = 0

    def add(self, count: int = 1) -> None:
        self.total += count
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, total=self.total)

    def advance(self) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task)


@contextmanager
def growing_progress(description: str) -> Iterator[GrowingProgress]:
    console = Console(stderr=True)
    if not console.is_terminal or os.environ.get("MSM_NO_PROGRESS"):
        yield GrowingProgress(None, description)
        return
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=False) as progress:
        yield GrowingProgress(progress, description)
