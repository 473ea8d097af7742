"""The catalogs shipped in the inventories are valid and plan what their comments say."""

from __future__ import annotations

from pathlib import Path

import yaml
from ansible_collections.labai.llm_stack.plugins.module_utils.catalog import build_plan

INVENTORIES = Path(__file__).resolve().parents[2] / "inventories"


def catalog_of(inventory: str, **variables: str) -> dict:
    text = (INVENTORIES / inventory / "group_vars" / "all" / "catalog.yml").read_text()
    for name, value in variables.items():
        text = text.replace("{{ " + name + " }}", value)
    return yaml.safe_load(text)["llm_stack_catalog"]


def test_example_catalog_is_the_seed_deployment() -> None:
    plan = build_plan(catalog_of("example"), ["gpu01"])
    ports = {key: service["port"] for key, service in plan["services"].items()}
    assert ports == {
        "vllm-qwen-coder": 8001,
        "llamacpp-qwen-coder-cpp": 8000,
        "llamacpp-qwen-coder-cpp-native": 8080,
        "ollama": 11434,
        "litellm": 4000,
    }
    assert plan["services"]["vllm-qwen-coder"]["served_names"] == ["qwen-coder", "qwen-math", "llama2-13b-vllm"]
    assert plan["fallbacks"]["qwen-coder"] == ["qwen-coder-ollama", "qwen-coder-cpp"]


def test_lab_catalog_plans_every_backend_and_the_gateway() -> None:
    plan = build_plan(catalog_of("lab", lab_cache="/var/cache/llm-stack-lab"), ["llm-lab-debian12"])
    assert plan["hosts"]["llm-lab-debian12"]["services"] == ["vllm-lab-vllm", "llamacpp-lab-cpp", "ollama", "litellm"]
    assert plan["public_names"] == ["lab-coder", "lab-cpp", "lab-ollama", "lab-vllm"]
