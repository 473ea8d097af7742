# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A service role's unit.service.j2 rendered as the template module renders it inside the user_unit role.

jinja2 with trim_blocks, the role's defaults and vars over the user_unit role's defaults (the units include
its templates), the collection's systemd_command filter, and StrictUndefined: a variable the template needs
and no defaults give fails the test.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import jinja2
import yaml
from ansible.plugins.filter.core import comment
from ansible_collections.labai.llm_stack.plugins.filter.systemd_command import systemd_command

ROLES = Path(__file__).resolve().parents[2] / "roles"
ACCOUNT = {
    "home": "/home/llm-stack",
    "env_dir": "/home/llm-stack/.config/llm-stack",
    "config_dir": "/home/llm-stack/.config",
}


def _yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {}


def render_unit(role: str, record: dict, **extra) -> str:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader([ROLES / role / "templates", ROLES / "user_unit" / "templates"]),
        trim_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["comment"] = comment
    environment.filters["labai.llm_stack.systemd_command"] = systemd_command
    variables = {
        **_yaml(ROLES / "user_unit" / "defaults" / "main.yml"),
        **_yaml(ROLES / role / "defaults" / "main.yml"),
        **_yaml(ROLES / role / "vars" / "main.yml"),
        **extra,
    }
    return environment.get_template("unit.service.j2").render(
        ansible_managed="Ansible managed", item=record, service_account_info=ACCOUNT, **variables
    )


def exec_start(text: str) -> list[str]:
    """The arguments of a rendered unit's ExecStart= line."""
    [line] = [line for line in text.splitlines() if line.startswith("ExecStart=")]
    return shlex.split(line.removeprefix("ExecStart="))


def section(text: str, name: str) -> dict[str, str]:
    """The settings of one [Section] of a rendered unit (comments and blank lines left out)."""
    settings: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("["):
            current = line.strip("[]")
        elif current == name and line and not line.startswith("#"):
            key, _, value = line.partition("=")
            settings[key] = value
    return settings
