"""The deployment_state filter: what phase 2 records on a host for the phases after it."""

from __future__ import annotations

import json

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.labai.llm_stack.plugins.filter.deployment_state import deployment_state
from ansible_collections.labai.llm_stack.plugins.plugin_utils.plan import build_plan


@pytest.fixture
def plan(catalog, hosts):
    return build_plan(catalog, hosts)


def test_backends_first_then_the_gateway(plan):
    state = deployment_state(plan, "gpu01")
    assert [(s["unit"], s["port"]) for s in state["services"]] == [
        ("llm-vllm-qwen-coder.service", 8001),
        ("llm-llamacpp-qwen-coder-cpp.service", 8000),
        ("llm-llamacpp-qwen-coder-native.service", 8080),
        ("llm-ollama.service", 11434),
        ("llm-litellm.service", 4000),
    ]


def test_names_each_server_must_list(plan):
    services = {s["backend"] + ":" + s["key"]: s for s in deployment_state(plan, "gpu01")["services"]}
    vllm = services["vllm:vllm-qwen-coder"]
    assert vllm["names"] == ["qwen-coder", "qwen-math", "llama2-13b-vllm"]
    assert vllm["chat_model"] == "qwen-coder"
    # Ollama lists its tags, not the catalog names.
    assert services["ollama:ollama"]["names"] == ["qwen2.5-coder:7b"]
    assert services["ollama:ollama"]["chat_model"] == "qwen2.5-coder:7b"
    assert services["litellm:litellm"]["names"] == [
        "qwen-coder",
        "qwen-math",
        "llama2-13b-vllm",
        "qwen-coder-ollama",
        "qwen-coder-cpp",
        "qwen-coder-native",
    ]


def test_gateway_host_carries_public_names_and_fallbacks(plan):
    state = deployment_state(plan, "gpu01")
    assert state["public_names"] == plan["public_names"]
    assert state["fallbacks"] == {
        "qwen-coder": ["qwen-coder-ollama", "qwen-coder-cpp"],
        "qwen-coder-ollama": ["qwen-coder-cpp"],
    }


def test_host_without_gateway_has_no_public_names(plan):
    state = deployment_state(plan, "gpu02")
    assert "litellm" not in [s["backend"] for s in state["services"]]
    assert state["public_names"] == []
    assert state["fallbacks"] == {}


def test_probe_urls_follow_the_bind_addresses(catalog, hosts):
    """A specific address is probed on itself; every interface (0.0.0.0 or ::) on the host's loopback."""
    catalog["backends"]["vllm"]["bind"] = "10.0.0.5"
    catalog["gateway"]["bind"] = "::"
    state = deployment_state(build_plan(catalog, hosts), "gpu01")
    assert [(s["key"], s["bind"], s["probe_url"]) for s in state["services"]] == [
        ("vllm-qwen-coder", "10.0.0.5", "http://10.0.0.5:8001"),
        ("llamacpp-qwen-coder-cpp", "0.0.0.0", "http://127.0.0.1:8000"),
        ("llamacpp-qwen-coder-native", "0.0.0.0", "http://127.0.0.1:8080"),
        ("ollama", "0.0.0.0", "http://127.0.0.1:11434"),
        ("litellm", "::", "http://127.0.0.1:4000"),
    ]


def test_ready_timeouts_are_recorded(plan):
    state = deployment_state(plan, "gpu01")
    assert [(s["key"], s["ready_timeout"]) for s in state["services"]] == [
        ("vllm-qwen-coder", 600),
        ("llamacpp-qwen-coder-cpp", 180),
        ("llamacpp-qwen-coder-native", 180),
        ("ollama", 120),
        ("litellm", 180),
    ]


RECORD_KEYS = {
    "key",
    "gateway_ids",
    "reached_from",
    "backend",
    "unit",
    "env_file",
    "port",
    "bind",
    "probe_url",
    "api_base",
    "names",
    "chat_model",
    "models",
    "ready_timeout",
    "needs_gpu",
    "key_variable",
    "config_files",
    "tls",
    "ca_path",
}
MODEL_KEYS = {"name", "model", "model_file", "settings"}


def test_record_is_json_and_holds_the_plans_records(plan):
    state = deployment_state(plan, "gpu01")
    assert json.loads(json.dumps(state)) == state
    assert set(state) == {"host", "services", "public_names", "fallbacks"}
    assert state["host"] == "gpu01"
    assert state["services"] == plan["hosts"]["gpu01"]["services"]
    assert [(s["backend"], set(s)) for s in state["services"]] == [
        ("vllm", RECORD_KEYS | MODEL_KEYS),
        ("llamacpp", RECORD_KEYS | MODEL_KEYS),
        ("llamacpp", RECORD_KEYS | MODEL_KEYS),
        ("ollama", RECORD_KEYS | {"digests"}),
        ("litellm", RECORD_KEYS | {"redis_address"}),
    ]


def test_record_holds_no_secret(plan):
    """Only the name of the variable holding a key; the value stays in the env file."""
    services = deployment_state(plan, "gpu01")["services"]
    assert [s["key_variable"] for s in services] == [
        "llm_stack_vllm_api_key",
        "llm_stack_llamacpp_api_key",
        "llm_stack_llamacpp_api_key",
        "",
        "llm_stack_litellm_master_key",
    ]


def test_changing_the_record_leaves_the_plan_alone(plan):
    state = deployment_state(plan, "gpu01")
    state["services"][0]["port"] = 1
    assert plan["hosts"]["gpu01"]["services"][0]["port"] == 8001


def test_unknown_host_is_refused(plan):
    with pytest.raises(
        AnsibleFilterError, match="deployment_state: host 'gpu09' is not in the plan; the plan's hosts are gpu01, gpu02"
    ):
        deployment_state(plan, "gpu09")
