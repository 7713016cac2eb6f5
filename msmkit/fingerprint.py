"""Content identity of files and folders: the one definition of "same inputs" everywhere in msmkit.

Two files are the same input when their bytes are the same, whatever their path, size or mtime. Hashing
gigabytes of weights on every plan would be slow, so each file's digest is memoised by (path, size,
mtime_ns) in a small SQLite table under the msmkit cache: the memo only saves work, the identity stays
the content (a file rewritten with new bytes gets a new size or mtime, hence a fresh digest).
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path

from msmkit.paths import cache_dir

_CHUNK = 1 << 20
_SCHEMA = "CREATE TABLE IF NOT EXISTS digests (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, sha256 TEXT)"
_lock = threading.Lock()
_memory: dict[tuple[str, int, int], str] = {}


def _memo_db() -> sqlite3.Connection | None:
    try:
        path = cache_dir() / "fingerprints.sqlite"
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, timeout=30.0, isolation_level=None)
        connection.execute(_SCHEMA)
        return connection
    except sqlite3.Error:
        return None  # a read-only or broken cache only costs a rehash


def _hash_bytes(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes (memoised by path, size and mtime)."""
    target = Path(path).resolve()
    stat = target.stat()
    key = (str(target), stat.st_size, stat.st_mtime_ns)
    with _lock:
        if key in _memory:
            return _memory[key]
    # Small files are cheaper to hash than to look up.
    connection = _memo_db() if stat.st_size > _CHUNK else None
    if connection is not None:
        row = connection.execute("SELECT sha256 FROM digests WHERE path = ? AND size = ? AND mtime_ns = ?",
                                 key).fetchone()
        if row:
            with _lock:
                _memory[key] = row[0]
            connection.close()
            return str(row[0])
    digest = _hash_bytes(target)
    with _lock:
        _memory[key] = digest
    if connection is not None:
        connection.execute("INSERT OR REPLACE INTO digests VALUES (?, ?, ?, ?)", (*key, digest))
        connection.close()
    return digest


def content_hash(path: str | Path, *, skip: tuple[str, ...] = ()) -> str:
    """sha256 of a file, or of a folder's files (their relative names and contents). Names containing any
    of `skip` (e.g. "checkpoint-") are left out."""
    target = Path(path)
    if not target.is_dir():
        return file_sha256(target)
    digest = hashlib.sha256()
    for child in sorted(p for p in target.rglob("*") if p.is_file()):
        relative = child.relative_to(target).as_posix()
        if any(part in relative for part in skip):
            continue
        digest.update(relative.encode())
        digest.update(bytes.fromhex(file_sha256(child)))
    return digest.hexdigest()
