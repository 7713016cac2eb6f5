"""Chat datasets: rows of `messages` (optional system turn, then user/assistant turns) in JSONL or a
`datasets` folder; validation with errors that name the file, row and field; token counting."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Callable, Sequence

from msmkit.data.filters import estimate_tokens
from msmkit.errors import DataError
from msmkit.io import atomic_write_jsonl

TokenCounter = Callable[[str], int]
ESTIMATE_METHOD = "estimate_4_chars_per_token"


def make_token_counter(tokenizer: str | None) -> tuple[TokenCounter, str]:
    """(count, method): the named local HF tokenizer when given, else ~4 characters per token."""
    if not tokenizer:
        return estimate_tokens, ESTIMATE_METHOD
    from transformers import AutoTokenizer

    try:
        loaded = AutoTokenizer.from_pretrained(tokenizer, local_files_only=True)
    except OSError as exc:
        raise DataError(f"tokenizer '{tokenizer}' is not available offline ({exc}); give a local folder or a "
                        "model already in the Hugging Face cache, or leave tokenizer unset for an estimate") from None
    return (lambda text: len(loaded.encode(text, add_special_tokens=False))), f"tokenizer:{tokenizer}"


def validate_messages(messages: Any, where: str) -> list[dict[str, str]]:
    """Checks one conversation; raises DataError naming `where` and the fix."""
    if not isinstance(messages, list) or not messages:
        raise DataError(f"{where}: 'messages' must be a non-empty list of {{role, content}} objects")
    for number, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str) \
                or not isinstance(message.get("content"), str):
            raise DataError(f"{where}: messages[{number}] must be an object with string 'role' and 'content'")
        if message["role"] not in ("system", "user", "assistant"):
            raise DataError(f"{where}: messages[{number}].role is '{message['role']}'; use system, user or assistant")
    turns = messages[1:] if messages[0]["role"] == "system" else messages
    if any(m["role"] == "system" for m in turns):
        raise DataError(f"{where}: a system message may only come first")
    for number, message in enumerate(turns):
        expected = "user" if number % 2 == 0 else "assistant"
        if message["role"] != expected:
            raise DataError(f"{where}: turns must alternate user/assistant starting with user; turn {number} is "
                            f"'{message['role']}'")
    if not turns or turns[-1]["role"] != "assistant":
        raise DataError(f"{where}: the conversation must end with an assistant turn (nothing to train on otherwise)")
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def read_chat_dataset(path: str | Path) -> list[dict[str, Any]]:
    """Rows with validated `messages` from a .jsonl file or a `datasets.save_to_disk` folder."""
    source = Path(path)
    if source.is_dir():
        from datasets import load_from_disk

        try:
            dataset = load_from_disk(str(source))
        except (FileNotFoundError, ValueError) as exc:
            raise DataError(f"{source}: not a dataset folder saved with `datasets` ({exc})") from None
        if hasattr(dataset, "keys"):  # a DatasetDict: use its train split
            if "train" not in dataset:
                raise DataError(f"{source}: a DatasetDict without a 'train' split; splits: {', '.join(dataset)}")
            dataset = dataset["train"]
        rows = list(dataset)
        where = lambda number: f"{source} row {number}"  # noqa: E731
    elif source.is_file():
        rows = []
        with open(source, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DataError(f"{source}:{number}: not valid JSON ({exc.msg})") from None
        where = lambda number: f"{source}:{number}"  # noqa: E731
    else:
        raise DataError(f"{source}: no such file or folder (expected chat JSONL or a `datasets` folder)")
    checked = []
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict) or "messages" not in row:
            raise DataError(f"{where(number)}: each row needs a 'messages' list (chat format)")
        checked.append({**row, "messages": validate_messages(row["messages"], where(number))})
    return checked


def assistant_tokens(messages: Sequence[dict[str, str]], count: TokenCounter) -> int:
    return sum(count(m["content"]) for m in messages if m["role"] == "assistant")


def total_tokens(messages: Sequence[dict[str, str]], count: TokenCounter) -> int:
    return sum(count(m["content"]) for m in messages)


def write_jsonl_and_dataset(rows: Sequence[dict[str, Any]], jsonl_path: str | Path,
                            dataset_dir: str | Path | None) -> None:
    """JSONL (atomic) and, when asked, a `datasets` folder with the same rows (swapped in whole)."""
    atomic_write_jsonl(jsonl_path, rows)
    if dataset_dir is None:
        return
    from datasets import Dataset

    target = Path(dataset_dir)
    dataset = Dataset.from_list(list(rows))
    staging = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    dataset.save_to_disk(str(staging))
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
