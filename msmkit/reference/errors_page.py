"""The error catalogue: every message msmkit raises to the user, read from the source with `ast`.

User-facing errors are msmkit's MsmError and LLMError families (the CLI prints an MsmError without a
traceback; an LLMError is the cause recorded for a failed call), plus ValueErrors raised in pydantic
validators (they reach the user as config errors naming the field). `{...}` marks what is filled in at
run time.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from msmkit.reference.markdown import literal

USER_FACING_BASES = ("MsmError", "LLMError")
_MAX_PLACEHOLDER = 40

INTRO = """# Error messages

Every error message msmkit raises, generated from the source when the site is built and grouped by the
module that raises it. `{...}` is filled in at run time (a path, a field, a value). Most messages end with
the fix; [Troubleshooting](../troubleshooting.md) explains the common ones. Configuration errors name the
file and the field; errors the CLI prints start with `error:` and exit with status 2.
"""


@dataclass(frozen=True)
class ErrorMessage:
    module: str  # path relative to the package's parent, e.g. msmkit/train/trainer.py
    line: int
    error: str  # the exception class raised
    text: str


def package_root() -> Path:
    return Path(__file__).resolve().parents[1]


def user_facing_errors(trees: dict[Path, ast.Module]) -> set[str]:
    """Names of the exception classes defined in msmkit that derive from a user-facing base."""
    bases = {node.name: {_name(base) for base in node.bases}
             for tree in trees.values() for node in ast.walk(tree) if isinstance(node, ast.ClassDef)}
    found = set(USER_FACING_BASES)
    grew = True
    while grew:
        new = {name for name, parents in bases.items() if parents & found} - found
        found |= new
        grew = bool(new)
    return found


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def error_messages(root: Path | None = None) -> list[ErrorMessage]:
    root = root or package_root()
    trees = {path: ast.parse(path.read_text(encoding="utf-8")) for path in sorted(root.rglob("*.py"))}
    errors = user_facing_errors(trees)
    found: list[ErrorMessage] = []
    for path, tree in trees.items():
        module = str(path.relative_to(root.parent))
        for function, node in _raises(tree):
            if not (isinstance(node.exc, ast.Call) and node.exc.args):
                continue
            error = _name(node.exc.func)
            in_validator = function is not None and any("validator" in ast.unparse(d) for d in function.decorator_list)
            if error not in errors and not (error == "ValueError" and in_validator):
                continue
            text = message_text(node.exc.args[0])
            if text:
                found.append(ErrorMessage(module, node.lineno, error, text))
    return found


def _raises(tree: ast.Module):
    """(enclosing function or None, raise statement) for every raise in the module."""
    def visit(node: ast.AST, function: ast.FunctionDef | ast.AsyncFunctionDef | None):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield from visit(child, child)
            else:
                if isinstance(child, ast.Raise):
                    yield function, child
                yield from visit(child, function)

    yield from visit(tree, None)


def message_text(node: ast.expr) -> str | None:
    """The message as written, with `{...}` for run-time parts; None when it is built elsewhere."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
            elif isinstance(value, ast.FormattedValue):
                shown = ast.unparse(value.value)
                parts.append("{" + (shown if len(shown) <= _MAX_PLACEHOLDER else "...") + "}")
        return "".join(parts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = message_text(node.left), message_text(node.right)
        return left + right if left is not None and right is not None else None
    return None


def errors_page(root: Path | None = None) -> str:
    parts = [INTRO]
    by_module: dict[str, list[ErrorMessage]] = {}
    for message in error_messages(root):
        by_module.setdefault(message.module, []).append(message)
    for module, messages in by_module.items():
        parts.append(f"## `{module}`\n")
        seen: set[str] = set()
        for message in messages:
            if message.text in seen:
                continue
            seen.add(message.text)
            parts.append(f"- **{message.error}** (line {message.line}): {literal(' '.join(message.text.split()))}")
        parts.append("")
    return "\n".join(parts)
