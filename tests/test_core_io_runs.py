import json
from pathlib import Path

import pytest

from msmkit.io import append_jsonl, atomic_write_json, read_jsonl, repair_torn_tail
from msmkit.llm.types import LLMResponse, Usage
from msmkit.runs import RunDir
from msmkit.secrets import redact


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b.json"
    atomic_write_json(target, {"x": 1})
    atomic_write_json(target, {"x": 2})
    assert json.loads(target.read_text()) == {"x": 2}
    assert [p.name for p in target.parent.iterdir()] == ["b.json"]


def test_read_jsonl_skips_torn_tail_but_reports_corruption_elsewhere(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    append_jsonl(path, {"id": 1})
    append_jsonl(path, {"id": 2})
    with open(path, "a") as handle:
        handle.write('{"id": 3, "te')  # a kill mid-write
    assert [row["id"] for row in read_jsonl(path)] == [1, 2]
    path.write_text('{"id": 1}\nnot json\n{"id": 2}\n')
    with pytest.raises(ValueError, match=r"rows.jsonl:2"):
        list(read_jsonl(path))


def test_a_torn_tail_followed_by_two_appends_reads_back_both_records(tmp_path: Path, caplog) -> None:
    path = tmp_path / "rows.jsonl"
    append_jsonl(path, {"id": 1})
    with open(path, "a") as handle:
        handle.write('{"id": 2, "te')  # a kill mid-write
    append_jsonl(path, {"id": 3})
    append_jsonl(path, {"id": 4})
    assert [row["id"] for row in read_jsonl(path, tolerate_torn_tail=False)] == [1, 3, 4]
    assert "cut off a partial last line of 13 bytes" in caplog.text


def test_a_complete_last_line_without_its_newline_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"id": 1}\n{"id": 2}')  # killed between the record and its newline
    append_jsonl(path, {"id": 3})
    assert [row["id"] for row in read_jsonl(path, tolerate_torn_tail=False)] == [1, 2, 3]
    torn_only = tmp_path / "torn.jsonl"
    torn_only.write_text('{"id": ')
    repair_torn_tail(torn_only)
    assert torn_only.read_text() == ""


def test_run_dir_records_versions_usage_and_redacts_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-ant-test-SECRET-0123456789abcdef"
    monkeypatch.setenv("ANTHROPIC_API_KEY", secret)
    run = RunDir(tmp_path / "run")
    run.write_config({"generator": {"provider": "anthropic", "note": f"key is {secret}"}})
    run.log(f"calling with {secret}")
    response = LLMResponse(text="hi", stop_reason="end", model="m", cost_usd=0.5,
                           usage=Usage(input_tokens=10, output_tokens=5))
    run.record_usage("corpus/documents", response)
    run.record_usage("corpus/documents", response.model_copy(update={"cached": True}))
    run.close()
    usage = json.loads((run.path / "usage.json").read_text())
    entry = usage["by_stage"]["corpus/documents"]["m"]
    assert entry["calls"] == 2 and entry["cached_calls"] == 1
    assert entry["input_tokens"] == 10 and entry["cost_usd"] == 0.5
    assert "torch" in json.loads((run.path / "versions.json").read_text())
    for path in run.path.rglob("*"):
        if path.is_file():
            assert secret not in path.read_text(errors="replace"), path
    assert "[REDACTED]" in (run.path / "log.txt").read_text()


def test_redact_catches_key_shaped_strings_without_env() -> None:
    assert "sk-" not in redact("token sk-abcdefghijklmnopqrstuvwxyz123 here")
