"""The deployment_state filter: what phase 2 records on a host for the phases after it."""

from __future__ import annotations

import json

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.labai.llm_stack.plugins.filter.deployment_state import deployment_state
from ansible_collections.labai.llm_stack.plugins.module_utils.catalog import build_plan


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
    assert services["litellm:litellm"]["names"] == plan["services"]["litellm"]["served_names"]


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


def test_probe_addresses(plan):
    state = deployment_state(plan, "gpu01", {"vllm": "10.0.0.5", "ollama": "0.0.0.0", "litellm": "::"})
    addresses = {s["backend"]: s["address"] for s in state["services"]}
    assert addresses == {"vllm": "10.0.0.5", "llamacpp": "127.0.0.1", "ollama": "127.0.0.1", "litellm": "127.0.0.1"}


def test_record_is_json_and_holds_no_settings(plan):
    state = deployment_state(plan, "gpu01")
    assert json.loads(json.dumps(state)) == state
    assert all(
        set(s) == {"key", "backend", "unit", "port", "address", "names", "chat_model", "models"}
        for s in state["services"]
    )


def test_unknown_host_is_refused(plan):
    with pytest.raises(
        AnsibleFilterError, match="deployment_state: host 'gpu09' is not in the plan; the plan's hosts are gpu01, gpu02"
    ):
        deployment_state(plan, "gpu09")
