"""Hugging Face Hub artifacts as inputs: `hf:` references, resolved from the local cache (offline by default).

Grammar of a reference (one string, wherever a config or command takes a model, adapter or dataset):

    hf:OWNER/NAME                    the default branch (main): works, but the run record warns it is unpinned
    hf:OWNER/NAME@REVISION           a commit hash (40 hex digits, recommended), a branch or a tag
    hf:OWNER/NAME@REVISION:SPLIT     a dataset split, e.g. hf:chloeli/sft-it-mix@<commit>:no_robots
    hf:OWNER/NAME@REVISION:CONFIG/SPLIT   a split of a named dataset config (subset)
    hf:OWNER/NAME:SPLIT              a split at the default branch

Whether a reference names a model repo or a dataset repo is said by where it is used (an adapter field
takes models, an items field takes datasets), not by the string.

Resolution never touches the network unless the caller passes `allow_download=True`: a reference that
is not in the cache raises `ArtifactNotCachedError`, whose message gives the exact `hf download` command
(and the size, when msmkit knows it). `describe_plan` lists what is cached and what would be downloaded,
for `--preview`. The cache is the standard one: `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else
`~/.cache/huggingface/hub`, read when a call is made (so a test can point it at a temporary folder).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any, Literal

from msmkit.errors import ConfigError, DataError, MsmError

logger = logging.getLogger(__name__)

HF_PREFIX = "hf:"
RepoKind = Literal["model", "dataset"]
GRAMMAR = "hf:OWNER/NAME[@REVISION][:SPLIT or :CONFIG/SPLIT]"
_REFERENCE = re.compile(
    r"^hf:(?P<repo>[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*)"
    r"(?:@(?P<revision>[^:@\s]+))?"
    r"(?::(?P<selector>[^:@\s]+))?$")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_DATA_SUFFIXES = (".parquet", ".jsonl", ".json", ".csv", ".arrow", ".jsonl.gz", ".json.gz")
_MODEL_MARKERS = ("adapter_config.json", "config.json")


class ArtifactNotCachedError(MsmError):
    """A referenced Hub artifact is not in the local cache and downloading was not allowed."""


@dataclass(frozen=True)
class HubRef:
    """A parsed `hf:` reference."""

    repo_id: str
    revision: str | None = None
    config: str | None = None
    split: str | None = None
    kind: RepoKind = "model"

    @property
    def pinned(self) -> bool:
        """True when the revision is a commit hash (the only revision that cannot move)."""
        return bool(self.revision and _COMMIT.match(self.revision))

    def text(self) -> str:
        """The canonical reference string (what `parse_ref` reads back)."""
        out = f"{HF_PREFIX}{self.repo_id}" + (f"@{self.revision}" if self.revision else "")
        if self.split:
            out += f":{self.config}/{self.split}" if self.config else f":{self.split}"
        return out

    def __str__(self) -> str:
        return self.text()

    def download_command(self) -> str:
        parts = ["hf", "download", self.repo_id]
        if self.kind == "dataset":
            parts += ["--repo-type", "dataset"]
        if self.revision:
            parts += ["--revision", self.revision]
        return " ".join(parts)


def is_hub_ref(text: object) -> bool:
    return isinstance(text, str) and text.startswith(HF_PREFIX)


def parse_ref(text: str, kind: RepoKind = "model") -> HubRef:
    """Parse `hf:OWNER/NAME[@REVISION][:SPLIT|:CONFIG/SPLIT]`; a split is only for datasets."""
    if not is_hub_ref(text):
        raise ConfigError(f"{text!r} is not a Hugging Face reference; write it as {GRAMMAR}")
    found = _REFERENCE.match(text.strip())
    if not found:
        raise ConfigError(f"{text!r}: not a valid Hugging Face reference; the form is {GRAMMAR}, e.g. "
                          "hf:chloeli/llama-3.1-8b-baseline@<40-hex commit> or "
                          "hf:chloeli/sft-it-mix@<commit>:no_robots")
    config, split = None, None
    selector = found.group("selector")
    if selector:
        if kind != "dataset":
            raise ConfigError(f"{text!r}: ':{selector}' picks a dataset split, but a model is expected here; "
                              "drop the ':...' part")
        config, _, split = selector.rpartition("/")
        config = config or None
        for name, part in (("config", config), ("split", split)):
            if part is not None and not _NAME.match(part):
                raise ConfigError(f"{text!r}: {name} name {part!r} may only hold letters, digits, '_', '.' and '-'")
    return HubRef(found.group("repo"), found.group("revision"), config, split, kind)


def as_ref(reference: str | HubRef, kind: RepoKind) -> HubRef:
    if isinstance(reference, HubRef):
        return reference if reference.kind == kind else replace(reference, kind=kind)
    return parse_ref(reference, kind)


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache folder, from the environment at call time."""
    for variable in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(variable):
            return Path(os.environ[variable]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


@dataclass(frozen=True)
class ResolvedArtifact:
    """A reference found on this machine: its snapshot folder and the commit it is at."""

    ref: HubRef
    path: Path
    commit: str
    downloaded: bool = False

    def record(self) -> dict[str, Any]:
        """What a run folder should keep about this input."""
        return {"ref": self.ref.text(), "repo_id": self.ref.repo_id, "kind": self.ref.kind,
                "requested_revision": self.ref.revision, "commit": self.commit, "pinned": self.ref.pinned,
                "split": self.ref.split, "config": self.ref.config, "downloaded": self.downloaded}


def _snapshot(ref: HubRef, cache_dir: Path, *, local_only: bool) -> Path:
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(ref.repo_id, repo_type=ref.kind, revision=ref.revision, cache_dir=str(cache_dir),
                                  local_files_only=local_only))


def _not_cached_message(ref: HubRef, cache_dir: Path, detail: str = "") -> str:
    from msmkit.paper.released import known_artifact

    known = known_artifact(ref.repo_id)
    size = f" (about {format_bytes(known.approx_bytes)})" if known and known.approx_bytes else ""
    what = "dataset" if ref.kind == "dataset" else "model"
    return (f"{ref.text()}: this {what} is not in the local Hugging Face cache ({cache_dir}){detail}. "
            f"msmkit downloads nothing unless asked. Download it once with `{ref.download_command()}`{size}, "
            "or allow downloads for this run (allow_download=True; on the command line --allow-download)."
            + ("" if ref.revision else " Pin a revision (@<commit>) so the run can be reproduced."))


def resolve(reference: str | HubRef, kind: RepoKind = "model", *, allow_download: bool = False,
            cache_dir: str | Path | None = None) -> ResolvedArtifact:
    """The local snapshot of a reference; downloads only with `allow_download=True`."""
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    ref = as_ref(reference, kind)
    cache = Path(cache_dir) if cache_dir is not None else hub_cache_dir()
    downloaded = False
    try:
        path = _snapshot(ref, cache, local_only=True)
    except HFValidationError as exc:
        raise ConfigError(f"{ref.text()}: {exc}") from None
    except (LocalEntryNotFoundError, OSError) as exc:
        if not allow_download:
            detail = "" if isinstance(exc, LocalEntryNotFoundError) else f": {exc}"
            raise ArtifactNotCachedError(_not_cached_message(ref, cache, detail)) from None
        logger.info("downloading %s into %s", ref.text(), cache)
        try:
            path = _snapshot(ref, cache, local_only=False)
        except Exception as download_error:  # noqa: BLE001 - network, auth, gating: all reported the same way
            raise ArtifactNotCachedError(f"{ref.text()}: download failed ({type(download_error).__name__}: "
                                         f"{download_error}). For a gated repo, accept its license on "
                                         "huggingface.co and log in with `hf auth login` first.") from None
        downloaded = True
    _check_complete(ref, path)
    if not ref.pinned:
        _warn_unpinned(ref.text(), HF_PREFIX + ref.repo_id, path.name)
    return ResolvedArtifact(ref, path, path.name, downloaded)


@cache
def _warn_unpinned(text: str, repo: str, commit: str) -> None:
    """Once per reference and commit: loaders resolve the same reference several times."""
    logger.warning("%s is not pinned to a commit; resolved to %s. Write %s@%s to reproduce this run.",
                   text, commit, repo, commit)


def _check_complete(ref: HubRef, path: Path) -> None:
    if ref.kind == "model":
        if not any((path / marker).is_file() for marker in _MODEL_MARKERS):
            raise ArtifactNotCachedError(
                f"{ref.text()}: the cached snapshot {path} has neither adapter_config.json nor config.json; it is "
                f"partial or not a model. Complete it with `{ref.download_command()}`")
    elif not any(p.is_file() and p.name.endswith(_DATA_SUFFIXES) for p in path.rglob("*")):
        raise ArtifactNotCachedError(f"{ref.text()}: the cached snapshot {path} holds no data files (.parquet, "
                                     f".jsonl, ...); complete it with `{ref.download_command()}`")


def resolve_model_path(reference: str | HubRef, *, allow_download: bool = False,
                       cache_dir: str | Path | None = None) -> Path:
    """The local folder of a model or adapter reference."""
    return resolve(reference, "model", allow_download=allow_download, cache_dir=cache_dir).path


@dataclass
class DatasetRows:
    """One split of a Hub dataset, read into memory."""

    artifact: ResolvedArtifact
    split: str
    rows: list[dict[str, Any]]
    columns: list[str] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        return {**self.artifact.record(), "split": self.split, "rows": len(self.rows), "columns": self.columns}


def dataset_splits(artifact: ResolvedArtifact) -> list[str]:
    """The split names of a resolved dataset (as `datasets` infers them from the repo's files or README)."""
    import datasets

    return list(datasets.get_dataset_split_names(str(artifact.path), config_name=artifact.ref.config))


def load_dataset_rows(reference: str | HubRef, *, split: str | None = None, allow_download: bool = False,
                      cache_dir: str | Path | None = None) -> DatasetRows:
    """Rows of one split. The split comes from `split`, else the reference, else 'train' (or the only split)."""
    artifact = resolve(reference, "dataset", allow_download=allow_download, cache_dir=cache_dir)
    return read_split(artifact, split or artifact.ref.split)


def read_split(artifact: ResolvedArtifact, split: str | None = None) -> DatasetRows:
    import datasets

    available = dataset_splits(artifact)
    if split is None:
        if "train" in available or len(available) != 1:
            split = "train"
        else:
            split = available[0]
    if split not in available:
        base = HF_PREFIX + artifact.ref.repo_id + (f"@{artifact.ref.revision}" if artifact.ref.revision else "")
        raise DataError(f"{artifact.ref.text()}: no split '{split}'; it has {', '.join(available)}. "
                        f"Pick one as {base}:SPLIT")
    stream = datasets.load_dataset(str(artifact.path), name=artifact.ref.config, split=split, streaming=True)
    rows = [dict(row) for row in stream]
    columns = list(rows[0]) if rows else []
    return DatasetRows(artifact, split, rows, columns)


# -- planning (for --preview) --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanEntry:
    """One artifact a run needs: cached or not, where, how big, and how to fetch it."""

    ref: HubRef
    cached: bool
    path: Path | None = None
    commit: str | None = None
    approx_bytes: int | None = None
    size_source: str | None = None  # "catalogue estimate", "hub", or None when unknown
    needed_by: str | None = None  # e.g. the adapter a base model is needed for
    notes: tuple[str, ...] = ()
    label: str | None = None  # how to show it when not as its reference (a base model's id or folder)

    @property
    def name(self) -> str:
        return self.label or self.ref.text()

    @property
    def download_command(self) -> str:
        return self.ref.download_command()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ref": self.ref.text(), "kind": self.ref.kind, "cached": self.cached,
                "path": None if self.path is None else str(self.path), "commit": self.commit,
                "approx_bytes": self.approx_bytes, "size_source": self.size_source, "needed_by": self.needed_by,
                "download_command": None if self.cached else self.download_command, "notes": list(self.notes)}


def describe_plan(references: Iterable[str | HubRef | tuple[str, RepoKind]], *, cache_dir: str | Path | None = None,
                  include_base_models: bool = True, query_hub: bool = False) -> list[PlanEntry]:
    """What each reference needs: cached (where, which commit) or to download (command, size if known).

    Plain strings are taken as models; pass `(text, "dataset")` or a `HubRef` for datasets. A cached adapter's
    base model (from its adapter_config.json), or the catalogue's base for one not cached, is listed after it.
    `query_hub=True` asks the Hub for exact sizes of what is missing (network); the default stays offline.
    """
    cache = Path(cache_dir) if cache_dir is not None else hub_cache_dir()
    entries: list[PlanEntry] = []
    seen: set[tuple[str, str, str | None]] = set()
    for item in references:
        ref = _ref_of(item)
        key = (ref.kind, ref.repo_id, ref.revision)
        if key in seen:
            continue
        seen.add(key)
        entry = _plan_one(ref, cache, query_hub)
        entries.append(entry)
        if include_base_models and ref.kind == "model":
            base = _base_model_of(entry)
            if base and ("model", base, None) not in seen:
                seen.add(("model", base, None))
                entries.append(replace(_plan_base(base, cache), needed_by=ref.text(), label=base))
    return entries


def _ref_of(item: str | HubRef | tuple[str, RepoKind]) -> HubRef:
    if isinstance(item, HubRef):
        return item
    if isinstance(item, tuple):
        return as_ref(item[0], item[1])
    return as_ref(item, "model")


def _plan_one(ref: HubRef, cache: Path, query_hub: bool, *, note_unpinned: bool = True) -> PlanEntry:
    from msmkit.paper.released import known_artifact

    notes = [] if ref.pinned or not note_unpinned else [
        "revision not pinned to a commit: results may change when the repo does"]
    known = known_artifact(ref.repo_id)
    if known and known.gated:
        notes.append("gated on the Hub: accept its license on huggingface.co and `hf auth login` before downloading")
    try:
        artifact = resolve(ref, ref.kind, cache_dir=cache)
    except ArtifactNotCachedError:
        size, source = (known.approx_bytes, "catalogue estimate") if known and known.approx_bytes else (None, None)
        if query_hub:
            size, source = _hub_size(ref, cache), "hub"
        return PlanEntry(ref, cached=False, approx_bytes=size, size_source=source, notes=tuple(notes))
    return PlanEntry(ref, cached=True, path=artifact.path, commit=artifact.commit,
                     approx_bytes=_folder_bytes(artifact.path), size_source="cache", notes=tuple(notes))


def _plan_base(repo_id: str, cache: Path) -> PlanEntry:
    """A base model named by a plain hub id (as adapter_config.json names it) or a local folder."""
    if Path(repo_id).expanduser().is_dir():
        return PlanEntry(HubRef(repo_id), cached=True, path=Path(repo_id).expanduser(), size_source="cache",
                         notes=("a local folder",))
    try:
        return _plan_one(HubRef(repo_id), cache, query_hub=False, note_unpinned=False)
    except ConfigError:  # not a hub id: a path that does not exist
        return PlanEntry(HubRef(repo_id), cached=False, notes=("neither a folder on this machine nor a hub id",))


def _base_model_of(entry: PlanEntry) -> str | None:
    import json

    if entry.cached and entry.path is not None:
        config = entry.path / "adapter_config.json"
        if config.is_file():
            try:
                return json.loads(config.read_text(encoding="utf-8")).get("base_model_name_or_path") or None
            except ValueError:
                return None
        return None
    from msmkit.paper.released import known_artifact

    known = known_artifact(entry.ref.repo_id)
    return known.base_model if known else None


def _folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _hub_size(ref: HubRef, cache: Path) -> int | None:
    from huggingface_hub import snapshot_download

    try:
        files = snapshot_download(ref.repo_id, repo_type=ref.kind, revision=ref.revision, cache_dir=str(cache),
                                  dry_run=True)
    except Exception as exc:  # noqa: BLE001 - offline, gated, missing: the size stays unknown
        logger.info("cannot ask the Hub for the size of %s: %s", ref.text(), exc)
        return None
    sizes = [f.file_size for f in files if f.will_download]  # type: ignore[union-attr]
    return None if any(s is None for s in sizes) else sum(sizes)  # type: ignore[misc]


def format_bytes(size: int | None) -> str:
    if size is None:
        return "size unknown"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def format_plan(entries: Sequence[PlanEntry]) -> str:
    """A plain-text table for --preview: cached inputs, then what would be downloaded and how."""
    lines = []
    missing = [e for e in entries if not e.cached]
    for entry in entries:
        state = f"cached at {entry.commit or entry.path}" if entry.cached else "NOT CACHED"
        size = format_bytes(entry.approx_bytes) + (f", {entry.size_source}" if entry.size_source else "")
        line = f"  {entry.name:<72} {state} ({size})"
        if entry.needed_by:
            line += f"\n      base model of {entry.needed_by}"
        if not entry.cached:
            line += f"\n      download: {entry.download_command}"
        lines += [line] + [f"      note: {note}" for note in entry.notes]
    total = sum(e.approx_bytes or 0 for e in missing)
    unknown = sum(1 for e in missing if e.approx_bytes is None)
    summary = (f"{len(entries) - len(missing)} cached, {len(missing)} to download"
               + (f" (about {format_bytes(total)}" + (f" plus {unknown} of unknown size)" if unknown else ")")
                  if missing else ""))
    return "\n".join(["Hugging Face inputs: " + summary, *lines])
