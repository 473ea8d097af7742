"""Every plugin's DOCUMENTATION, EXAMPLES and RETURN parse as YAML (ansible-doc refuses a plugin otherwise)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

TOP = Path(__file__).resolve().parents[2]
DOC_NAMES = ("DOCUMENTATION", "EXAMPLES", "RETURN")


def _doc_blocks() -> list[tuple[str, str, str]]:
    blocks = []
    for path in sorted((TOP / "plugins").rglob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id in DOC_NAMES
                and isinstance(node.value, ast.Constant)
            ):
                blocks.append((str(path.relative_to(TOP)), node.targets[0].id, node.value.value))
    return blocks


BLOCKS = _doc_blocks()


def test_plugins_carry_documentation() -> None:
    assert any(name == "DOCUMENTATION" and "plugins/filter/plan.py" == path for path, name, _ in BLOCKS)


@pytest.mark.parametrize(("path", "name", "text"), BLOCKS, ids=[f"{p}:{n}" for p, n, _ in BLOCKS])
def test_documentation_block_is_yaml(path: str, name: str, text: str) -> None:
    try:
        yaml.safe_load(text)
    except yaml.YAMLError as error:
        pytest.fail(f"{path} {name} is not valid YAML (quote a value holding ': '):\n{error}")
