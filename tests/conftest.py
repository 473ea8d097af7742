# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make this checkout importable as ansible_collections.labai.llm_stack."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

COLLECTIONS = Path(__file__).resolve().parents[1] / ".collections"
LINK = COLLECTIONS / "ansible_collections" / "labai" / "llm_stack"

if not (LINK / "plugins").is_dir():
    raise pytest.UsageError(f"{LINK} does not lead to this checkout; run scripts/setup-controller.sh")
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))
