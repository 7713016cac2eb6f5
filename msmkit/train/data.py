"""Turn stage inputs into token rows with labels: documents for midtraining, chats for AFT.

Every row has `input_ids` and `labels` (-100 where no loss is taken). Midtraining: raw text + EOS,
loss on every token. AFT: the chat template applied, loss on assistant tokens only (the template's
{% generation %} spans). Rows that would train nothing are dropped and counted, never kept silently
(a row whose labels are all masked reports loss 0 and hides a broken template).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from msmkit.data.chat import read_chat_dataset
from msmkit.errors import DataError

logger = logging.getLogger(__name__)
IGNORE = -100
_THINK = re.compile(r"<think>.*?</think>\s*", re.DOTALL)


@dataclass
class TokenizedRows:
    rows: list[dict[str, list[int]]]
    source_rows: int
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> count
    truncated: int = 0

    @property
    def tokens(self) -> int:
        return sum(len(r["input_ids"]) for r in self.rows)

    @property
    def supervised_tokens(self) -> int:
        return sum(sum(1 for label in r["labels"] if label != IGNORE) for r in self.rows)


def read_corpus(path: str | Path, max_rows: int | None = None) -> list[str]:
    """Document texts from a JSONL file or `datasets` folder with a `text` column."""
    source = Path(path)
    if source.is_dir():
        from datasets import load_from_disk

        try:
            dataset = load_from_disk(str(source))
        except (FileNotFoundError, ValueError) as exc:
            raise DataError(f"{source}: not a dataset folder saved with `datasets` ({exc})") from None
        if hasattr(dataset, "keys"):
            if "train" not in dataset:
                raise DataError(f"{source}: a DatasetDict without a 'train' split; splits: {', '.join(dataset)}")
            dataset = dataset["train"]
        if "text" not in dataset.column_names:
            raise DataError(f"{source}: no 'text' column (columns: {', '.join(dataset.column_names)}); "
                            "midtraining reads one document per row from 'text'")
        texts = list(dataset["text"])
        where = lambda number: f"{source} row {number}"  # noqa: E731
    elif source.is_file():
        texts, lines = [], []
        with open(source, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{source}:{number}: not valid JSON ({exc.msg})") from None
                if not isinstance(row, dict) or "text" not in row:
                    raise DataError(f"{source}:{number}: each row needs a 'text' field (one document)")
                texts.append(row["text"])
                lines.append(number)
        where = lambda number: f"{source}:{lines[number - 1]}"  # noqa: E731
    else:
        raise DataError(f"{source}: no such file or folder (expected a corpus JSONL or a `datasets` folder)")
    for number, text in enumerate(texts, start=1):
        if not isinstance(text, str):
            raise DataError(f"{where(number)}: 'text' must be a string")
    return texts[:max_rows] if max_rows else texts


def tokenize_documents(texts: list[str], tokenizer, *, max_rows: int | None = None) -> TokenizedRows:
    """Each document as tokenizer(text) + EOS; every token is a label. Long documents are split by packing."""
    if tokenizer.eos_token_id is None:
        raise DataError("the tokenizer has no EOS token; midtraining ends every document with one")
    texts = texts[:max_rows] if max_rows else texts
    rows, empty = [], 0
    for text in texts:
        if not text.strip():
            empty += 1
            continue
        ids = tokenizer(text, add_special_tokens=True)["input_ids"]
        if ids[-1] != tokenizer.eos_token_id:
            ids = [*ids, tokenizer.eos_token_id]
        rows.append({"input_ids": ids, "labels": list(ids)})
    dropped = {"empty document": empty} if empty else {}
    return TokenizedRows(rows, len(texts), dropped)


def read_chats(path: str | Path, *, cot: str = "keep", max_rows: int | None = None) -> list[list[dict[str, str]]]:
    rows = read_chat_dataset(path)[:max_rows] if max_rows else read_chat_dataset(path)
    chats = [row["messages"] for row in rows]
    if cot == "strip":
        chats = [[{**m, "content": _THINK.sub("", m["content"])} if m["role"] == "assistant" else m for m in chat]
                 for chat in chats]
    return chats


def tokenize_chats(chats: list[list[dict[str, str]]], tokenizer, chat_template: str, *,
                   max_length: int | None = None) -> TokenizedRows:
    """Apply the chat template; labels keep only the tokens inside its {% generation %} spans."""
    rows, dropped, truncated = [], {}, 0
    for chat in chats:
        encoded = tokenizer.apply_chat_template(chat, chat_template=chat_template, tokenize=True, return_dict=True,
                                                return_assistant_tokens_mask=True)
        ids, mask = list(encoded["input_ids"]), list(encoded["assistant_masks"])
        if max_length and len(ids) > max_length:
            ids, mask = ids[:max_length], mask[:max_length]
            truncated += 1
        if not any(mask):
            reason = ("assistant reply cut off by max_length" if truncated and len(ids) == max_length
                      else "no assistant tokens (empty reply)")
            dropped[reason] = dropped.get(reason, 0) + 1
            continue
        rows.append({"input_ids": ids, "labels": [t if m else IGNORE for t, m in zip(ids, mask)]})
    if not rows and chats:
        raise DataError("every chat row has zero assistant tokens under the chat template: the template's "
                        "{% generation %} markers do not cover the assistant replies. Check aft.chat_template")
    if dropped:
        logger.warning("AFT: dropped %s rows that would train nothing: %s", sum(dropped.values()), dropped)
    return TokenizedRows(rows, len(chats), dropped, truncated)
