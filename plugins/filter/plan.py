# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The labai.llm_stack.plan filter: the model catalog, checked and turned into a deployment plan."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.labai.llm_stack.plugins.plugin_utils.plan import CatalogError, build_plan

DOCUMENTATION = r"""
name: plan
author: labai
version_added: "1.0.0"
short_description: Check the LLM model catalog and turn it into per-host service records
description:
  - Validates O(_input), the C(llm_stack_catalog) inventory variable, against the hosts of the play.
  - Reports every problem at once, one line each, naming the catalog entry, the field and the fix.
  - Returns the plan every role and phase of the collection reads, with defaults filled in; for each host the
    finished records of the services it runs, so that nothing downstream derives a unit name, a port, an
    address or a timeout again.
  - One systemd user unit per vLLM or llama.cpp model, one C(llm-ollama.service) per host shared by all
    Ollama models, and the LiteLLM gateway C(llm-litellm.service).
positional: hosts, addresses
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
  addresses:
    description:
      - Where other hosts reach each host's servers that bind every interface (a C(bind) of C(0.0.0.0)), by
        inventory hostname (the hosts' C(llm_stack_address)); a host not listed is reached by its name.
    type: dict
    default: {}
notes:
  - Public names and aliases must match C(^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$) and be unique.
  - Two services on the same host may not share a port; the same port on different hosts is fine.
  - A backend bound to loopback may only serve a gateway on its own host; the plan refuses it otherwise.
"""

EXAMPLES = r"""
- name: Plan the stack once for the play
  ansible.builtin.set_fact:
    llm_stack_plan: "{{ llm_stack_catalog | labai.llm_stack.plan(groups['llm_hosts']) }}"

- name: Units this host runs, in start order
  ansible.builtin.debug:
    msg: "{{ llm_stack_plan.hosts[inventory_hostname].services | map(attribute='unit') }}"
"""

RETURN = r"""
_value:
  description: The deployment plan.
  type: dict
  contains:
    hosts:
      description:
        - For each host of the play, C(services), the records of the services it runs in start order (vLLM
          and llama.cpp models, then Ollama, then the gateway). A record has C(key), C(backend), C(unit),
          C(env_file), C(port), C(bind), C(probe_url) (where the host itself checks it), C(api_base) (where the
          gateway reaches it), C(names) (what its C(/v1/models) lists), C(chat_model), C(models),
          C(ready_timeout), C(needs_gpu), C(key_variable), C(config_files), C(tls) and C(ca_path) (the
          gateway's, with the catalog's C(gateway.tls) - C(sources) on the controller, C(certificate) and
          C(private_key) relative to the service account's C(~/.config), C(ca_file) on the host, and its
          probes' C(ca_path); empty for plain HTTP); vLLM and llama.cpp records also
          C(name), C(model), C(model_file) and C(settings); Ollama records also C(digests), the digest the
          catalog pins (C(ollama.digest)) for each of its models that has one, as C(model) (the name Ollama
          lists), C(digest) (64 lowercase hex digits, as C(/api/tags) gives it) and C(name) (the public name).
      type: dict
    models:
      description:
        - The catalog's models in catalog order, with C(name), C(backend), C(aliases), C(fallbacks),
          C(context_window_fallbacks), C(hosts), C(service), C(upstream) (the name its server knows it by),
          C(model), C(model_file) and C(settings) (the backend's settings with defaults filled in).
      type: list
      elements: dict
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


def plan(catalog: dict, hosts: list[str], addresses: dict | None = None) -> dict:
    """The deployment plan of ``catalog`` on ``hosts``; every catalog problem in one error."""
    try:
        return build_plan(catalog, hosts, addresses)
    except CatalogError as error:
        raise AnsibleFilterError(str(error)) from None


class FilterModule:
    def filters(self) -> dict:
        return {"plan": plan}
