"""The generated reference lists every config field, config model, CLI command and option that exists, and
the generator finds new ones on its own (so a rename or an addition cannot leave the docs behind)."""

from __future__ import annotations

import importlib
import pkgutil
import re
import typing
from typing import Any, Literal, Optional

import typer
from pydantic import BaseModel, Field
from typer.main import get_command

import msmkit
from msmkit.config import StrictModel
from msmkit.reference import INTERNAL_MODELS, config_roots, load_class
from msmkit.reference.cli_page import cli_page
from msmkit.reference.config_page import config_page
from msmkit.reference.errors_page import error_messages, errors_page

_ROW_KEY = re.compile(r"^\| `([^`]+)` \|")


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for argument in typing.get_args(annotation) for model in _models_in(argument)]


def _reachable(roots: list[type[BaseModel]]) -> set[type[BaseModel]]:
    seen: set[type[BaseModel]] = set()
    stack = list(roots)
    while stack:
        model = stack.pop()
        if model in seen:
            continue
        seen.add(model)
        for info in model.model_fields.values():
            stack.extend(_models_in(info.annotation))
    return seen


def _tables(page: str) -> list[set[str]]:
    """The row keys of every table on a page."""
    tables, current = [], None
    for line in page.splitlines():
        match = _ROW_KEY.match(line)
        if match:
            if current is None:
                current = set()
                tables.append(current)
            current.add(match.group(1))
        elif not line.startswith("|"):
            current = None
    return tables


def test_every_field_of_every_config_model_has_its_table() -> None:
    roots = config_roots()
    page = config_page(roots)
    tables = _tables(page)
    for title, _, _ in roots:
        assert f"## {title} {{" in page
    for model in _reachable([model for _, _, model in roots]):
        fields = set(model.model_fields)
        assert fields in tables, f"{model.__module__}.{model.__name__}: fields {sorted(fields)} have no table"


def test_every_config_model_in_msmkit_is_in_the_reference_or_declared_internal() -> None:
    for module in pkgutil.walk_packages(msmkit.__path__, "msmkit."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    defined = {model for model in _all_subclasses(StrictModel) if model.__module__.startswith("msmkit.")}
    internal = {load_class(path) for path in INTERNAL_MODELS}
    reachable = _reachable([model for _, _, model in config_roots()])
    reachable |= {base for model in reachable for base in model.__mro__}  # a shared base's fields are listed in each
    missing = sorted(f"{m.__module__}:{m.__name__}" for m in defined - reachable - internal)
    assert not missing, ("config models neither reachable from msmkit.reference.CONFIG_FILES nor listed in "
                         f"INTERNAL_MODELS: {missing}")


def _all_subclasses(klass: type) -> set[type]:
    found = set()
    for sub in klass.__subclasses__():
        found |= {sub, *_all_subclasses(sub)}
    return found


def _commands(command: Any, path: tuple[str, ...], context: Any):
    yield path, command
    if hasattr(command, "list_commands"):
        for name in command.list_commands(context):
            child = command.get_command(context, name)
            yield from _commands(child, (*path, name), child.context_class(child, parent=context))


def _sections(page: str) -> dict[str, str]:
    parts = re.split(r"^## `([^`]+)` \{ #[a-z0-9-]+ \}$", page, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2]))


def test_every_cli_command_argument_and_option_is_listed() -> None:
    from msmkit.cli.app import app

    sections = _sections(cli_page())
    root = get_command(app)
    commands = list(_commands(root, ("msm",), root.context_class(root)))
    assert len(commands) > 25
    for path, command in commands:
        name = " ".join(path)
        assert name in sections, f"{name} has no section in the CLI reference"
        for parameter in command.params:
            if getattr(parameter, "param_type_name", "") == "argument":
                assert f"`{parameter.name.upper()}`" in sections[name], (name, parameter.name)
            else:
                for option in [*parameter.opts, *parameter.secondary_opts]:
                    assert f"`{option}`" in sections[name], (name, option)


class _Inner(StrictModel):
    """A nested section."""

    depth: int = Field(3, ge=1)  # how deep it goes


class _Outer(StrictModel):
    # the name of the thing
    name: str
    inner: _Inner = Field(default_factory=_Inner)
    items: list[_Inner] = Field(default_factory=list, min_length=0)
    mode: Literal["fast", "slow"] = "fast"
    maybe: Optional[float] = Field(None, description="an optional number")


def test_a_new_model_and_its_comments_appear_without_touching_the_generator() -> None:
    page = config_page([("Thing", "`msm thing --config FILE`", _Outer)])
    assert "## Thing { #thing }" in page and "### `inner` { #thing-inner }" in page
    assert "| `name` | str | required | the name of the thing |" in page
    assert "| `inner` | [_Inner](#thing-inner) | its defaults |  |" in page
    assert '| `mode` | "fast" or "slow" | fast |  |' in page
    assert "| `maybe` | float or null | null | an optional number |" in page
    assert "| `depth` | int | 3 | how deep it goes (&gt;= 1) |" in page
    assert "A nested section." in page


def test_a_new_command_and_option_appear_without_touching_the_generator() -> None:
    app = typer.Typer()
    group = typer.Typer(help="A group.")
    app.add_typer(group, name="tools")

    @group.command("polish")
    def polish(target: str = typer.Argument(..., help="What to polish."),
               times: int = typer.Option(2, "--times", min=1, help="How often."),
               shine: bool = typer.Option(True, "--shine/--no-shine", help="Shine or not.")) -> None:
        """Polish a thing."""

    @app.command("other")
    def other() -> None:
        """Another command."""

    sections = _sections(cli_page(app))
    assert {"msm", "msm tools", "msm tools polish", "msm other"} <= set(sections)
    polish_section = sections["msm tools polish"]
    assert "Polish a thing." in polish_section and "`TARGET`" in polish_section
    assert "| `--times` | int (&gt;= 1) | 2 | How often. |" in polish_section
    assert "| `--shine` / `--no-shine` | flag | --shine | Shine or not. |" in polish_section


def test_the_error_catalogue_holds_messages_from_every_kind_of_raise() -> None:
    messages = {(m.module, m.text) for m in error_messages()}
    assert ("msmkit/config.py", "{target}: config file not found") in messages  # ConfigError, f-string
    assert any(module == "msmkit/experiment/config.py" and text.startswith("arm names must be unique")
               for module, text in messages)  # ValueError in a pydantic validator
    assert any("optimizer steps" in text and "fake a null result" in text for _, text in messages)  # + concat
    page = errors_page()
    assert "## `msmkit/config.py`\n\n- **ConfigError** (line " in page and "{target}: config file not found" in page
