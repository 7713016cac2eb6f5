"""Both batch APIs end to end through the real SDKs: submit, poll until ended, read results."""

from __future__ import annotations

import asyncio
import io
import json
import time

import anthropic
import openai
import pytest

from msmkit.testing import FakeLLMServer, Fault

KEY = "test-key"


@pytest.fixture()
def server():
    with FakeLLMServer(lambda req: f"answer {req.last_user}", batch_delay_s=0.3) as fake:
        yield fake


def jsonl(lines: list[dict]) -> bytes:
    return "\n".join(json.dumps(line) for line in lines).encode()


def chat_line(custom_id: str, prompt: str) -> dict:
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "m", "max_tokens": 20, "messages": [{"role": "user", "content": prompt}]}}


def test_openai_batch_upload_poll_and_read_output_and_error_files(server) -> None:
    client = openai.OpenAI(api_key=KEY, base_url=server.openai_base_url, max_retries=0)
    server.inject(Fault.SERVER_ERROR, match="bad item")
    upload = client.files.create(file=("in.jsonl", io.BytesIO(jsonl(
        [chat_line("r1", "one"), chat_line("r2", "two"), chat_line("r3", "bad item")]))), purpose="batch")
    assert upload.purpose == "batch" and upload.bytes > 0
    batch = client.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert batch.status == "in_progress" and batch.output_file_id is None
    assert server.stats.completions == 0  # nothing answered before the delay
    polls = 0
    while batch.status not in ("completed", "failed", "expired", "cancelled"):
        time.sleep(0.05)
        polls += 1
        batch = client.batches.retrieve(batch.id)
    assert polls > 1 and batch.status == "completed"
    assert (batch.request_counts.total, batch.request_counts.completed, batch.request_counts.failed) == (3, 2, 1)
    output = [json.loads(line) for line in client.files.content(batch.output_file_id).text.splitlines()]
    by_id = {line["custom_id"]: line for line in output}
    assert set(by_id) == {"r1", "r2"}
    assert by_id["r1"]["response"]["status_code"] == 200 and by_id["r1"]["error"] is None
    assert by_id["r1"]["response"]["body"]["choices"][0]["message"]["content"] == "answer one"
    errors = [json.loads(line) for line in client.files.content(batch.error_file_id).text.splitlines()]
    assert errors[0]["custom_id"] == "r3" and errors[0]["response"]["status_code"] == 500
    assert server.stats.batches_created == 1 and server.stats.batch_requests == 3
    assert server.stats.completions == 2 and server.stats.faults[Fault.SERVER_ERROR] == 1


def test_openai_batch_rejects_bad_input_files(server) -> None:
    client = openai.OpenAI(api_key=KEY, base_url=server.openai_base_url, max_retries=0)
    upload = client.files.create(file=("in.jsonl", io.BytesIO(b'{"custom_id": "a"}\nnot json')), purpose="batch")
    with pytest.raises(openai.BadRequestError, match="line 1"):
        client.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h")
    with pytest.raises(openai.BadRequestError, match="upload it"):
        client.batches.create(input_file_id="file-missing", endpoint="/v1/chat/completions", completion_window="24h")
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_unknown")


def test_anthropic_message_batch_create_poll_results_async(server) -> None:
    server.inject(Fault.RATE_LIMIT, match="limited")

    async def go():
        async with anthropic.AsyncAnthropic(api_key=KEY, base_url=server.anthropic_base_url, max_retries=0) as client:
            spec = [{"type": "text", "text": "SPEC " * 80, "cache_control": {"type": "ephemeral"}}]
            batch = await client.messages.batches.create(requests=[
                {"custom_id": f"c{i}", "params": {"model": "c", "max_tokens": 30, "system": spec,
                                                   "messages": [{"role": "user", "content": text}]}}
                for i, text in enumerate(["first", "second", "limited"])])
            assert batch.processing_status == "in_progress" and batch.request_counts.processing == 3
            assert batch.results_url is None
            while batch.processing_status != "ended":
                await asyncio.sleep(0.05)
                batch = await client.messages.batches.retrieve(batch.id)
            results = [item async for item in await client.messages.batches.results(batch.id)]
            return batch, results

    batch, results = asyncio.run(go())
    assert (batch.request_counts.succeeded, batch.request_counts.errored) == (2, 1)
    by_id = {item.custom_id: item.result for item in results}
    assert by_id["c0"].type == "succeeded" and by_id["c0"].message.content[0].text == "answer first"
    assert by_id["c0"].message.usage.cache_creation_input_tokens == 100
    assert by_id["c1"].message.usage.cache_read_input_tokens == 100  # the prefix written by c0
    assert by_id["c2"].type == "errored" and by_id["c2"].error.error.type == "rate_limit_error"


def test_anthropic_batch_validates_params_and_can_be_cancelled(server) -> None:
    client = anthropic.Anthropic(api_key=KEY, base_url=server.anthropic_base_url, max_retries=0)
    with pytest.raises(anthropic.BadRequestError, match=r"requests\.0\.params\.max_tokens"):
        client.messages.batches.create(requests=[{"custom_id": "x", "params": {
            "model": "c", "messages": [{"role": "user", "content": "hi"}]}}])
    batch = client.messages.batches.create(requests=[{"custom_id": "x", "params": {
        "model": "c", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}}])
    cancelled = client.messages.batches.cancel(batch.id)
    assert cancelled.processing_status == "ended" and cancelled.request_counts.canceled == 1
    assert [r.result.type for r in client.messages.batches.results(batch.id)] == ["canceled"]
    time.sleep(0.4)  # past the delay: a cancelled batch is never answered
    assert server.stats.completions == 0


def test_openai_batch_of_legacy_completions(server) -> None:
    client = openai.OpenAI(api_key=KEY, base_url=server.openai_base_url, max_retries=0)
    line = {"custom_id": "b", "method": "POST", "url": "/v1/completions",
            "body": {"model": "base", "prompt": "Once upon", "max_tokens": 8}}
    upload = client.files.create(file=("in.jsonl", io.BytesIO(jsonl([line]))), purpose="batch")
    batch = client.batches.create(input_file_id=upload.id, endpoint="/v1/completions", completion_window="24h")
    while batch.status != "completed":
        time.sleep(0.05)
        batch = client.batches.retrieve(batch.id)
    record = json.loads(client.files.content(batch.output_file_id).text)
    assert record["response"]["body"]["choices"][0]["text"] == "answer Once upon"
