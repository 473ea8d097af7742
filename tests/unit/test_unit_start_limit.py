# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every server's unit gives up on a crash loop (faults issue #14): StartLimitIntervalSec and StartLimitBurst in
[Unit], where systemd reads them (in [Service] it ignores them with a warning), from the user_unit role's
settings; and the deliberate restart resets the count first, so that only systemd's own restarts count."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible_collections.labai.llm_stack.plugins.plugin_utils.plan import build_plan
from unit_templates import render_unit, section

TOP = Path(__file__).resolve().parents[2]


def record(catalog: dict, hosts: list[str], backend: str) -> dict:
    services = [service for host in hosts for service in build_plan(catalog, hosts)["hosts"][host]["services"]]
    return next(service for service in services if service["backend"] == backend)


# What each role's tasks compute before rendering (plain jinja2 leaves the role vars' own templates as text).
COMPUTED = {"litellm": {"_litellm_workers": 2}}


@pytest.mark.parametrize("backend", ["litellm", "llamacpp", "ollama", "vllm"])
def test_each_unit_gives_up_after_the_burst(catalog, hosts, backend):
    # Each backend's role has the backend's name.
    text = render_unit(backend, record(catalog, hosts, backend), **COMPUTED.get(backend, {}))
    unit, service = section(text, "Unit"), section(text, "Service")
    assert (unit["StartLimitIntervalSec"], unit["StartLimitBurst"]) == ("600", "5")
    assert not {"StartLimitIntervalSec", "StartLimitBurst"} & set(service)
    assert service["Restart"] == "on-failure"


def test_the_operator_sets_the_limit(catalog, hosts):
    text = render_unit(
        "vllm", record(catalog, hosts, "vllm"), user_unit_start_limit_burst=3, user_unit_start_limit_interval=120
    )
    assert section(text, "Unit")["StartLimitBurst"] == "3"
    assert section(text, "Unit")["StartLimitIntervalSec"] == "120"


def test_a_deliberate_restart_resets_the_count_first():
    tasks = yaml.safe_load((TOP / "roles" / "user_unit" / "tasks" / "restart_one.yml").read_text())
    names = [task["name"] for task in tasks]
    reset = next(task for task in tasks if task.get("ansible.builtin.command"))
    assert reset["ansible.builtin.command"]["argv"][:3] == ["systemctl", "--user", "reset-failed"]
    assert names.index(reset["name"]) == names.index("Restart {{ user_unit_service.unit }}") - 1
