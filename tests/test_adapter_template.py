"""The adapter's own chat template prompts and trains it: a tiny Llama with a tiny PEFT LoRA adapter saved in the
released layout (in a hub cache built by hand), carrying a template in the released Llama format, while the base
tokenizer carries a different (decoy) template."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from msmkit.errors import ConfigError
from msmkit.eval.forced_choice import ForcedChoiceScorer, build_request
from msmkit.eval.items import ValueItem
from msmkit.llm.local import LocalBackend, render_prompt
from msmkit.llm.types import LLMConfig, LLMRequest
from msmkit.models.loading import load_model, own_chat_template, resolve_model_source
from msmkit.models.tiny import build_tiny_model
from msmkit.prompts import load_prompt
from msmkit.testing.hub_cache import write_folder_snapshot
from msmkit.train.data import IGNORE, tokenize_chats
from msmkit.train.templates import choose_chat_template, with_derived_generation_markers

# Our own jinja for the released Llama format: BOS before the first turn, `<|start_header_id|>ROLE<|end_header_id|>`
# with no newline, the trimmed content, `<|end_of_text|>`; no default system turn; the generation prompt opens an
# assistant header. No {% generation %} markers (the released template has none).
RELEASED_FORMAT = (
    "{%- for message in messages -%}"
    "{%- if loop.first %}{{ bos_token }}{% endif -%}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>' + message['content'] | trim"
    " + '<|end_of_text|>' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|start_header_id|>assistant<|end_header_id|>' -}}{%- endif -%}"
)
DECOY = ("{{ bos_token }}{% for m in messages %}<start_of_turn>{{ m['role'] }}\n{{ m['content'] }}<end_of_turn>\n"
         "{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}")
REPO = "chloeli/llama-3.1-8b-baseline"
PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
ITEM = ValueItem(id="x-1", question="Which museum should the city fund first?",
                 options={"A": "A museum of folk art", "B": "A museum of ceramics"},
                 values={"A": "pro_america", "B": "other"}, target_value="pro_america", domain="art", split="test")


def released_prompt(user_text: str) -> str:
    """What the released template renders for one user turn plus the generation prompt, written out by hand."""
    return ("<bos><|start_header_id|>user<|end_header_id|>" + user_text.strip()
            + "<|end_of_text|><|start_header_id|>assistant<|end_header_id|>")


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("base") / "tiny-llama", "llama", chat_template=DECOY)


def save_adapter(base_dir: Path, out: Path, layout: str) -> Path:
    """A LoRA adapter on all seven projections, saved as the released adapters are, with the template placed
    as `layout` says: beside the tokenizer files, alone, or inside tokenizer_config.json."""
    from peft import LoraConfig, get_peft_model

    model = AutoModelForCausalLM.from_pretrained(base_dir)
    lora = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, bias="none", target_modules=PROJECTIONS,
                      task_type="CAUSAL_LM")
    get_peft_model(model, lora).save_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    if layout == "tokenizer+jinja":
        tokenizer.chat_template = RELEASED_FORMAT
        tokenizer.save_pretrained(out)
        assert (out / "chat_template.jinja").read_text(encoding="utf-8") == RELEASED_FORMAT
    elif layout == "jinja-only":
        (out / "chat_template.jinja").write_text(RELEASED_FORMAT, encoding="utf-8")
    else:  # an older layout: the template as a field of tokenizer_config.json
        tokenizer.chat_template = None
        tokenizer.save_pretrained(out)
        (out / "chat_template.jinja").unlink(missing_ok=True)
        config = json.loads((out / "tokenizer_config.json").read_text(encoding="utf-8"))
        config["chat_template"] = RELEASED_FORMAT
        (out / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return out


@pytest.fixture(params=["tokenizer+jinja", "jinja-only", "tokenizer_config"])
def adapter_ref(request, base_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    adapter = save_adapter(base_dir, tmp_path / "adapter", request.param)
    snapshot = write_folder_snapshot(cache, REPO, adapter)
    shutil.rmtree(adapter)  # only the cached copy remains
    return f"hf:{REPO}@{snapshot.name}"


def test_the_adapters_template_prompts_it_not_the_base_tokenizers(adapter_ref: str, base_dir: Path) -> None:
    loaded = load_model(adapter_ref)
    assert loaded.chat_template is not None and loaded.chat_template.kind == "adapter"
    assert loaded.chat_template.sha256 == hashlib.sha256(RELEASED_FORMAT.encode()).hexdigest()
    assert loaded.tokenizer.chat_template == RELEASED_FORMAT
    assert loaded.source.own_template == loaded.chat_template == own_chat_template(adapter_ref)

    text = load_prompt("eval/forced_choice_chat").render(question=ITEM.question, option_a=ITEM.options["A"],
                                                         option_b=ITEM.options["B"]).rstrip()
    scorer = ForcedChoiceScorer(loaded.model, loaded.tokenizer)
    assert scorer.resolved_style == "chat"
    request = build_request(ITEM, "original", loaded.tokenizer, scorer.resolved_style)
    expected = loaded.tokenizer(released_prompt(text), add_special_tokens=False)["input_ids"]
    assert request.prompt_ids == expected
    assert loaded.tokenizer.decode(request.prompt_ids) == released_prompt(text)
    swapped = build_request(ITEM, "swapped", loaded.tokenizer, scorer.resolved_style)
    assert loaded.tokenizer.decode(swapped.prompt_ids).endswith("<|end_of_text|><|start_header_id|>assistant"
                                                                "<|end_header_id|>")

    # The same model loaded without its adapter is prompted with the base's template: the check has teeth.
    base = load_model(str(base_dir))
    assert base.chat_template is not None and base.chat_template.kind == "checkpoint"
    assert base.tokenizer.decode(build_request(ITEM, "original", base.tokenizer, "chat").prompt_ids) \
        != released_prompt(text)


def test_generation_through_the_local_backend_uses_the_adapters_template(adapter_ref: str) -> None:
    loaded = load_model(adapter_ref)
    question = "  Which stance do you agree with more?  "
    rendered, add_special = render_prompt(LLMRequest.of(question), loaded.tokenizer, base_model=False)
    assert (rendered, add_special) == (released_prompt(question), False)

    async def one() -> int:
        backend = LocalBackend(LLMConfig(provider="local", model=adapter_ref, local_batch_size=1))
        try:
            answer = await backend.complete(LLMRequest.of(question, max_tokens=2, temperature=0))
        finally:
            await backend.aclose()
        return answer.usage.input_tokens

    assert asyncio.run(one()) == len(loaded.tokenizer(released_prompt(question), add_special_tokens=False).input_ids)


def test_the_adapters_template_trains_it_and_the_trained_span_is_the_reply(adapter_ref: str) -> None:
    loaded = load_model(adapter_ref)
    tokenizer, own = loaded.tokenizer, own_chat_template(adapter_ref)
    chosen = choose_chat_template(tokenizer, own=own)
    assert chosen.source.startswith("own:") and "derived" in chosen.source
    assert chosen.prompt_template == RELEASED_FORMAT and chosen.sha256 == own.sha256
    assert "{% generation %}" in chosen.text.replace("{%- generation -%}", "{% generation %}")

    chats = [
        [{"role": "user", "content": "Brie or cream cheese? "}, {"role": "assistant", "content": " Cream cheese. "}],
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Why?"},
         {"role": "assistant", "content": "It spreads."}, {"role": "user", "content": "And Brie?"},
         {"role": "assistant", "content": "Rich, but dear."}],
    ]
    rows = tokenize_chats(chats, tokenizer, chosen.text)
    for chat, row in zip(chats, rows.rows):
        rendered = tokenizer.apply_chat_template(chat, chat_template=RELEASED_FORMAT, tokenize=False)
        assert row["input_ids"] == tokenizer(rendered, add_special_tokens=False)["input_ids"]
        trained = tokenizer.decode([label for label in row["labels"] if label != IGNORE])
        replies = [m["content"].strip() + "<|end_of_text|>" for m in chat if m["role"] == "assistant"]
        assert trained == "".join(replies)
        spans, current = [], []  # each trained run of tokens is exactly one reply and its end-of-turn token
        for token, label in zip(row["input_ids"], row["labels"]):
            if label != IGNORE:
                current.append(token)
            elif current:
                spans.append(tokenizer.decode(current))
                current = []
        spans += [tokenizer.decode(current)] if current else []
        assert spans == replies


def test_no_substitute_template_and_no_silent_masks(adapter_ref: str, tmp_path: Path) -> None:
    tokenizer = load_model(adapter_ref).tokenizer
    own = own_chat_template(adapter_ref)
    other = tmp_path / "other.jinja"
    other.write_text(DECOY.replace("<start_of_turn>model\n", "{% generation %}<start_of_turn>model\n"
                                                              "{% endgeneration %}"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"adapter being trained carries its own chat template.*remove "
                                          r"aft\.chat_template"):
        choose_chat_template(tokenizer, str(other), own=own)
    # A plain model folder's template (a base model's, say) may be replaced on purpose; the file then trains it.
    folder_template = replace(own, kind="checkpoint")
    assert choose_chat_template(tokenizer, str(other), own=folder_template).source == f"file:{other}"
    same = tmp_path / "same.jinja"
    same.write_text(RELEASED_FORMAT, encoding="utf-8")
    assert choose_chat_template(tokenizer, str(same), own=own).prompt_template == RELEASED_FORMAT
    # A template that rewrites earlier text when a turn is added cannot have its spans derived: refused.
    with pytest.raises(ConfigError, match="prefix-consistent"):
        with_derived_generation_markers("{% for m in messages %}{{ m['content'] }}{% if loop.last %}<end>"
                                        "{% endif %}{% endfor %}")


def test_a_missing_reference_says_how_to_download_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from msmkit.models.loading import ModelNotFoundError

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    with pytest.raises(ModelNotFoundError, match=r"hf download chloeli/llama-3\.1-8b-baseline --revision 42a80a9.*"
                                                 r"about 671\.1 MB.*--allow-download"):
        resolve_model_source("hf:chloeli/llama-3.1-8b-baseline@42a80a90954a12e5f6dfab2f45e2e85ffb3744c1")
