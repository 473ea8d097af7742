# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The labai.llm_stack.deployment_state filter: what one host runs, as the restart and validation phases need it."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.labai.llm_stack.plugins.filter.host_services import BACKENDS, host_services

DOCUMENTATION = r"""
name: deployment_state
author: labai
version_added: "1.0.0"
short_description: One host's deployed services, in restart order, with what proves each one ready
description:
  - Takes the plan made by P(labai.llm_stack.plan#filter) and returns what the deploy phase records on O(host)
    (C(~/.local/state/llm-stack/deployment.json)); the restart, validation and rollback phases work from that
    record, so a rollback validates against the deployment it restored, not against the current inventory.
  - C(services) lists the backends first (vLLM, llama.cpp, Ollama), then the gateway, each with C(unit),
    C(backend), C(port), C(address) (where to probe it), C(names) (what its C(/v1/models) must list) and
    C(chat_model) (the name a readiness chat completion asks for).
  - C(public_names) and C(fallbacks) are those of the plan on a host that runs the gateway, empty elsewhere.
  - No secret is part of it.
positional: host, addresses
options:
  _input:
    description: The deployment plan.
    type: dict
    required: true
  host:
    description: An inventory hostname, normally C(inventory_hostname).
    type: str
    required: true
  addresses:
    description: Bind address of each backend (C(vllm), C(llamacpp), C(ollama), C(litellm)) on this host;
      a missing one, C(0.0.0.0) and C(::) are probed on C(127.0.0.1).
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Record what this host runs
  ansible.builtin.copy:
    content: "{{ llm_stack_plan | labai.llm_stack.deployment_state(inventory_hostname, {'vllm': '127.0.0.1'}) }}"
    dest: "{{ service_account_info.state_dir }}/deployment.json"
    mode: "0600"
"""

RETURN = r"""
_value:
  description: C(host), C(services), C(public_names), C(fallbacks).
  type: dict
"""

ANY_ADDRESS = ("0.0.0.0", "::", "")


def _probe_address(addresses: dict, backend: str) -> str:
    address = addresses.get(backend) or ""
    return "127.0.0.1" if address in ANY_ADDRESS else address


def deployment_state(plan: dict, host: str, addresses: dict | None = None) -> dict:
    if host not in plan.get("hosts", {}):
        raise AnsibleFilterError(
            f"deployment_state: host {host!r} is not in the plan; the plan's hosts are {', '.join(plan['hosts'])}"
        )
    addresses = addresses or {}
    services = []
    for backend in BACKENDS:
        for service in host_services(plan, host, backend):
            names = service["pull"] if backend == "ollama" else service["served_names"]
            services.append(
                {
                    "key": service["key"],
                    "backend": backend,
                    "unit": service["unit"],
                    "port": service["port"],
                    "address": _probe_address(addresses, backend),
                    "names": names,
                    "chat_model": names[0] if names else None,
                    "models": service["models"],
                }
            )
    gateway_here = any(service["backend"] == "litellm" for service in services)
    return {
        "host": host,
        "services": services,
        "public_names": list(plan["public_names"]) if gateway_here else [],
        "fallbacks": dict(plan["fallbacks"]) if gateway_here else {},
    }


class FilterModule:
    def filters(self) -> dict:
        return {"deployment_state": deployment_state}
