# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The labai.llm_stack.plan filter: the model catalog, checked and turned into a deployment plan."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.labai.llm_stack.plugins.module_utils.catalog import CatalogError, build_plan

DOCUMENTATION = r"""
name: plan
author: labai
version_added: "1.0.0"
short_description: Check the LLM model catalog and turn it into a deployment plan
description:
  - Validates O(_input), the C(llm_stack_catalog) inventory variable, against the hosts of the play.
  - Reports every problem at once, one line each, naming the catalog entry, the field and the fix.
  - Returns the normalised plan every role of the collection renders from, with defaults filled in.
  - One systemd user unit per vLLM or llama.cpp model, one C(llm-ollama.service) per host shared by all
    Ollama models, and the LiteLLM gateway C(llm-litellm.service).
positional: hosts
options:
  _input:
    description:
      - The model catalog, a mapping with C(models) (required) and optionally C(gateway), C(backends)
        and C(routes).
    type: dict
    required: true
  hosts:
    description:
      - The inventory hostnames the stack is deployed on, normally C(groups['llm_hosts']).
      - Models and the gateway run on every one of them unless their C(hosts) field names some.
    type: list
    elements: str
    required: true
notes:
  - Public names and aliases must match C(^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$) and be unique.
  - Two services on the same host may not share a port; the same port on different hosts is fine.
"""

EXAMPLES = r"""
- name: Plan the stack once for the play
  ansible.builtin.set_fact:
    llm_stack_plan: "{{ llm_stack_catalog | labai.llm_stack.plan(groups['llm_hosts']) }}"

- name: Units this host runs, in start order
  ansible.builtin.debug:
    msg: "{{ llm_stack_plan.hosts[inventory_hostname].services
             | map('extract', llm_stack_plan.services, 'unit') }}"
"""

RETURN = r"""
_value:
  description: The deployment plan.
  type: dict
  contains:
    models:
      description:
        - The catalog's models in catalog order, with C(name), C(backend), C(aliases), C(fallbacks),
          C(context_window_fallbacks), C(hosts), C(service) (the key in O(services)), C(model),
          C(model_file) and C(settings) (the backend's settings with defaults filled in).
      type: list
      elements: dict
    services:
      description:
        - Services by key, in start order; vLLM and llama.cpp models first, then C(ollama), then
          C(litellm). Each has C(key), C(backend), C(unit), C(port), C(hosts), C(models) and
          C(served_names).
      type: dict
    hosts:
      description: For each host of the play, C(services), the keys of the services it runs in start order.
      type: dict
    public_names:
      description: Every model name and alias, sorted.
      type: list
      elements: str
    fallbacks:
      description: The fallback chain of each model that has one, keyed by model name.
      type: dict
    routes:
      description: Wildcard routes, each with C(pattern), C(model) and C(service).
      type: list
      elements: dict
"""


def plan(catalog: dict, hosts: list[str]) -> dict:
    """The deployment plan of ``catalog`` on ``hosts``; every catalog problem in one error."""
    try:
        return build_plan(catalog, hosts)
    except CatalogError as error:
        raise AnsibleFilterError(str(error)) from None


class FilterModule:
    def filters(self) -> dict:
        return {"plan": plan}
