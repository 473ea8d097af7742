# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The labai.llm_stack.host_services filter: one backend's slice of the plan for one host."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: host_services
author: labai
version_added: "1.0.0"
short_description: The services of one backend that run on one host, from the deployment plan
description:
  - Takes the plan made by P(labai.llm_stack.plan#filter) and returns the services of backend O(backend)
    that run on O(host), in start order, each with what its role renders from.
  - For a vLLM or llama.cpp service (one model each), the service carries its model's C(name), C(model),
    C(model_file) and C(settings).
  - For the Ollama service, C(pull) lists the Ollama tags of its models on O(host), an untagged name as
    C(NAME:latest), the way Ollama lists it.
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
  description: The plan's service entries (C(key), C(backend), C(unit), C(port), C(served_names), ...), extended
    as described above.
  type: list
  elements: dict
"""

BACKENDS = ("vllm", "llamacpp", "ollama", "litellm")


def host_services(plan: dict, host: str, backend: str) -> list[dict]:
    if backend not in BACKENDS:
        raise AnsibleFilterError(f"host_services: unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    models = {model["name"]: model for model in plan["models"]}
    found = []
    for key in plan["hosts"].get(host, {}).get("services", []):
        service = dict(plan["services"][key])
        if service["backend"] != backend:
            continue
        if backend in ("vllm", "llamacpp"):
            model = models[service["models"][0]]
            service.update(name=model["name"], model=model["model"], model_file=model["model_file"])
            service["settings"] = model["settings"]
        elif backend == "ollama":
            here = [models[name] for name in service["models"] if host in models[name]["hosts"]]
            # Ollama names an untagged model NAME:latest on /api/tags and /v1/models.
            tags = (model["model"] if ":" in model["model"] else f"{model['model']}:latest" for model in here)
            service["pull"] = list(dict.fromkeys(tags))
            service["models"] = [model["name"] for model in here]
        found.append(service)
    return found


class FilterModule:
    def filters(self) -> dict:
        return {"host_services": host_services}
