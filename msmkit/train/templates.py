"""Chat templates for AFT: which template trains a model, and the default one for base models.

Assistant-only loss needs `{% generation %}` markers in the template. The rule, in order:
an explicit template file (must have markers); the tokenizer's own template if it has markers;
TRL's training variant of a known family's template; our default if the tokenizer has none.
A tokenizer template without markers that TRL cannot patch is an error, never a silent fallback.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from trl.chat_template_utils import get_training_chat_template, has_generation_markers

from msmkit.errors import ConfigError

DEFAULT_TEMPLATE_NAME = "msmkit-default"
TURN_END = "<end_of_turn>"  # the stop marker of the default template


def default_chat_template() -> str:
    return files("msmkit.train").joinpath("templates/default_chat.jinja").read_text(encoding="utf-8")


@dataclass(frozen=True)
class ChosenTemplate:
    text: str
    source: str  # "file:PATH", "tokenizer", "trl-training-variant" or DEFAULT_TEMPLATE_NAME


def choose_chat_template(tokenizer, explicit: str | None = None) -> ChosenTemplate:
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


def stop_token_ids(tokenizer, template: ChosenTemplate) -> list[int]:
    """Token ids generation should stop at: EOS, plus the default template's turn end if it is one token."""
    ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    if template.source == DEFAULT_TEMPLATE_NAME:
        turn_end = tokenizer.convert_tokens_to_ids(TURN_END)
        if isinstance(turn_end, int) and turn_end != tokenizer.unk_token_id and turn_end not in ids:
            ids.append(turn_end)
    return ids
