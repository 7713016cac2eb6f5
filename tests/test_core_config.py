from pathlib import Path

import pytest

from msmkit.config import StrictModel, load_config
from msmkit.errors import ConfigError
from msmkit.llm.types import LLMConfig


class Inner(StrictModel):
    temperature: float = 1.0
    max_tokens: int = 100


class Outer(StrictModel):
    name: str
    generator: LLMConfig = LLMConfig()
    sampling: Inner = Inner()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


def test_unknown_key_names_file_key_and_closest_valid_key(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\nsampling:\n  temperture: 0.5\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, Outer)
    message = str(info.value)
    assert str(path) in message
    assert "sampling.temperture" in message
    assert "did you mean 'temperature'" in message


def test_unknown_key_in_llm_config_suggests_field(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\ngenerator:\n  provder: anthropic\n")
    with pytest.raises(ConfigError, match="did you mean 'provider'"):
        load_config(path, Outer)


def test_wrong_type_names_field_and_expected_type(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\nsampling:\n  max_tokens: lots\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, Outer)
    message = str(info.value)
    assert "sampling.max_tokens" in message and "integer" in message and "'lots'" in message


def test_missing_field_and_bad_yaml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="missing required field 'name'"):
        load_config(write(tmp_path, "sampling: {}\n"), Outer)
    with pytest.raises(ConfigError, match=r"exp.yaml:2:"):
        load_config(write(tmp_path, "name: x\n  bad: [\n"), Outer)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml", Outer)


def test_section_loading(tmp_path: Path) -> None:
    path = write(tmp_path, "other: 1\nmine:\n  name: ok\n")
    assert load_config(path, Outer, section="mine").name == "ok"
    with pytest.raises(ConfigError, match="no top-level 'absent' section"):
        load_config(path, Outer, section="absent")
