# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The labai.llm_stack.litellm_config filter: the LiteLLM proxy's config.yaml, computed from the plan."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.labai.llm_stack.plugins.plugin_utils.backends import BACKENDS, GATEWAY

DOCUMENTATION = r"""
name: litellm_config
author: labai
version_added: "1.0.0"
short_description: The LiteLLM proxy configuration for one gateway host, from the deployment plan
description:
  - Builds the C(config.yaml) of the LiteLLM proxy from the plan made by P(labai.llm_stack.plan#filter), so
    the gateway's model names can never drift from the backends'.
  - One C(model_list) entry per public name and alias and per host that serves it (several hosts make one
    load-balanced group), with the provider prefix each backend needs (C(hosted_vllm/) for vLLM,
    C(openai/) for llama.cpp, C(ollama_chat/) for Ollama) and the C(api_base) of the service's record in the
    plan, the same address its probes use.
  - Pattern routes become wildcard entries that send to the route's model.
  - Fallback and context-window-fallback chains from the catalog, for every name and alias; a model with no
    chain gets an empty one, so the catch-all chain of the pattern routes never applies to it.
  - Secrets are never in the result, only C(os.environ/NAME) references to the env file.
positional: gateway_host, options
options:
  _input:
    description: The deployment plan.
    type: dict
    required: true
  gateway_host:
    description: The inventory hostname the gateway runs on; the plan must run the gateway there.
    type: str
    required: true
  options:
    description:
      - C(key_env) (dict) maps a backend (C(vllm), C(llamacpp)) to the environment variable holding its API key;
        a backend without one gets no key.
      - C(router_settings), C(litellm_settings), C(general_settings) (dicts) are merged over the computed ones.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Render the gateway config
  ansible.builtin.copy:
    content: "{{ llm_stack_plan | labai.llm_stack.litellm_config(inventory_hostname, {}) | to_nice_yaml }}"
    dest: ~/.config/litellm/config.yaml
    mode: "0640"
"""

RETURN = r"""
_value:
  description: The proxy configuration, with C(model_list), C(router_settings), C(litellm_settings) and
    C(general_settings).
  type: dict
"""

# A backend without a key that LiteLLM reaches through its OpenAI client still needs one; the server ignores it.
NO_KEY = "no-key"


def _params(model: dict, record: dict, options: dict) -> dict:
    backend = BACKENDS[model["backend"]]
    params = {"model": f"{backend.provider}/{model['upstream']}", "api_base": record["api_base"]}
    key_env = options.get("key_env", {}).get(backend.name)
    if key_env:
        params["api_key"] = f"os.environ/{key_env}"
    elif backend.placeholder_key:
        params["api_key"] = NO_KEY
    return params


def _records(plan: dict, model: dict) -> list[tuple[str, dict]]:
    """(host, record) of every service that serves the model, in the model's host order."""
    return [
        (host, record)
        for host in model["hosts"]
        for record in plan["hosts"][host]["services"]
        if model["name"] in record["models"] and record["backend"] == model["backend"]
    ]


def _model_list(plan: dict, options: dict) -> list[dict]:
    entries = []
    for model in plan["models"]:
        served = _records(plan, model)
        for public in [model["name"], *model["aliases"]]:
            for host, record in served:
                entries.append(
                    {
                        "model_name": public,
                        "litellm_params": _params(model, record, options),
                        "model_info": {"id": GATEWAY.deployment_id(public, host)},
                    }
                )
    models = {model["name"]: model for model in plan["models"]}
    for route in plan["routes"]:
        target = models[route["model"]]
        for host, record in _records(plan, target):
            params = _params(target, record, options)
            entries.append(
                {
                    "model_name": route["pattern"],
                    "litellm_params": params,
                    "model_info": {
                        "id": GATEWAY.deployment_id(route["pattern"], host),
                        "health_check_model": params["model"],
                    },
                }
            )
    return entries


def _chains(plan: dict, field: str) -> list[dict]:
    chains = []
    for model in plan["models"]:
        for public in [model["name"], *model["aliases"]]:
            chains.append({public: list(model[field])})
    if field == "fallbacks":
        models = {model["name"]: model for model in plan["models"]}
        route_chains = {tuple(models[route["model"]]["fallbacks"]) for route in plan["routes"]}
        # Requests matched by a pattern route only fall back through the catch-all chain.
        if len(route_chains) == 1 and next(iter(route_chains)):
            chains.append({"*": list(next(iter(route_chains)))})
    return [chain for chain in chains if field == "fallbacks" or next(iter(chain.values()))]


def litellm_config(plan: dict, gateway_host: str, options: dict) -> dict:
    here = plan["hosts"].get(gateway_host, {}).get("services", [])
    if not any(record["backend"] == GATEWAY.name for record in here):
        raise AnsibleFilterError(
            f"litellm_config: the plan does not run the gateway on {gateway_host!r}; "
            "set llm_stack_catalog.gateway.hosts or call it for a gateway host"
        )
    router = {"fallbacks": _chains(plan, "fallbacks")}
    context_chains = _chains(plan, "context_window_fallbacks")
    if context_chains:
        router["context_window_fallbacks"] = context_chains
    return {
        "model_list": _model_list(plan, options),
        "router_settings": {**router, **options.get("router_settings", {})},
        "litellm_settings": dict(options.get("litellm_settings", {})),
        "general_settings": {"master_key": "os.environ/LITELLM_MASTER_KEY", **options.get("general_settings", {})},
    }


class FilterModule:
    def filters(self) -> dict:
        return {"litellm_config": litellm_config}
