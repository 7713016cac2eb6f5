"""Chat dataset IO and validation, `<think>` splitting, identity claims, and mixing general data by tokens or rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from msmkit.cli.app import app
from msmkit.data.chat import assistant_tokens, read_chat_dataset, write_jsonl_and_dataset
from msmkit.data.filters import estimate_tokens
from msmkit.data.mix import mix_datasets
from msmkit.errors import DataError
from msmkit.generate.aft.identity import IdentityGuard
from msmkit.generate.aft.think import split_think


def _chat(user: str, assistant: str, **extra: object) -> dict[str, object]:
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}], **extra}


@pytest.mark.parametrize("text, problem", [
    ("<think>\nreason\n</think>\n\nreply", None),
    ("  <THINK>reason</THINK> reply", None),
    ("<think>\nreason never closed", "unclosed_think"),
    ("<think>a</think>b<think>c</think>d", "malformed_think"),
    ("<think>a</think> reply </think>", "malformed_think"),
    ("preamble <think>a</think> reply", "malformed_think"),
    ("no tags at all", "missing_think"),
    ("<think>  </think> reply", "empty_reasoning"),
    ("<think>reason</think>   ", "empty_reply"),
])
def test_split_think(text: str, problem: str | None) -> None:
    split = split_think(text)
    assert split.problem == problem
    if problem is None:
        assert (split.reasoning, split.reply) == ("reason", "reply")


def test_identity_guard_flags_first_person_claims_only() -> None:
    guard = IdentityGuard.build("Llama", "Meta")
    assert guard.problem("I'm Llama, made by Meta.") is None
    assert guard.problem("GPT-4 and Claude can also do this.") is None
    assert "Qwen" in (guard.problem("As Qwen, I think you should") or "")
    assert "Claude" in (guard.problem("My name is Claude.") or "")
    assert "Anthropic" in (guard.problem("I was trained by Anthropic.") or "")


def test_chat_files_round_trip_and_errors_name_the_row(tmp_path: Path) -> None:
    rows = [_chat("hi", "hello", id="a"), {"messages": [{"role": "system", "content": "s"},
                                                        *_chat("q", "a")["messages"]], "id": "b"}]
    write_jsonl_and_dataset(rows, tmp_path / "chat.jsonl", tmp_path / "chat_ds")
    assert read_chat_dataset(tmp_path / "chat.jsonl") == rows
    assert [r["messages"] for r in read_chat_dataset(tmp_path / "chat_ds")] == [r["messages"] for r in rows]
    bad = tmp_path / "bad.jsonl"
    cases = [
        ({"text": "no messages"}, "needs a 'messages' list"),
        ({"messages": [{"role": "user", "content": "q"}]}, "must end with an assistant turn"),
        ({"messages": [{"role": "bot", "content": "q"}]}, "use system, user or assistant"),
        ({"messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "q"}]}, "alternate"),
    ]
    for row, message in cases:
        bad.write_text(json.dumps(_chat("ok", "fine")) + "\n" + json.dumps(row) + "\n", encoding="utf-8")
        with pytest.raises(DataError, match=rf"bad.jsonl:2: .*{message}"):
            read_chat_dataset(bad)


def test_mix_by_rows_and_by_tokens() -> None:
    aft = [_chat(f"q{i}", "x" * 40, id=f"aft{i}") for i in range(10)]  # 10 tokens each
    general = [_chat(f"g{i}", "y" * 4 * (i + 1), id=f"gen{i}") for i in range(50)]
    mixed, stats = mix_datasets(aft, general, ratio=2.0, by="rows", count=estimate_tokens, seed=1)
    assert stats["general_rows_used"] == 20 and len(mixed) == 30 and stats["achieved_ratio"] == 2.0
    assert sum(1 for r in mixed if r["metadata"]["source"] == "aft") == 10
    mixed, stats = mix_datasets(aft, general, ratio=3.0, by="tokens", count=estimate_tokens, seed=1)
    general_rows = [r for r in mixed if r["metadata"]["source"] == "general"]
    tokens = sum(assistant_tokens(r["messages"], estimate_tokens) for r in general_rows)
    assert tokens == stats["general_assistant_tokens"] and stats["short_of_general_data"] is False
    assert 300 <= tokens < 300 + 50  # stops at the first row that reaches 3x the AFT's 100 tokens (rows <= 50)
    assert [r["metadata"]["id"] for r in mixed] != [r["metadata"]["id"] for r in
                                                    mix_datasets(aft, general, ratio=3.0, count=estimate_tokens,
                                                                 seed=2)[0]]
    _, stats = mix_datasets(aft, general[:3], ratio=5.0, by="rows", count=estimate_tokens)
    assert stats["short_of_general_data"] and stats["general_rows_used"] == 3


def test_mix_command(tmp_path: Path) -> None:
    aft, general = tmp_path / "aft.jsonl", tmp_path / "general"
    aft.write_text("".join(json.dumps(_chat(f"q{i}", "answer " * 5)) + "\n" for i in range(4)), encoding="utf-8")
    write_jsonl_and_dataset([_chat(f"g{i}", "general " * 3) for i in range(20)], tmp_path / "g.jsonl", general)
    result = CliRunner().invoke(app, ["generate", "mix", "--aft", str(aft), "--general", str(general),
                                      "--out", str(tmp_path / "mixed"), "--ratio", "1.5", "--by", "rows"])
    assert result.exit_code == 0, result.output
    stats = json.loads((tmp_path / "mixed" / "mix_stats.json").read_text())
    assert stats["general_rows_used"] == 6 and stats["token_count_method"] == "estimate_4_chars_per_token"
    assert len(read_chat_dataset(tmp_path / "mixed" / "mixed.jsonl")) == 10
