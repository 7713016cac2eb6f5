"""Crash-safe file writing: a kill never leaves a half-written file that a resume would trust."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Iterator

logger = logging.getLogger(__name__)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write to a temporary file in the same folder, fsync, then rename over `path`."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)
    return target


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def atomic_write_jsonl(path: str | os.PathLike[str], rows: Iterable[Any]) -> Path:
    lines = [json.dumps(row, ensure_ascii=False, default=str) for row in rows]
    return atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))


def append_jsonl(path: str | os.PathLike[str], row: Any) -> None:
    """Append one record and fsync it, first repairing a torn last line (see `repair_torn_tail`), so
    a record never lands glued to the half-written line of a killed process."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(row, ensure_ascii=False, default=str) + "\n").encode("utf-8")
    with open(target, "a+b") as handle:
        _repair_open_tail(handle, target)
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())


def repair_torn_tail(path: str | os.PathLike[str]) -> None:
    """Make a JSONL file end at a line boundary before appending to it.

    A last line without its newline is what a kill mid-write leaves: if it still parses it was
    complete and only gets its newline; otherwise it is cut off (read_jsonl skips it anyway).
    """
    target = Path(path)
    if not target.exists():
        return
    with open(target, "r+b") as handle:
        _repair_open_tail(handle, target)


def _repair_open_tail(handle: BinaryIO, path: Path) -> None:
    end = handle.seek(0, os.SEEK_END)
    if end == 0:
        return
    handle.seek(end - 1)
    if handle.read(1) == b"\n":
        return
    start = _last_line_start(handle, end)
    handle.seek(start)
    tail = handle.read(end - start)
    try:
        json.loads(tail)
        complete = True
    except ValueError:  # JSONDecodeError, or bytes cut inside a UTF-8 sequence
        complete = False
    if complete:
        handle.seek(end)
        handle.write(b"\n")
    else:
        handle.truncate(start)
        logger.warning("%s: cut off a partial last line of %d bytes (left by an interrupted write)", path, end - start)
    handle.flush()


def _last_line_start(handle: BinaryIO, end: int, block: int = 65536) -> int:
    """Offset just after the last newline before `end` (0 when there is none), reading backwards."""
    position = end
    while position > 0:
        begin = max(0, position - block)
        handle.seek(begin)
        found = handle.read(position - begin).rfind(b"\n")
        if found != -1:
            return begin + found + 1
        position = begin
    return 0


def read_jsonl(path: str | os.PathLike[str], *, tolerate_torn_tail: bool = True) -> Iterator[dict[str, Any]]:
    """Yield records; a final line without newline that does not parse is a torn write and skipped.

    Any other malformed line raises ValueError naming the file and line number.
    """
    target = Path(path)
    if not target.exists():
        return
    with open(target, encoding="utf-8") as handle:
        lines = handle.readlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError as exc:
            is_torn_tail = number == len(lines) and not line.endswith("\n")
            if tolerate_torn_tail and is_torn_tail:
                return
            raise ValueError(f"{target}:{number}: not valid JSON ({exc.msg}); fix or delete that line") from exc


def read_json(path: str | os.PathLike[str]) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)
