"""The docs stay true to the code: the tree, the README commands, one page per provider."""

from __future__ import annotations

from pathlib import Path

from omnisend import errors
from omnisend.providers import PROVIDERS

ROOT = Path(__file__).parent.parent


def tree(text: str) -> str:
    start = text.index("OmnisendError\n")
    lines = []
    for line in text[start:].splitlines():
        if not line.strip() or line.startswith("```"):
            break
        lines.append(line.rstrip())
    return "\n".join(lines)


def test_error_tree_is_the_same_everywhere() -> None:
    docstring = "\n".join(line[4:] for line in (errors.__doc__ or "").splitlines())
    assert tree(docstring) == tree((ROOT / "docs" / "errors.md").read_text())
    assert tree((ROOT / "docs" / "errors.md").read_text()) == tree((ROOT / "README.md").read_text())
    assert "PartialFailure             some recipients of one send were rejected" in tree((ROOT / "README.md").read_text())
    for cls in errors.__all__:
        assert cls in (ROOT / "docs" / "errors.md").read_text()


def test_readme_opens_with_the_two_commands() -> None:
    head = (ROOT / "README.md").read_text().split("\n## ")[0]
    assert head.index("make demo") < head.index("make test")


def test_every_provider_has_a_page() -> None:
    for name in PROVIDERS:
        assert (ROOT / "docs" / "providers" / f"{name}.md").exists(), f"docs/providers/{name}.md missing: run make docs"


def test_ci_runs_make_test() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text()
