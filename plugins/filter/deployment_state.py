# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The labai.llm_stack.deployment_state filter: what one host runs, as the restart and validation phases need it."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.labai.llm_stack.plugins.plugin_utils.backends import GATEWAY

DOCUMENTATION = r"""
name: deployment_state
author: labai
version_added: "1.0.0"
short_description: One host's deployed services, in restart order, as the later phases need them
description:
  - Takes the plan made by P(labai.llm_stack.plan#filter) and returns what the deploy phase records on O(host)
    (C(~/.local/state/llm-stack/deployment.json)); the restart, validation and rollback phases work from that
    record, so a rollback validates against the deployment it restored, not against the current inventory.
  - C(services) are the host's service records of the plan as they are (backends first, then the gateway),
    each with C(unit), C(backend), C(env_file), C(port), C(bind), C(probe_url), C(api_base), C(names) (what its
    C(/v1/models) must list), C(chat_model) and C(ready_timeout).
  - C(public_names) and C(fallbacks) are those of the plan on a host that runs the gateway, empty elsewhere.
  - No secret is part of it.
positional: host
options:
  _input:
    description: The deployment plan.
    type: dict
    required: true
  host:
    description: An inventory hostname, normally C(inventory_hostname).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Record what this host runs
  ansible.builtin.copy:
    content: "{{ llm_stack_plan | labai.llm_stack.deployment_state(inventory_hostname) | to_nice_json }}"
    dest: "{{ service_account_info.state_dir }}/deployment.json"
    mode: "0600"
"""

RETURN = r"""
_value:
  description: C(host), C(services), C(public_names), C(fallbacks).
  type: dict
"""


def deployment_state(plan: dict, host: str) -> dict:
    if host not in plan.get("hosts", {}):
        raise AnsibleFilterError(
            f"deployment_state: host {host!r} is not in the plan; the plan's hosts are {', '.join(plan['hosts'])}"
        )
    services = [dict(record) for record in plan["hosts"][host]["services"]]
    gateway_here = any(service["backend"] == GATEWAY.name for service in services)
    return {
        "host": host,
        "services": services,
        "public_names": list(plan["public_names"]) if gateway_here else [],
        "fallbacks": dict(plan["fallbacks"]) if gateway_here else {},
    }


class FilterModule:
    def filters(self) -> dict:
        return {"deployment_state": deployment_state}
