"""Write a local Hugging Face hub cache by hand, laid out as `huggingface_hub` lays it out, for offline tests.

    <cache>/models--OWNER--NAME/blobs/<sha256 of the file>      the file contents
    <cache>/models--OWNER--NAME/snapshots/<commit>/<path>       symlinks to the blobs
    <cache>/models--OWNER--NAME/refs/main                       the commit the branch points at
    (datasets--OWNER--NAME/... for datasets)

`huggingface_hub.snapshot_download(..., local_files_only=True)` and `datasets.load_dataset(<snapshot>)` read
such a cache exactly as they read a real one; nothing here touches the network.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal


def _folder_name(repo_id: str, kind: str) -> str:
    return "--".join([f"{kind}s", *repo_id.split("/")])


def write_snapshot(cache_dir: str | Path, repo_id: str, files: Mapping[str, bytes | str | Path], *,
                   kind: Literal["model", "dataset"] = "model", commit: str | None = None,
                   branch: str | None = "main") -> Path:
    """Store `files` (repo path -> bytes, text or a local file to copy) as one commit; returns the snapshot folder.

    The commit hash defaults to a digest of the contents, so the same files give the same commit.
    """
    contents = {name: _as_bytes(data) for name, data in files.items()}
    if commit is None:
        digest = hashlib.sha1()
        for name in sorted(contents):
            digest.update(name.encode() + b"\0" + contents[name])
        commit = digest.hexdigest()
    repo = Path(cache_dir) / _folder_name(repo_id, kind)
    snapshot = repo / "snapshots" / commit
    for name, data in contents.items():
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        target = snapshot / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or target.exists():
            target.unlink()
        target.symlink_to(os.path.relpath(blob, target.parent))
    if branch:
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / branch).write_text(commit, encoding="utf-8")
    return snapshot


def write_folder_snapshot(cache_dir: str | Path, repo_id: str, folder: str | Path, **kwargs: Any) -> Path:
    """Every file under a local folder (e.g. a saved PEFT adapter) as one commit of `repo_id`."""
    root = Path(folder)
    files = {str(p.relative_to(root)): p for p in sorted(root.rglob("*")) if p.is_file()}
    return write_snapshot(cache_dir, repo_id, files, **kwargs)


def write_dataset_snapshot(cache_dir: str | Path, repo_id: str, splits: Mapping[str, Sequence[Mapping[str, Any]]],
                           *, file_format: Literal["parquet", "jsonl"] = "parquet", **kwargs: Any) -> Path:
    """A dataset repo with one file per split, named as the Hub names them (data/<split>-00000-of-00001.parquet)."""
    files: dict[str, bytes | str | Path] = {}
    for split, rows in splits.items():
        if file_format == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            buffer = io.BytesIO()
            pq.write_table(pa.Table.from_pylist([dict(row) for row in rows]), buffer)
            files[f"data/{split}-00000-of-00001.parquet"] = buffer.getvalue()
        else:
            files[f"data/{split}-00000-of-00001.jsonl"] = "".join(json.dumps(dict(row)) + "\n" for row in rows)
    return write_snapshot(cache_dir, repo_id, files, kind="dataset", **kwargs)


def _as_bytes(data: bytes | str | Path) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, Path):
        return data.read_bytes()
    return data.encode("utf-8")
