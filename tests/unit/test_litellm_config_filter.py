"""The gateway's config is computed from the plan: names, providers, addresses, chains, no secrets."""

from __future__ import annotations

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.labai.llm_stack.plugins.filter.litellm_config import litellm_config
from ansible_collections.labai.llm_stack.plugins.plugin_utils.plan import build_plan

# Where the gateway reaches gpu02's servers bound to every interface (llm_stack_address); gpu01 by name.
ADDRESSES = {"gpu02": "10.0.0.12"}
OPTIONS = {
    "key_env": {"vllm": "VLLM_API_KEY", "llamacpp": "LLAMACPP_API_KEY"},
    "router_settings": {"num_retries": 1, "routing_strategy": "simple-shuffle"},
    "litellm_settings": {"drop_params": True},
}


@pytest.fixture
def config(catalog, hosts):
    return litellm_config(build_plan(catalog, hosts, ADDRESSES), "gpu01", OPTIONS)


def entries(config, name):
    return [entry for entry in config["model_list"] if entry["model_name"] == name]


def test_every_public_name_and_alias_is_a_model_group(config):
    names = {entry["model_name"] for entry in config["model_list"]}
    assert names == {
        "qwen-coder",
        "qwen-math",
        "llama2-13b-vllm",
        "qwen-coder-ollama",
        "qwen-coder-cpp",
        "qwen-coder-native",
        "meta-llama/*",
    }


def test_vllm_entry_uses_hosted_vllm_on_loopback_with_key_reference(config):
    [entry] = entries(config, "qwen-math")
    assert entry["litellm_params"] == {
        "model": "hosted_vllm/qwen-coder",
        "api_base": "http://127.0.0.1:8001/v1",
        "api_key": "os.environ/VLLM_API_KEY",
    }


def test_ollama_on_two_hosts_is_one_load_balanced_group(config):
    group = entries(config, "qwen-coder-ollama")
    assert [e["litellm_params"] for e in group] == [
        {"model": "ollama_chat/qwen2.5-coder:7b", "api_base": "http://gpu01:11434"},
        {"model": "ollama_chat/qwen2.5-coder:7b", "api_base": "http://10.0.0.12:11434"},
    ]
    assert [e["model_info"]["id"] for e in group] == ["qwen-coder-ollama@gpu01", "qwen-coder-ollama@gpu02"]


def test_llamacpp_uses_openai_provider_with_v1(config):
    group = entries(config, "qwen-coder-native")
    assert [e["litellm_params"] for e in group] == [
        {
            "model": "openai/qwen-coder-native",
            "api_base": "http://gpu01:8080/v1",
            "api_key": "os.environ/LLAMACPP_API_KEY",
        },
        {
            "model": "openai/qwen-coder-native",
            "api_base": "http://10.0.0.12:8080/v1",
            "api_key": "os.environ/LLAMACPP_API_KEY",
        },
    ]


def test_api_base_is_the_one_in_the_plans_record(catalog, hosts):
    """The gateway calls a server where its probes call it: a specific bind is used as it is."""
    catalog["backends"]["llamacpp"]["bind"] = "10.0.0.5"
    for model in catalog["models"][2:]:
        model["hosts"] = ["gpu02"]
    config = litellm_config(build_plan(catalog, hosts), "gpu01", {})
    served = [(e["model_info"]["id"], e["litellm_params"]["api_base"]) for e in config["model_list"]]
    assert served == [
        ("qwen-coder@gpu01", "http://127.0.0.1:8001/v1"),
        ("qwen-math@gpu01", "http://127.0.0.1:8001/v1"),
        ("llama2-13b-vllm@gpu01", "http://127.0.0.1:8001/v1"),
        ("qwen-coder-ollama@gpu01", "http://gpu01:11434"),
        ("qwen-coder-ollama@gpu02", "http://gpu02:11434"),
        ("qwen-coder-cpp@gpu02", "http://10.0.0.5:8000/v1"),
        ("qwen-coder-native@gpu02", "http://10.0.0.5:8080/v1"),
        ("meta-llama/*@gpu01", "http://127.0.0.1:8001/v1"),
    ]


def test_llamacpp_without_key_gets_a_placeholder(catalog, hosts):
    config = litellm_config(build_plan(catalog, hosts), "gpu01", {})
    assert [e["litellm_params"]["api_key"] for e in entries(config, "qwen-coder-cpp")] == ["no-key", "no-key"]
    assert [e["litellm_params"] for e in entries(config, "qwen-coder-ollama")] == [
        {"model": "ollama_chat/qwen2.5-coder:7b", "api_base": "http://gpu01:11434"},
        {"model": "ollama_chat/qwen2.5-coder:7b", "api_base": "http://gpu02:11434"},
    ]


def test_vllm_without_key_gets_no_key(catalog, hosts):
    config = litellm_config(build_plan(catalog, hosts), "gpu01", {})
    assert entries(config, "qwen-coder")[0]["litellm_params"] == {
        "model": "hosted_vllm/qwen-coder",
        "api_base": "http://127.0.0.1:8001/v1",
    }


def test_pattern_route_is_a_wildcard_to_its_model_with_a_health_check_model(config):
    [entry] = entries(config, "meta-llama/*")
    assert entry["litellm_params"]["model"] == "hosted_vllm/qwen-coder"
    assert entry["model_info"]["health_check_model"] == "hosted_vllm/qwen-coder"


def test_fallback_chains_cover_aliases_and_end_with_empty_chains(config):
    assert config["router_settings"]["fallbacks"] == [
        {"qwen-coder": ["qwen-coder-ollama", "qwen-coder-cpp"]},
        {"qwen-math": ["qwen-coder-ollama", "qwen-coder-cpp"]},
        {"llama2-13b-vllm": ["qwen-coder-ollama", "qwen-coder-cpp"]},
        {"qwen-coder-ollama": ["qwen-coder-cpp"]},
        {"qwen-coder-cpp": []},
        {"qwen-coder-native": []},
        {"*": ["qwen-coder-ollama", "qwen-coder-cpp"]},
    ]
    assert "context_window_fallbacks" not in config["router_settings"]


def test_context_window_fallbacks_from_the_catalog(catalog, hosts):
    catalog["models"][0]["context_window_fallbacks"] = ["qwen-coder-cpp"]
    config = litellm_config(build_plan(catalog, hosts), "gpu01", OPTIONS)
    assert config["router_settings"]["context_window_fallbacks"] == [
        {"qwen-coder": ["qwen-coder-cpp"]},
        {"qwen-math": ["qwen-coder-cpp"]},
        {"llama2-13b-vllm": ["qwen-coder-cpp"]},
    ]


def test_settings_are_merged_and_the_master_key_is_a_reference(config):
    assert config["router_settings"]["num_retries"] == 1
    assert config["litellm_settings"] == {"drop_params": True}
    assert config["general_settings"] == {"master_key": "os.environ/LITELLM_MASTER_KEY"}


def test_result_is_plain_yaml(config):
    assert yaml.safe_load(yaml.safe_dump(config)) == config


def test_a_host_without_the_gateway_is_refused(catalog, hosts):
    with pytest.raises(AnsibleFilterError, match="does not run the gateway on 'gpu02'"):
        litellm_config(build_plan(catalog, hosts), "gpu02", OPTIONS)
