"""The host_services filter hands each role its slice of the plan."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.labai.llm_stack.plugins.filter.host_services import host_services
from ansible_collections.labai.llm_stack.plugins.plugin_utils.plan import build_plan


@pytest.fixture
def plan(catalog, hosts):
    return build_plan(catalog, hosts)


def test_vllm_service_carries_its_model(plan):
    [service] = host_services(plan, "gpu01", "vllm")
    assert service["unit"] == "llm-vllm-qwen-coder.service"
    assert service["port"] == 8001
    assert service["model"] == "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ"
    assert service["names"] == ["qwen-coder", "qwen-math", "llama2-13b-vllm"]
    assert service["settings"]["quantization"] == "awq"
    assert (service["probe_url"], service["api_base"]) == ("http://127.0.0.1:8001", "http://127.0.0.1:8001/v1")
    assert (service["env_file"], service["ready_timeout"], service["needs_gpu"]) == ("vllm-qwen-coder.env", 600, True)


def test_records_are_the_plans_records_of_that_backend_on_that_host(plan):
    assert host_services(plan, "gpu02", "llamacpp") == plan["hosts"]["gpu02"]["services"][:2]
    assert [s["key"] for s in host_services(plan, "gpu02", "llamacpp")] == [
        "llamacpp-qwen-coder-cpp",
        "llamacpp-qwen-coder-native",
    ]
    [gateway] = host_services(plan, "gpu01", "litellm")
    assert (gateway["unit"], gateway["port"]) == ("llm-litellm.service", 4000)
    assert host_services(plan, "gpu02", "litellm") == []


def test_changing_a_record_leaves_the_plan_alone(plan):
    [service] = host_services(plan, "gpu01", "vllm")
    service["port"] = 1
    assert host_services(plan, "gpu01", "vllm")[0]["port"] == 8001


def test_host_without_the_backend_gets_nothing(plan):
    assert host_services(plan, "gpu02", "vllm") == []
    assert host_services(plan, "not-a-host", "llamacpp") == []


def test_llamacpp_services_in_catalog_order(plan):
    services = host_services(plan, "gpu01", "llamacpp")
    assert [(s["name"], s["port"], s["settings"]["flavor"]) for s in services] == [
        ("qwen-coder-cpp", 8000, "python"),
        ("qwen-coder-native", 8080, "native"),
    ]
    assert services[0]["model_file"].endswith(".gguf")


def test_ollama_lists_tags_to_pull(plan):
    [service] = host_services(plan, "gpu02", "ollama")
    assert service["unit"] == "llm-ollama.service"
    assert service["names"] == ["qwen2.5-coder:7b"]
    assert service["models"] == ["qwen-coder-ollama"]
    assert (service["probe_url"], service["api_base"]) == ("http://127.0.0.1:11434", "http://gpu02:11434")


def test_unknown_backend_is_refused(plan):
    with pytest.raises(AnsibleFilterError) as exc:
        host_services(plan, "gpu01", "vlm")
    assert str(exc.value) == "host_services: unknown backend 'vlm'; use one of llamacpp, ollama, vllm, litellm"


def test_untagged_ollama_models_are_pulled_as_latest(catalog, hosts):
    catalog["models"][1]["model"] = "llama3.2"
    [service] = host_services(build_plan(catalog, hosts), "gpu01", "ollama")
    assert service["names"] == ["llama3.2:latest"]
