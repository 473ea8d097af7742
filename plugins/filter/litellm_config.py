# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The labai.llm_stack.litellm_config filter: the LiteLLM proxy's config.yaml, computed from the plan."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

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
    C(openai/) for llama.cpp, C(ollama_chat/) for Ollama) and C(api_base) pointing at the service.
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
    description: The inventory hostname the gateway runs on; services on it are reached on loopback.
    type: str
    required: true
  options:
    description:
      - C(addresses) (dict) maps other inventory hostnames to the address the gateway reaches them at
        (default the hostname itself).
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

PROVIDERS = {"vllm": "hosted_vllm", "llamacpp": "openai", "ollama": "ollama_chat"}
# llama.cpp without a key still needs one for LiteLLM's OpenAI client; the server ignores it.
NO_KEY = "no-key"


def _api_base(service: dict, host: str, gateway_host: str, addresses: dict) -> str:
    address = "127.0.0.1" if host == gateway_host else addresses.get(host, host)
    if ":" in address:
        address = f"[{address}]"
    suffix = "" if service["backend"] == "ollama" else "/v1"
    return f"http://{address}:{service['port']}{suffix}"


def _params(model: dict, service: dict, host: str, gateway_host: str, options: dict) -> dict:
    backend = model["backend"]
    upstream = model["model"] if backend == "ollama" else service["served_names"][0]
    params = {
        "model": f"{PROVIDERS[backend]}/{upstream}",
        "api_base": _api_base(service, host, gateway_host, options.get("addresses", {})),
    }
    key_env = options.get("key_env", {}).get(backend)
    if key_env:
        params["api_key"] = f"os.environ/{key_env}"
    elif backend == "llamacpp":
        params["api_key"] = NO_KEY
    return params


def _model_list(plan: dict, gateway_host: str, options: dict) -> list[dict]:
    entries = []
    for model in plan["models"]:
        service = plan["services"][model["service"]]
        for public in [model["name"], *model["aliases"]]:
            for host in model["hosts"]:
                entries.append(
                    {
                        "model_name": public,
                        "litellm_params": _params(model, service, host, gateway_host, options),
                        "model_info": {"id": f"{public}@{host}"},
                    }
                )
    models = {model["name"]: model for model in plan["models"]}
    for route in plan["routes"]:
        target = models[route["model"]]
        service = plan["services"][target["service"]]
        for host in target["hosts"]:
            params = _params(target, service, host, gateway_host, options)
            entries.append(
                {
                    "model_name": route["pattern"],
                    "litellm_params": params,
                    "model_info": {"id": f"{route['pattern']}@{host}", "health_check_model": params["model"]},
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
    if gateway_host not in plan["services"].get("litellm", {}).get("hosts", []):
        raise AnsibleFilterError(
            f"litellm_config: the plan does not run the gateway on {gateway_host!r}; "
            "set llm_stack_catalog.gateway.hosts or call it for a gateway host"
        )
    router = {"fallbacks": _chains(plan, "fallbacks")}
    context_chains = _chains(plan, "context_window_fallbacks")
    if context_chains:
        router["context_window_fallbacks"] = context_chains
    return {
        "model_list": _model_list(plan, gateway_host, options),
        "router_settings": {**router, **options.get("router_settings", {})},
        "litellm_settings": dict(options.get("litellm_settings", {})),
        "general_settings": {"master_key": "os.environ/LITELLM_MASTER_KEY", **options.get("general_settings", {})},
    }


class FilterModule:
    def filters(self) -> dict:
        return {"litellm_config": litellm_config}
