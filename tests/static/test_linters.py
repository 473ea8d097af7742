"""The linters CI enforces, each one a test so a failure shows its own output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

LINTERS = {
    "yamllint": [str(BIN / "yamllint"), "--strict", "."],
    "ansible-lint": [str(BIN / "ansible-lint"), "--offline", "--profile", "production"],
    "ruff-check": [str(BIN / "ruff"), "check", "."],
    "ruff-format": [str(BIN / "ruff"), "format", "--check", "."],
}


@pytest.mark.parametrize("name", LINTERS)
def test_linter_is_clean(name: str) -> None:
    result = subprocess.run(LINTERS[name], cwd=TOP, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{name} found problems:\n{result.stdout}\n{result.stderr}"
