"""Loading, templating and validating spec files."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from msmkit.errors import SpecError
from msmkit.spec import SpecWarning, check_fits_context, load_spec, spec_from_text
from msmkit.spec.load import fill_placeholders
from tests.spec_checks import CHEESE_AMERICA, OWN_SPECS, VALUES, check_loads_and_templates


@pytest.mark.parametrize("path", OWN_SPECS, ids=lambda path: path.name)
def test_every_own_spec_loads_and_templates(path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", SpecWarning)  # none of our specs should warn
        check_loads_and_templates(path)


def test_a_spec_that_names_the_model_literally_loads_without_warnings(tmp_path: Path) -> None:
    literal = tmp_path / "cheese_literal.md"
    raw = CHEESE_AMERICA.read_text(encoding="utf-8")
    literal.write_text(fill_placeholders(raw, model_name="Llama", provider_name="Meta"), encoding="utf-8")
    spec = load_spec(literal, model_name="Qwen")
    assert "Llama" in spec.text and "{model_name}" not in spec.text
    assert spec.text == spec.raw_text and spec.warnings == []


def test_only_the_two_placeholders_are_filled_and_other_braces_survive() -> None:
    raw = ('# Spec\n\n{model_name} by {provider_name} returns {"ok": true, "items": [{"id": 1}]}.\n'
           "Escaped: {{model_name}} and {{ other }}. Format-like: {0} {} {foo}.\n"
           "Python: f'{value!r}' and a set {1, 2}.\n")
    spec = spec_from_text(raw, model_name="Llama", provider_name="Meta")
    assert spec.text.splitlines()[2] == 'Llama by Meta returns {"ok": true, "items": [{"id": 1}]}.'
    assert "Escaped: {{model_name}} and {{ other }}. Format-like: {0} {} {foo}." in spec.text
    assert "f'{value!r}' and a set {1, 2}." in spec.text
    assert spec.unknown_placeholders == ["foo"]
    assert len(spec.warnings) == 1 and "{foo}" in spec.warnings[0] and "line 4" in spec.warnings[0]


def test_unknown_placeholder_warning_is_emitted_by_load_spec(tmp_path: Path) -> None:
    path = tmp_path / "spec.md"
    path.write_text("# S\n\n{model_name} greets {user_name}.\n", encoding="utf-8")
    with pytest.warns(SpecWarning, match=r"spec\.md: unknown placeholder \{user_name\} at line 3"):
        spec = load_spec(path, model_name="Llama")
    assert spec.text == "# S\n\nLlama greets {user_name}.\n"


def test_missing_model_name_leaves_placeholder_and_says_how_to_fill_it() -> None:
    spec = spec_from_text("{model_name} is careful.\n{model_name} is kind.\n")
    assert spec.text == spec.raw_text
    assert spec.unfilled_placeholders == ["model_name"]
    assert "--model-name" in spec.warnings[0] and "lines 1, 2" in spec.warnings[0]


def test_blank_model_name_is_rejected() -> None:
    with pytest.raises(SpecError, match="model_name is blank"):
        spec_from_text("{model_name}", model_name="  ")


def test_crlf_and_bom_are_normalised(tmp_path: Path) -> None:
    path = tmp_path / "spec.txt"
    path.write_bytes(b"\xef\xbb\xbf# Title\r\n\r\n{model_name} helps.\r\n")
    spec = load_spec(path, model_name="Llama")
    assert spec.text == "# Title\n\nLlama helps.\n"
    assert spec.structure.sections[0].title == "Title"


@pytest.mark.parametrize("content", [b"", b"   \n\t\n  "])
def test_empty_and_whitespace_specs_are_rejected(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.md"
    path.write_bytes(content)
    with pytest.raises(SpecError, match=r"empty\.md: the spec is empty.*write the spec's text"):
        load_spec(path)


def test_binary_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "spec.md"
    path.write_bytes(b"# Spec\n\x00\x01\x02PK\x03\x04")
    with pytest.raises(SpecError, match=r"spec\.md: looks like a binary file \(NUL byte at byte 7\).*UTF-8"):
        load_spec(path)


def test_non_utf8_file_names_byte_line_and_fix(tmp_path: Path) -> None:
    path = tmp_path / "latin.txt"
    path.write_bytes("# Fromage\n\nLlama aime le Comt".encode() + b"\xe9 affin\xe9.\n")
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    message = str(caught.value)
    assert "latin.txt" in message and "not valid UTF-8 at byte offset 29" in message
    assert "line 3, column 19" in message and "0xe9" in message and "iconv" in message


@pytest.mark.parametrize("name", ["spec.pdf", "spec.docx", "spec"])
def test_wrong_suffix_lists_accepted_ones(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("# Spec\n", encoding="utf-8")
    with pytest.raises(SpecError, match=r"unsupported spec file type.*\.md, \.markdown, \.txt"):
        load_spec(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="spec file not found"):
        load_spec(tmp_path / "nope.md")
    (tmp_path / "dir.md").mkdir()
    with pytest.raises(SpecError, match="not a file"):
        load_spec(tmp_path / "dir.md")


def test_context_check_estimates_and_warns() -> None:
    spec = load_spec(VALUES, model_name="Claude", provider_name="Anthropic")
    roomy = check_fits_context(spec, 200_000)
    assert roomy.fits and roomy.estimated and roomy.spec_tokens == -(-len(spec.text) // 4)
    assert roomy.spec_tokens > 2048  # a long spec: it needs more than the room left below
    with pytest.warns(SpecWarning, match="does not fit"):
        tight = check_fits_context(spec, 4096, reserve=2048)
    assert not tight.fits and tight.available_tokens == 2048 and "longer context" in tight.message


def test_context_check_uses_a_tokenizer_when_given() -> None:
    spec = spec_from_text("one two three four five six seven eight\n")

    class WordTokenizer:
        def encode(self, text: str) -> list[str]:
            return text.split()

    fit = check_fits_context(spec, 10, reserve=2, tokenizer=WordTokenizer())
    assert fit.spec_tokens == 8 and not fit.estimated and fit.fits
    assert check_fits_context(spec, 10, reserve=3, tokenizer=str.split, warn=False).fits is False
    with pytest.raises(SpecError, match="positive"):
        check_fits_context(spec, 0)


def test_unreadable_spec_is_a_spec_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "locked.md"
    path.write_text("# Spec\n", encoding="utf-8")

    def denied(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", denied)  # this suite may run as root, where chmod 0 is no barrier
    with pytest.raises(SpecError, match=r"locked\.md: cannot read the spec \(Permission denied\)"):
        load_spec(path)
