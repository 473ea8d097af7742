# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""lab/locked_wheels.py: the lab's wheelhouse is what the shipped locks pin for Debian 12's Python."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ansible_collections.labai.llm_stack.plugins.plugin_utils import _requirements_lock as locks

TOP = Path(__file__).resolve().parents[2]
LOCKS = TOP / "roles" / "python_venv" / "files" / "locks"
SPEC = importlib.util.spec_from_file_location("locked_wheels", TOP / "lab" / "locked_wheels.py")
locked_wheels = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(locked_wheels)


def test_for_host_keeps_what_python_3_11_2_on_linux_needs_without_markers() -> None:
    text = (LOCKS / "litellm.txt").read_text()
    wanted = locked_wheels.for_host(text, {"litellm"})
    names = [line.split("==")[0] for line in wanted.splitlines()]
    # redis needs async-timeout below Python 3.11.3, which a newer controller's pip would leave out.
    assert "async-timeout" in names
    assert "colorama" not in names  # Windows only
    assert "litellm" not in names
    assert ";" not in wanted
    numpy = [line.split()[0] for line in wanted.splitlines() if line.startswith("numpy==")]
    assert len(numpy) == 1, numpy  # the lock has one numpy for 3.11 and another for 3.12 and later
    assert locks.parse(wanted).problems == []


def test_add_hash_lets_the_labs_own_build_through() -> None:
    text = (LOCKS / "llama-cpp-python.txt").read_text()
    digest = "c" * 64
    lab = locks.parse(locked_wheels.add_hash(text, "llama_cpp_python", digest))
    entry = next(entry for entry in lab.entries if entry.name == "llama-cpp-python")
    shipped = next(entry for entry in locks.parse(text).entries if entry.name == "llama-cpp-python")
    assert entry.hashes == [*shipped.hashes, f"--hash=sha256:{digest}"]
    assert lab.problems == []
