"""Load a Model Spec file, validate it, and fill its `{model_name}` / `{provider_name}` placeholders.

Only those two exact placeholders are filled; every other brace (JSON snippets, `{foo}`, `{{`) is
left exactly as written, so specs never need escaping. `{{model_name}}` is the escape for a literal
`{model_name}`. Unknown `{identifier}` placeholders are reported as warnings.
"""

from __future__ import annotations

import hashlib
import math
import re
import warnings
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel, Field

from msmkit.errors import SpecError
from msmkit.spec.structure import SpecStructure, parse_structure

ACCEPTED_SUFFIXES = (".md", ".markdown", ".txt")
KNOWN_PLACEHOLDERS = ("model_name", "provider_name")
CHARS_PER_TOKEN = 4.0  # rough English average, used when no tokenizer is given
DEFAULT_CONTEXT_RESERVE = 4096  # tokens left for instructions and the generated output

_PLACEHOLDER = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]*)\}(?!\})")
# Header that `msm spec variant` writes at the top of a variant file; not part of the spec text.
_VARIANT_HEADER = re.compile(r"\A<!--\s*msmkit-variant\b.*?-->[ \t]*\n?", re.DOTALL)


class SpecWarning(UserWarning):
    """Something about a spec that the user should look at but that does not stop a run."""


class ModelSpec(BaseModel):
    """A loaded, templated Model Spec and its parsed structure."""

    path: Path | None = None
    raw_text: str  # the file's text (newlines normalised to \n)
    text: str  # the templated text every stage uses
    sha256: str  # of raw_text: identifies the source spec
    text_sha256: str  # of text: identifies what generators saw
    model_name: str | None = None
    provider_name: str | None = None
    structure: SpecStructure
    unknown_placeholders: list[str] = Field(default_factory=list)
    unfilled_placeholders: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)  # unknown-placeholder messages first, then unfilled ones
    variant_header: str | None = None  # the msmkit-variant comment, when the file is a variant

    @property
    def name(self) -> str:
        return self.path.name if self.path else "<text>"

    def line_of(self, offset: int) -> int:
        return self.text.count("\n", 0, offset) + 1


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def fill_placeholders(text: str, *, model_name: str | None, provider_name: str | None) -> str:
    values = {"model_name": model_name, "provider_name": provider_name}

    def substitute(match: re.Match[str]) -> str:
        value = values.get(match.group(1))
        return match.group(0) if value is None else value

    return _PLACEHOLDER.sub(substitute, text)


def split_variant_header(raw_text: str) -> tuple[str | None, str]:
    """(the `<!-- msmkit-variant ... -->` header or None, the spec text after it)."""
    match = _VARIANT_HEADER.match(raw_text)
    return (match.group(0).strip(), raw_text[match.end():]) if match else (None, raw_text)


def _placeholder_lines(text: str) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for match in _PLACEHOLDER.finditer(text):
        lines = found.setdefault(match.group(1), [])
        line = text.count("\n", 0, match.start()) + 1
        if not lines or lines[-1] != line:
            lines.append(line)
    return found


def _lines_note(lines: list[int]) -> str:
    shown = ", ".join(str(line) for line in lines[:5])
    return f"line{'s' if len(lines) > 1 else ''} {shown}{' ...' if len(lines) > 5 else ''}"


def spec_from_text(raw_text: str, *, model_name: str | None = None, provider_name: str | None = None,
                   path: Path | None = None) -> ModelSpec:
    """Build a ModelSpec from text already read (variants, tests, generated specs)."""
    source = str(path) if path else "spec text"
    raw_text = raw_text.replace("\r\n", "\n").replace("\r", "\n")
    if not raw_text.strip():
        raise SpecError(f"{source}: the spec is empty (or only whitespace); write the spec's text into it")
    header, body = split_variant_header(raw_text)
    for label, value in (("model_name", model_name), ("provider_name", provider_name)):
        if value is not None and not value.strip():
            raise SpecError(f"{source}: {label} is blank; give a name such as 'Llama' or leave it unset")
    text = fill_placeholders(body, model_name=model_name, provider_name=provider_name)
    found = _placeholder_lines(body)
    messages: list[str] = []
    unknown = sorted(name for name in found if name not in KNOWN_PLACEHOLDERS)
    for name in unknown:
        messages.append(
            f"{source}: unknown placeholder {{{name}}} at {_lines_note(found[name])} is left as written; "
            f"only {{model_name}} and {{provider_name}} are filled (write {{{{{name}}}}} to silence this)")
    unfilled = [name for name in KNOWN_PLACEHOLDERS
                if name in found and {"model_name": model_name, "provider_name": provider_name}[name] is None]
    for name in unfilled:
        flag = name.replace("_", "-")
        messages.append(f"{source}: {{{name}}} appears at {_lines_note(found[name])} but no {name} was given; "
                        f"it stays unfilled (pass --{flag} / {name}=...)")
    return ModelSpec(
        path=path, raw_text=raw_text, text=text, sha256=_sha256(raw_text), text_sha256=_sha256(text),
        model_name=model_name, provider_name=provider_name, structure=parse_structure(text),
        unknown_placeholders=unknown, unfilled_placeholders=unfilled, warnings=messages,
        variant_header=header)


def read_spec_text(path: str | Path) -> str:
    """The file's text, or a SpecError that names the file, the problem and the fix."""
    target = Path(path)
    if target.suffix.lower() not in ACCEPTED_SUFFIXES:
        raise SpecError(f"{target}: unsupported spec file type '{target.suffix or '(none)'}'; "
                        f"save the spec as one of {', '.join(ACCEPTED_SUFFIXES)}")
    if not target.exists():
        raise SpecError(f"{target}: spec file not found")
    if not target.is_file():
        raise SpecError(f"{target}: not a file; pass the path of a spec file")
    try:
        data = target.read_bytes()
    except OSError as exc:
        raise SpecError(f"{target}: cannot read the spec ({exc.strerror or exc}); "
                        "check the path and its permissions") from None
    if not data.strip():
        raise SpecError(f"{target}: the spec is empty (or only whitespace); write the spec's text into it")
    if b"\x00" in data:
        offset = data.index(b"\x00")
        raise SpecError(f"{target}: looks like a binary file (NUL byte at byte {offset}); a spec must be "
                        f"plain UTF-8 text (.md or .txt), e.g. exported from your editor as plain text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
        offset = exc.start + bom
        line = data.count(b"\n", 0, offset) + 1
        column = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
        raise SpecError(
            f"{target}: not valid UTF-8 at byte offset {offset} (line {line}, column {column}: byte "
            f"0x{data[offset]:02x}); re-save the file as UTF-8, e.g. `iconv -f latin1 -t utf-8 "
            f"{target.name} > fixed{target.suffix}`") from None


def load_spec(path: str | Path, *, model_name: str | None = None, provider_name: str | None = None,
              warn: bool = True) -> ModelSpec:
    """Load, validate and template a spec. Warnings are kept on `.warnings` and, with `warn`, emitted."""
    target = Path(path)
    spec = spec_from_text(read_spec_text(target), model_name=model_name, provider_name=provider_name,
                          path=target)
    if warn:
        for message in spec.warnings:
            warnings.warn(message, SpecWarning, stacklevel=2)
    return spec


class ContextFit(BaseModel):
    spec_tokens: int
    context_window_tokens: int
    reserve_tokens: int
    estimated: bool  # True when counted at ~4 characters per token rather than with a tokenizer

    @property
    def available_tokens(self) -> int:
        return self.context_window_tokens - self.reserve_tokens

    @property
    def fits(self) -> bool:
        return self.spec_tokens <= self.available_tokens

    @property
    def message(self) -> str:
        how = "estimated at ~4 characters/token" if self.estimated else "counted with the tokenizer"
        head = (f"the spec is {self.spec_tokens:,} tokens ({how}); the generator's context is "
                f"{self.context_window_tokens:,} tokens with {self.reserve_tokens:,} reserved for "
                f"instructions and output, leaving {self.available_tokens:,}")
        if self.fits:
            return head
        return (head + ": the spec does not fit. Use a generator with a longer context, shorten the spec, "
                "or lower the reserve if your outputs are short")


def count_tokens(text: str, tokenizer: Any | None = None) -> tuple[int, bool]:
    """(tokens, estimated). `tokenizer` is a callable or an object with `.encode` (e.g. a HF tokenizer)."""
    if tokenizer is None:
        return math.ceil(len(text) / CHARS_PER_TOKEN), True
    encode: Callable[[str], Any] = getattr(tokenizer, "encode", tokenizer)
    return len(encode(text)), False


def check_fits_context(spec: ModelSpec, context_window_tokens: int, *, reserve: int = DEFAULT_CONTEXT_RESERVE,
                       tokenizer: Any | None = None, warn: bool = True) -> ContextFit:
    """Does the spec leave room in the generator's context? Emits a SpecWarning when it does not."""
    if context_window_tokens <= 0:
        raise SpecError(f"context window must be a positive number of tokens, got {context_window_tokens}")
    tokens, estimated = count_tokens(spec.text, tokenizer)
    fit = ContextFit(spec_tokens=tokens, context_window_tokens=context_window_tokens,
                     reserve_tokens=max(0, reserve), estimated=estimated)
    if warn and not fit.fits:
        warnings.warn(f"{spec.name}: {fit.message}", SpecWarning, stacklevel=2)
    return fit
