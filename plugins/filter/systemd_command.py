# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The labai.llm_stack.systemd_command filter: an argument list as a systemd ExecStart= command line."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: systemd_command
author: labai
version_added: "1.0.0"
short_description: Quote an argument list for a systemd ExecStart= line
description:
  - Joins O(_input) into one command line that systemd splits back into exactly these arguments.
  - Every argument is double-quoted; C(\), C(") are escaped, C(%) becomes C(%%) (no specifier expansion)
    and C($) becomes C($$) (no environment variable expansion).
options:
  _input:
    description: The program and its arguments. Numbers are turned into strings.
    type: list
    elements: raw
    required: true
"""

EXAMPLES = r"""
- name: A unit line
  ansible.builtin.debug:
    msg: "ExecStart={{ ['/opt/venv/bin/python', '-m', 'app', '--name', 'a b'] | labai.llm_stack.systemd_command }}"
"""

RETURN = r"""
_value:
  description: The quoted command line.
  type: str
"""


def _quote(argument: object) -> str:
    if isinstance(argument, (dict, list)) or argument is None:
        raise AnsibleFilterError(f"systemd_command: {argument!r} is not a plain argument")
    text = str(argument)
    for raw, escaped in (("\\", "\\\\"), ('"', '\\"'), ("%", "%%"), ("$", "$$")):
        text = text.replace(raw, escaped)
    return f'"{text}"'


def systemd_command(argv: list) -> str:
    if not argv:
        raise AnsibleFilterError("systemd_command: the argument list is empty")
    return " ".join(_quote(argument) for argument in argv)


class FilterModule:
    def filters(self) -> dict:
        return {"systemd_command": systemd_command}
