"""Chat templates for AFT: which template trains a model, and the default one for base models.

Assistant-only loss needs `{% generation %}` markers in the template. The rule, in order:
the adapter's or checkpoint's own template when it carries one (`own`, see below; an explicit file
may replace a model folder's template, never an adapter's); an explicit template file (must have markers);
the tokenizer's own template if it has markers; TRL's training variant of a known family's template; our
default if the tokenizer has none. A tokenizer template without markers that TRL cannot patch is an error,
never a silent fallback.

An own template (msmkit.models.loading.own_chat_template, e.g. the released Llama adapters') is what
trains the model, never a substitute. When it has no markers, `with_derived_generation_markers` wraps it
unchanged: the wrapper renders the conversation with the own template up to each assistant turn (with the
generation prompt) and up to the end of that turn, emits the difference inside `{% generation %}`, and
checks that each rendering extends the previous one (a template that rewrites earlier turns is refused).
So the text is exactly the own template's, and the trained span of a turn is its reply plus whatever the
template closes the turn with (the end-of-turn token the model must learn to stop at).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from trl.chat_template_utils import get_training_chat_template, has_generation_markers

from msmkit.errors import ConfigError

logger = logging.getLogger(__name__)
DEFAULT_TEMPLATE_NAME = "msmkit-default"
TURN_END = "<end_of_turn>"  # the stop marker of the default template


def default_chat_template() -> str:
    return files("msmkit.train").joinpath("templates/default_chat.jinja").read_text(encoding="utf-8")


@dataclass(frozen=True)
class ChosenTemplate:
    text: str  # what tokenizes the training rows (it has {% generation %} markers)
    source: str  # "file:PATH", "tokenizer", "trl-training-variant", DEFAULT_TEMPLATE_NAME, "own:ORIGIN[...]"
    prompting_text: str | None = None  # the template to save with the model and prompt it with, when not `text`

    @property
    def prompt_template(self) -> str:
        """The template the trained model should be prompted with (and saved with)."""
        return self.prompting_text or self.text

    @property
    def sha256(self) -> str:
        """sha256 of `prompt_template`: the hash to record beside the run."""
        return hashlib.sha256(self.prompt_template.encode("utf-8")).hexdigest()


def choose_chat_template(tokenizer, explicit: str | None = None, *, own: Any = None) -> ChosenTemplate:
    """The template AFT trains with. `own` is the adapter's or checkpoint's own template (a
    `msmkit.models.loading.ChatTemplateInfo`, e.g. from `own_chat_template(cfg.model.name)`), or None."""
    if own is not None:
        chosen = _own_template(own, explicit)
        if chosen is not None:
            return chosen
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"aft.chat_template: {path} is not a file; point it at a .jinja chat template")
        text = path.read_text(encoding="utf-8")
        if not has_generation_markers(text):
            raise ConfigError(f"aft.chat_template: {path} has no {{% generation %}} ... {{% endgeneration %}} markers "
                              "around the assistant reply, so assistant-only loss cannot find what to train; add them "
                              f"(see {DEFAULT_TEMPLATE_NAME}: msmkit/train/templates/default_chat.jinja)")
        return ChosenTemplate(text, f"file:{path}")
    own = getattr(tokenizer, "chat_template", None)
    if isinstance(own, dict):
        own = own.get("default")
    if not own:
        return ChosenTemplate(default_chat_template(), DEFAULT_TEMPLATE_NAME)
    if has_generation_markers(own):
        return ChosenTemplate(own, "tokenizer")
    try:
        patched = get_training_chat_template(tokenizer)
    except ValueError:
        patched = None
    if patched and has_generation_markers(patched):
        return ChosenTemplate(patched, "trl-training-variant")
    raise ConfigError("the model's chat template has no {% generation %} markers and TRL has no training variant of "
                      "it, so assistant-only loss would train nothing. Set aft.chat_template to a copy of the "
                      "template with {% generation %} ... {% endgeneration %} around each assistant reply")


def _own_template(own: Any, explicit: str | None) -> ChosenTemplate | None:
    """The own template as the training template; None when an explicit file replaces a checkpoint folder's."""
    if explicit:
        path = Path(explicit)
        if not path.is_file() or path.read_text(encoding="utf-8") != own.text:
            if own.kind != "adapter":  # a model folder's template (often a base model's) may be replaced on purpose
                logger.warning("aft.chat_template %s replaces the template %s carries (sha256 %s)", explicit,
                               own.origin, own.sha256[:12])
                return None
            raise ConfigError(f"aft.chat_template is set to {explicit}, but the adapter being trained carries its own "
                              f"chat template ({own.origin}, sha256 {own.sha256[:12]}), which is what trains and "
                              "prompts it; remove aft.chat_template")
    if has_generation_markers(own.text):
        return ChosenTemplate(own.text, f"own:{own.origin}")
    return ChosenTemplate(with_derived_generation_markers(own.text), f"own:{own.origin} [assistant spans derived]",
                          prompting_text=own.text)


_WRAPPER_MACRO = "msmkit_own_template"
# The wrapper's head and tail; the own template goes verbatim between them, as the body of a macro.
_WRAPPER_HEAD = "{% macro " + _WRAPPER_MACRO + "(messages, add_generation_prompt) %}\n"
_WRAPPER_TAIL = """{% endmacro %}
{%- set msmkit = namespace(emitted='') -%}
{%- for message in messages -%}
{%- if message['role'] == 'assistant' -%}
{%- set before = MACRO(messages[:loop.index0], true) -%}
{%- set through = MACRO(messages[:loop.index], false) -%}
{%- if not before.startswith(msmkit.emitted) or not through.startswith(before) -%}
{{- raise_exception(ERROR) -}}
{%- endif -%}
{{- before[msmkit.emitted|length:] -}}
{%- generation -%}{{- through[before|length:] -}}{%- endgeneration -%}
{%- set msmkit.emitted = through -%}
{%- endif -%}
{%- endfor -%}
{%- set whole = MACRO(messages, add_generation_prompt) -%}
{%- if not whole.startswith(msmkit.emitted) -%}{{- raise_exception(ERROR) -}}{%- endif -%}
{{- whole[msmkit.emitted|length:] -}}""".replace("MACRO", _WRAPPER_MACRO).replace(
    "ERROR", "'the chat template is not prefix-consistent: rendering one more turn changed the text before it, "
             "so assistant spans cannot be derived; add {% generation %} markers to the template by hand'")
_PROBES = (
    [{"role": "user", "content": "Hello?"}, {"role": "assistant", "content": "Hi."}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": " One? "},
     {"role": "assistant", "content": " Two. "}, {"role": "user", "content": "Three?"},
     {"role": "assistant", "content": "Four."}],
)


def with_derived_generation_markers(template: str) -> str:
    """`template` wrapped so that it renders the same text with {% generation %} around each assistant turn.

    Checked on probe conversations: the wrapper must render exactly what the template renders, with and
    without the generation prompt; otherwise a ConfigError says to add markers by hand.
    """
    from transformers.utils.chat_template_utils import render_jinja_template

    wrapped = _WRAPPER_HEAD + template + _WRAPPER_TAIL
    for chat in _PROBES:
        for prompt, messages in ((False, chat), (True, chat[:-1])):
            try:
                expected = _render(render_jinja_template, template, messages, prompt)
                got = _render(render_jinja_template, wrapped, messages, prompt)
            except Exception as exc:  # noqa: BLE001 - jinja errors of the template itself or of the wrapper
                raise ConfigError(f"cannot derive assistant spans for the model's own chat template: {exc}") from None
            if got != expected:
                raise ConfigError("cannot derive assistant spans for the model's own chat template: wrapped, it "
                                  f"renders {got!r} instead of {expected!r}; add {{% generation %}} markers to it "
                                  "by hand")
    return wrapped


def _render(render: Any, template: str, messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
    rendered, _ = render(conversations=[messages], chat_template=template, add_generation_prompt=add_generation_prompt,
                         bos_token="<bos>", eos_token="<eos>")
    return rendered[0]


def stop_token_ids(tokenizer, template: ChosenTemplate) -> list[int]:
    """Token ids generation should stop at: EOS, plus the default template's turn end if it is one token."""
    ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    if template.source == DEFAULT_TEMPLATE_NAME:
        turn_end = tokenizer.convert_tokens_to_ids(TURN_END)
        if isinstance(turn_end, int) and turn_end != tokenizer.unk_token_id and turn_end not in ids:
            ids.append(turn_end)
    return ids
