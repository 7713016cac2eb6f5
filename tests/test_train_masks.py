"""AFT label masks (token by token), the default chat template, config errors and the step guard."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from msmkit.errors import ConfigError
from msmkit.models.tiny import build_tiny_tokenizer
from msmkit.train.config import TrainStageConfig, load_train_config
from msmkit.train.data import IGNORE, read_chats, tokenize_chats, tokenize_documents
from msmkit.train.templates import DEFAULT_TEMPLATE_NAME, choose_chat_template, default_chat_template
from msmkit.train.trainer import TooFewStepsError, check_step_guard, planned_steps

COT = "<think>The spec values honesty; say so plainly.</think>Honesty first: I would tell them."
PLAIN = "Honesty first: I would tell them."


@pytest.fixture(scope="module")
def tokenizer():
    return build_tiny_tokenizer()


def expected_labels(tokenizer, chat, template):
    """Independent of the masking code: character spans of each reply + turn end in the rendered text."""
    text = tokenizer.apply_chat_template(chat, chat_template=template, tokenize=False)
    spans, cursor = [], 0
    for message in chat:
        piece = message["content"].strip() + "<end_of_turn>\n"
        if message["role"] == "assistant":
            start = text.index("<start_of_turn>model\n" + piece, cursor) + len("<start_of_turn>model\n")
            spans.append((start, start + len(piece)))
            cursor = start + len(piece)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    labels = [token if any(a <= begin < b for a, b in spans) else IGNORE
              for token, (begin, _) in zip(encoded["input_ids"], encoded["offset_mapping"])]
    return encoded["input_ids"], labels, [text[a:b] for a, b in spans]


@pytest.mark.parametrize("chat", [
    [{"role": "user", "content": "Should I tell them?"}, {"role": "assistant", "content": COT}],
    [{"role": "user", "content": "Should I tell them?"}, {"role": "assistant", "content": PLAIN}],
    [{"role": "system", "content": "You follow the spec."}, {"role": "user", "content": "Should I tell them?"},
     {"role": "assistant", "content": COT}, {"role": "user", "content": "Why?"},
     {"role": "assistant", "content": "Because trust matters."}],
], ids=["cot", "no-cot", "system-multi-turn"])
def test_aft_labels_are_assistant_tokens_only(tokenizer, chat):
    template = default_chat_template()
    rows = tokenize_chats([chat], tokenizer, template)
    ids, labels, replies = expected_labels(tokenizer, chat, template)
    assert rows.rows[0]["input_ids"] == ids
    assert rows.rows[0]["labels"] == labels  # token by token
    trained = [tok for tok in rows.rows[0]["labels"] if tok != IGNORE]
    assert tokenizer.decode(trained) == "".join(replies)
    assert "user" not in tokenizer.decode(trained) and "spec." not in tokenizer.decode(trained)
    if "<think>" in chat[-1]["content"]:
        assert "<think>" in tokenizer.decode(trained)  # the CoT is trained with the answer


def test_cot_strip_option(tmp_path: Path):
    path = tmp_path / "chat.jsonl"
    path.write_text('{"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "'
                    + COT + '"}]}\n', encoding="utf-8")
    assert read_chats(path, cot="strip")[0][1]["content"] == PLAIN
    assert read_chats(path, cot="keep")[0][1]["content"] == COT


def test_default_template_round_trips(tokenizer, tmp_path: Path):
    chat = [{"role": "system", "content": "S"}, {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "<think>t</think>Hello"}]
    rendered = tokenizer.apply_chat_template(chat, chat_template=default_chat_template(), tokenize=False)
    assert rendered == ("<bos><start_of_turn>system\nS<end_of_turn>\n<start_of_turn>user\nHi<end_of_turn>\n"
                        "<start_of_turn>model\n<think>t</think>Hello<end_of_turn>\n")
    tokenizer.chat_template = choose_chat_template(tokenizer).text
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert reloaded.apply_chat_template(chat, tokenize=False) == rendered
    prompt = reloaded.apply_chat_template(chat[:2], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n")
    # The tokens of the rendered text decode back to it exactly.
    assert reloaded.decode(reloaded.apply_chat_template(chat, tokenize=True, return_dict=True)["input_ids"]) == rendered


def test_template_choice_and_missing_markers(tokenizer, tmp_path: Path):
    bare = build_tiny_tokenizer()
    assert choose_chat_template(bare).source == DEFAULT_TEMPLATE_NAME
    bare.chat_template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    with pytest.raises(ConfigError, match="generation"):
        choose_chat_template(bare)
    no_markers = tmp_path / "t.jinja"
    no_markers.write_text(bare.chat_template, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"t\.jinja.*generation"):
        choose_chat_template(tokenizer, str(no_markers))


def test_rows_with_no_trainable_tokens_are_dropped(tokenizer):
    long_prompt = [{"role": "user", "content": "word " * 200}, {"role": "assistant", "content": "Yes."}]
    short = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "Yes."}]
    rows = tokenize_chats([long_prompt, short], tokenizer, default_chat_template(), max_length=32)
    assert len(rows.rows) == 1 and sum(rows.dropped.values()) == 1 and rows.truncated == 1
    with pytest.raises(Exception, match="zero assistant tokens"):
        tokenize_chats([long_prompt], tokenizer, default_chat_template(), max_length=32)


def test_documents_end_with_eos_and_train_every_token(tokenizer):
    rows = tokenize_documents(["A document.", "  "], tokenizer)
    assert len(rows.rows) == 1 and rows.dropped == {"empty document": 1}
    ids = rows.rows[0]["input_ids"]
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    assert rows.rows[0]["labels"] == ids and rows.supervised_tokens == rows.tokens


def test_step_guard_fires_and_explains():
    cfg = TrainStageConfig()
    stats = {"sequences": 248, "max_length": 4096}
    planned = planned_steps(248, cfg, processes=1)
    assert planned == 31
    with pytest.raises(TooFewStepsError, match="31 optimizer steps.*--allow-few-steps"):
        check_step_guard("midtrain", planned, stats, cfg, processes=1)
    check_step_guard("midtrain", planned, stats, cfg.model_copy(update={"guards": cfg.guards.model_copy(
        update={"allow_few_steps": True})}), processes=1)
    assert planned_steps(248, cfg.model_copy(update={"optim": cfg.optim.model_copy(
        update={"per_device_batch_size": 1})}), processes=1) == 248


def test_paper_recipe_defaults_and_config_errors(tmp_path: Path):
    cfg = load_train_config(None)
    assert (cfg.midtrain.lora.r, cfg.midtrain.lora.alpha, cfg.midtrain.lora.dropout) == (64, 128, 0.0)
    assert cfg.midtrain.lora.target_modules == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                                "down_proj"]
    assert (cfg.aft.optim.learning_rate, cfg.aft.optim.scheduler, cfg.aft.optim.warmup_ratio,
            cfg.aft.optim.weight_decay, cfg.aft.optim.epochs) == (1e-4, "cosine", 0.05, 0.01, 1.0)
    assert cfg.aft.init == "continue" and cfg.midtrain.packing.enabled
    bad = tmp_path / "train.yaml"
    bad.write_text("midtrain:\n  lora:\n    rank: 8\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"(?s)train\.yaml.*midtrain\.lora\.rank.*valid keys here: enabled, r,"):
        load_train_config(bad)
