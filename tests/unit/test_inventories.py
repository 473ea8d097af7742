"""The catalogs shipped in the inventories are valid and plan what their comments say."""

from __future__ import annotations

from pathlib import Path

import yaml
from ansible_collections.labai.llm_stack.plugins.plugin_utils.plan import build_plan

INVENTORIES = Path(__file__).resolve().parents[2] / "inventories"


def catalog_of(inventory: str, **variables: str) -> dict:
    text = (INVENTORIES / inventory / "group_vars" / "all" / "catalog.yml").read_text()
    for name, value in variables.items():
        text = text.replace("{{ " + name + " }}", value)
    return yaml.safe_load(text)["llm_stack_catalog"]


def test_example_catalog_is_the_seed_deployment() -> None:
    hosts = yaml.safe_load((INVENTORIES / "example" / "hosts.yml").read_text())["llm_hosts"]["hosts"]
    assert list(hosts) == ["gpu01"]
    plan = build_plan(catalog_of("example"), list(hosts))
    # One GPU host runs everything, the gateway included, so every server listens on loopback only.
    assert [(s["key"], s["port"], s["bind"], s["api_base"]) for s in plan["hosts"]["gpu01"]["services"]] == [
        ("vllm-qwen-coder", 8001, "127.0.0.1", "http://127.0.0.1:8001/v1"),
        ("llamacpp-qwen-coder-cpp", 8000, "127.0.0.1", "http://127.0.0.1:8000/v1"),
        ("llamacpp-qwen-coder-cpp-native", 8080, "127.0.0.1", "http://127.0.0.1:8080/v1"),
        ("ollama", 11434, "127.0.0.1", "http://127.0.0.1:11434"),
        ("litellm", 4000, "127.0.0.1", "http://127.0.0.1:4000/v1"),
    ]
    assert plan["hosts"]["gpu01"]["services"][0]["names"] == ["qwen-coder", "qwen-math", "llama2-13b-vllm"]
    assert plan["fallbacks"]["qwen-coder"] == ["qwen-coder-ollama", "qwen-coder-cpp"]


def test_lab_catalog_plans_every_backend_and_the_gateway() -> None:
    plan = build_plan(
        catalog_of("lab", lab_cache="/var/cache/llm-stack-lab", lab_tls_dir="/lab/tls"), ["llm-lab-debian12"]
    )
    services = plan["hosts"]["llm-lab-debian12"]["services"]
    # The lab's gateway serves HTTPS, with a certificate from the lab's own CA.
    assert services[-1]["probe_url"] == "https://127.0.0.1:4000"
    assert services[-1]["tls"]["sources"] == {
        "certificate": "/lab/tls/gateway.crt",
        "private_key": "/lab/tls/gateway.key",
        "ca_certificate": "/lab/tls/ca.crt",
    }
    assert [s["key"] for s in services] == [
        "vllm-lab-vllm",
        "llamacpp-lab-cpp",
        "ollama",
        "litellm",
    ]
    assert plan["public_names"] == ["lab-coder", "lab-cpp", "lab-ollama", "lab-vllm"]
