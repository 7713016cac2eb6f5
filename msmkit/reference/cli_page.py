"""The CLI reference page, walked from the typer app: every command, its help, arguments and options."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

from msmkit.reference.markdown import anchor, cell, prose, table

INTRO = """# CLI reference

Generated from the `msm` command itself when the site is built. `msm COMMAND --help` prints the same
help in the terminal. Options of `msm` itself go before the command: `msm --verbose train ...`.
"""


@dataclass(frozen=True)
class CommandDoc:
    path: tuple[str, ...]  # ("msm", "generate", "corpus")
    command: Any  # typer's click-style command object
    context: Any

    @property
    def name(self) -> str:
        return " ".join(self.path)


def walk_commands(app: Any = None) -> Iterator[CommandDoc]:
    """Every command and group of the app, depth first, in `--help` order; hidden ones skipped."""
    from typer.main import get_command

    if app is None:
        from msmkit.cli.app import app
    root = get_command(app)
    yield from _walk(root, ("msm",), root.context_class(root, info_name="msm"))


def _walk(command: Any, path: tuple[str, ...], context: Any) -> Iterator[CommandDoc]:
    yield CommandDoc(path, command, context)
    if not hasattr(command, "list_commands"):
        return
    for name in command.list_commands(context):
        child = command.get_command(context, name)
        if child is None or getattr(child, "hidden", False):
            continue
        yield from _walk(child, (*path, name), child.context_class(child, info_name=name, parent=context))


def option_names(parameter: Any) -> list[str]:
    return [*parameter.opts, *parameter.secondary_opts]


def is_argument(parameter: Any) -> bool:
    return getattr(parameter, "param_type_name", "") == "argument"


def cli_page(app: Any = None) -> str:
    commands = list(walk_commands(app))
    parts = [INTRO]
    for doc in commands:
        parts.append(f"- [`{doc.name}`](#{anchor(doc.name)})")
    parts.append("")
    for doc in commands:
        parts.append(_command_section(doc))
    return "\n".join(parts)


def _command_section(doc: CommandDoc) -> str:
    command = doc.command
    lines = [f"## `{doc.name}` {{ #{anchor(doc.name)} }}\n"]
    help_text = (command.help or "").strip()
    if help_text:
        lines.append(prose(help_text) + "\n")
    arguments = [p for p in command.params if is_argument(p) and not getattr(p, "hidden", False)]
    options = [p for p in command.params if not is_argument(p) and not getattr(p, "hidden", False)]
    usage = [doc.name, *(["[OPTIONS]"] if options else []),
             *(f"{p.name.upper()}{'...' if p.nargs == -1 else ''}" for p in arguments)]
    if hasattr(command, "list_commands"):
        usage.append("COMMAND")
        subcommands = [name for name in command.list_commands(doc.context)
                       if not getattr(command.get_command(doc.context, name), "hidden", False)]
        lines.append("Commands: " + ", ".join(f"[`{name}`](#{anchor(doc.name, name)})" for name in subcommands) + "\n")
    lines.append(f"```\n{' '.join(usage)}\n```\n")
    if arguments:
        lines.append(table(["argument", "type", "required", "description"],
                           [[f"`{p.name.upper()}`", cell(_type(p, doc.context)), "yes" if p.required else "no",
                             cell(p.help or "")] for p in arguments]) + "\n")
    if options:
        lines.append(table(["option", "type", "default", "description"],
                           [[" / ".join(f"`{name}`" for name in option_names(p)), cell(_type(p, doc.context)),
                             cell(_default(p)), cell(_help(p))] for p in options]) + "\n")
    return "\n".join(lines)


def _type(parameter: Any, context: Any) -> str:
    if getattr(parameter, "is_flag", False):
        return "flag"
    shown = str(parameter.display_type(context)).strip("<>")
    bounds = [f"{symbol} {value}" for symbol, value in ((">=", getattr(parameter, "min", None)),
                                                       ("<=", getattr(parameter, "max", None))) if value is not None]
    if bounds:
        shown = shown.removesuffix(" range") + f" ({', '.join(bounds)})"
    return shown + (", repeatable" if getattr(parameter, "multiple", False) else "")


def _default(parameter: Any) -> str:
    if parameter.required:
        return "required"
    default = parameter.default
    if default is None or (getattr(parameter, "is_flag", False) and default is False and not parameter.secondary_opts):
        return ""
    if isinstance(default, bool) and parameter.secondary_opts:
        return parameter.opts[0] if default else parameter.secondary_opts[0]
    if isinstance(default, (list, tuple)):
        return ", ".join(str(item) for item in default)
    return str(default)


def _help(parameter: Any) -> str:
    text = parameter.help or ""
    if parameter.envvar:
        variables = parameter.envvar if isinstance(parameter.envvar, (list, tuple)) else [parameter.envvar]
        text += f" Environment: {', '.join(f'`{v}`' for v in variables)}."
    return text.strip()
