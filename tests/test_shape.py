"""The shape of the core, as the engine issue measures it: no function above complexity 15, and each
vendor adapter mostly tables (its lines of logic: non-blank, non-comment lines inside functions,
docstrings excluded — what ``../shared/tools/adapter_metrics.py`` counts).

Every adapter stays at or under 150 lines.
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "omnisend"
LOGIC_MAX = 150


def logic_lines(path: Path) -> int:
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    inside: set[int] = set()
    docstrings: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inside.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                if isinstance(body[0].value.value, str):
                    docstrings.update(range(body[0].lineno, (body[0].end_lineno or body[0].lineno) + 1))
    code: set[int] = set()
    skip = (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER)
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type not in skip:
            code.update(range(token.start[0], token.end[0] + 1))
    return len((inside & code) - docstrings)


ADAPTERS = sorted(
    p.stem for p in (SRC / "providers").glob("*.py") if p.stem not in ("base", "__init__") and not p.stem.startswith("_")
)


@pytest.mark.parametrize("name", ADAPTERS)
def test_an_adapter_is_mostly_tables(name: str) -> None:
    lines = logic_lines(SRC / "providers" / f"{name}.py")
    assert lines <= LOGIC_MAX, f"{name}: {lines} lines of logic"


def test_no_function_is_above_complexity_15() -> None:
    radon = pytest.importorskip("radon.complexity")
    over = [
        f"{path.relative_to(SRC)}:{block.lineno} {block.name} ({block.complexity})"
        for path in sorted(SRC.rglob("*.py"))
        for block in radon.cc_visit(path.read_text(encoding="utf-8"))
        if block.complexity > 15
    ]
    assert over == []
