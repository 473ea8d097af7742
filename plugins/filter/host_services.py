# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The labai.llm_stack.host_services filter: one backend's slice of the plan for one host."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.labai.llm_stack.plugins.plugin_utils.backends import BACKENDS, GATEWAY

DOCUMENTATION = r"""
name: host_services
author: labai
version_added: "1.0.0"
short_description: The service records of one backend on one host, from the deployment plan
description:
  - Takes the plan made by P(labai.llm_stack.plan#filter) and returns the finished records of the services of
    O(backend) that run on O(host), in start order. It selects; it derives nothing.
  - Each record has C(key), C(backend), C(unit), C(env_file), C(port), C(bind), C(probe_url), C(api_base),
    C(names) (what its C(/v1/models) must list; Ollama's tags as C(NAME:latest)), C(chat_model), C(models),
    C(ready_timeout), C(needs_gpu), C(key_variable); a vLLM or llama.cpp record also C(name), C(model),
    C(model_file) and C(settings); an Ollama record also C(digests) (the catalog's C(ollama.digest) of each
    of its models that has one).
positional: host, backend
options:
  _input:
    description: The deployment plan.
    type: dict
    required: true
  host:
    description: An inventory hostname, normally C(inventory_hostname).
    type: str
    required: true
  backend:
    description: One of C(vllm), C(llamacpp), C(ollama), C(litellm).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Render one unit per vLLM model on this host
  ansible.builtin.include_role:
    name: labai.llm_stack.vllm
  vars:
    vllm_instances: "{{ llm_stack_plan | labai.llm_stack.host_services(inventory_hostname, 'vllm') }}"
"""

RETURN = r"""
_value:
  description: The plan's records of that backend on that host.
  type: list
  elements: dict
"""

KINDS = (*BACKENDS, GATEWAY.name)


def host_services(plan: dict, host: str, backend: str) -> list[dict]:
    if backend not in KINDS:
        raise AnsibleFilterError(f"host_services: unknown backend {backend!r}; use one of {', '.join(KINDS)}")
    return [dict(record) for record in plan["hosts"].get(host, {}).get("services", []) if record["backend"] == backend]


class FilterModule:
    def filters(self) -> dict:
        return {"host_services": host_services}
