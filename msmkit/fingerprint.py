"""Content identity of files and folders: the one definition of "same inputs" everywhere in msmkit (stage keys,
training runs, the LLM response cache's local weights).

Two files are the same input when their bytes are the same, whatever their path or times. Hashing gigabytes on
every plan would be slow, so each file's digest is remembered (in memory and in `<cache dir>/file_digests.sqlite`)
under its path, size, modification time, change time and inode, and recomputed only when one of those changes.
Files in a Hugging Face cache are named by their content hash already (`blobs/<sha>`); that name is used.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import threading
from pathlib import Path

from msmkit.paths import cache_dir

_BLOB_NAME = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
_CHUNK = 8 << 20
_memory: dict[tuple[str, int, int, int, int], str] = {}
_memory_lock = threading.Lock()


def file_digest(path: Path) -> str:
    """Content identity of one file: the blob name in a Hugging Face cache, else its sha256 (remembered)."""
    resolved = path.resolve()
    if resolved.parent.name == "blobs" and _BLOB_NAME.match(resolved.name):
        return f"blob:{resolved.name}"
    info = resolved.stat()
    key = (str(resolved), info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino)
    with _memory_lock:
        known = _memory.get(key)
    if known is None:
        store = _DigestStore(cache_dir() / "file_digests.sqlite")
        known = store.get(key)
        if known is None:
            known = _sha256(resolved)
            store.put(key, known)
        store.close()
        with _memory_lock:
            _memory[key] = known
    return known


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


class _DigestStore:
    def __init__(self, path: Path) -> None:
        self.connection = sqlite3.connect(path, timeout=60.0, isolation_level=None)
        self.connection.execute("PRAGMA busy_timeout=60000")
        self.connection.execute(
            "CREATE TABLE IF NOT EXISTS digests (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, "
            "ctime_ns INTEGER, inode INTEGER, digest TEXT NOT NULL)")

    def get(self, key: tuple[str, int, int, int, int]) -> str | None:
        row = self.connection.execute("SELECT size, mtime_ns, ctime_ns, inode, digest FROM digests WHERE path = ?",
                                      (key[0],)).fetchone()
        return row[4] if row is not None and tuple(row[:4]) == key[1:] else None

    def put(self, key: tuple[str, int, int, int, int], digest: str) -> None:
        self.connection.execute("INSERT OR REPLACE INTO digests VALUES (?, ?, ?, ?, ?, ?)", (*key, digest))

    def close(self) -> None:
        self.connection.close()


def content_hash(path: str | Path, *, skip: tuple[str, ...] = ()) -> str:
    """sha256 over a file's digest, or over a folder's files (their relative names and digests). Relative names
    containing any of `skip` (e.g. "checkpoint-") are left out."""
    target = Path(path)
    if not target.is_dir():
        return hashlib.sha256(file_digest(target).encode()).hexdigest()
    digest = hashlib.sha256()
    for child in sorted(p for p in target.rglob("*") if p.is_file()):
        relative = child.relative_to(target).as_posix()
        if not any(part in relative for part in skip):
            digest.update(f"{relative}\0{file_digest(child)}\n".encode())
    return digest.hexdigest()
