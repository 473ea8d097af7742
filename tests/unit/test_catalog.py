# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""build_plan: the plan of a valid catalog, and the exact problem reported for each invalid one."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
from ansible_collections.labai.llm_stack.plugins.plugin_utils import backends
from ansible_collections.labai.llm_stack.plugins.plugin_utils.plan import CatalogError, build_plan

DELETE = object()
TOP = Path(__file__).resolve().parents[2]

M0 = "models[0] (qwen-coder)"
M1 = "models[1] (qwen-coder-ollama)"
M2 = "models[2] (qwen-coder-cpp)"
M3 = "models[3] (qwen-coder-native)"
PORT_FIX = "use a free TCP port between 1 and 65535"
UNIQUE_FIX = "give each model and alias a unique name"
NAME_FIX = "use letters, digits and . _ : / - (starting with a letter or digit)"
UNKNOWN_REF = "is not a model name or alias in the catalog; name a model declared under models"
GGUF_FIX = "set the absolute path of the GGUF file on the host"
LOOP_FIX = "remove one of these fallbacks"
GPU_FIX = "use the share of GPU memory vLLM may take, such as 0.85"
VLLM_GPUS_FIX = (
    "list the GPUs to run the model on by nvidia-smi's index, one per tensor_parallel_size, such as [0, 1], "
    "or null for GPUs 0 to tensor_parallel_size - 1"
)
CPP_GPUS_FIX = "list the GPUs to offload the layers to by nvidia-smi's index, such as [1], or null for GPU 0"
PARAMS_FIX = (
    "set the model's parameter count in billions, such as 7.6 (the pre-flight memory check reads it when the "
    "model is not a local directory with a config.json), or null"
)
EXTRA_ARGS_FIX = "write extra_args as a list of strings, such as ['--enforce-eager']"
HOSTS_FIX = "pass the inventory hostnames, such as groups['llm_hosts']"
GGUF = "/srv/models/qwen2.5-coder-7b-instruct-q4_k_m.gguf"


def mutated(catalog: dict, changes: dict[str, object]) -> dict:
    """A copy of catalog with each dotted path ('models.0.port') set, appended to, or DELETEd."""
    result = copy.deepcopy(catalog)
    for path, value in changes.items():
        *parents, last = [int(part) if part.isdigit() else part for part in path.split(".")]
        target = result
        for key in parents:
            target = target[key]
        if value is DELETE:
            del target[last]
        elif isinstance(target, list) and last == len(target):
            target.append(value)
        else:
            target[last] = value
    return result


def problems_of(catalog: object, hosts: object) -> list[str]:
    with pytest.raises(CatalogError) as exc:
        build_plan(catalog, hosts)
    return exc.value.problems


# ---------------------------------------------------------------------------------------------------------
# A valid catalog


NO_SOURCE = {"model_src": None, "model_url": None, "model_checksum": None}


def test_seed_catalog_plan(catalog, hosts):
    vllm_settings = {
        "quantization": "awq",
        "max_model_len": 8192,
        "gpu_memory_utilization": 0.85,
        "tensor_parallel_size": 1,
        "max_num_seqs": 16,
        "parameters_billions": None,
        "gpus": None,
        "download_dir": None,
        "revision": None,
        "model_src": None,
        "extra_args": [],
    }
    cpp_settings = {"flavor": "python", "n_ctx": 4096, "n_gpu_layers": 99, "threads": 8, "parallel": 1, "gpus": None}
    native_settings = {"flavor": "native", "n_ctx": 4096, "n_gpu_layers": 99, "threads": None, "parallel": 1}
    native_settings["gpus"] = None
    cpp_settings.update(NO_SOURCE)
    native_settings.update(NO_SOURCE)
    both = ["gpu01", "gpu02"]
    assert build_plan(catalog, hosts) == {
        "models": [
            {
                "name": "qwen-coder",
                "backend": "vllm",
                "aliases": ["qwen-math", "llama2-13b-vllm"],
                "fallbacks": ["qwen-coder-ollama", "qwen-coder-cpp"],
                "context_window_fallbacks": [],
                "hosts": ["gpu01"],
                "service": "vllm-qwen-coder",
                "upstream": "qwen-coder",
                "model": "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ",
                "model_file": None,
                "settings": vllm_settings,
            },
            {
                "name": "qwen-coder-ollama",
                "backend": "ollama",
                "aliases": [],
                "fallbacks": ["qwen-coder-cpp"],
                "context_window_fallbacks": [],
                "hosts": both,
                "service": "ollama",
                "upstream": "qwen2.5-coder:7b",
                "model": "qwen2.5-coder:7b",
                "model_file": None,
                "settings": {"keep_alive": "5m", "digest": None},
            },
            {
                "name": "qwen-coder-cpp",
                "backend": "llamacpp",
                "aliases": [],
                "fallbacks": [],
                "context_window_fallbacks": [],
                "hosts": both,
                "service": "llamacpp-qwen-coder-cpp",
                "upstream": "qwen-coder-cpp",
                "model": None,
                "model_file": GGUF,
                "settings": {**cpp_settings, "extra_args": []},
            },
            {
                "name": "qwen-coder-native",
                "backend": "llamacpp",
                "aliases": [],
                "fallbacks": [],
                "context_window_fallbacks": [],
                "hosts": both,
                "service": "llamacpp-qwen-coder-native",
                "upstream": "qwen-coder-native",
                "model": None,
                "model_file": GGUF,
                "settings": {**native_settings, "extra_args": ["--flash-attn"]},
            },
        ],
        "hosts": {
            "gpu01": {
                "services": [
                    {
                        "key": "vllm-qwen-coder",
                        "backend": "vllm",
                        "unit": "llm-vllm-qwen-coder.service",
                        "env_file": "vllm-qwen-coder.env",
                        "port": 8001,
                        "bind": "127.0.0.1",
                        "probe_url": "http://127.0.0.1:8001",
                        "api_base": "http://127.0.0.1:8001/v1",
                        "names": ["qwen-coder", "qwen-math", "llama2-13b-vllm"],
                        "chat_model": "qwen-coder",
                        "models": ["qwen-coder"],
                        "gateway_ids": ["qwen-coder@gpu01"],
                        "ready_timeout": 600,
                        "needs_gpu": True,
                        "key_variable": "llm_stack_vllm_api_key",
                        "reached_from": [],
                        "config_files": [],
                        "tls": {},
                        "ca_path": "",
                        "name": "qwen-coder",
                        "model": "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ",
                        "model_file": None,
                        "settings": vllm_settings,
                    },
                    {
                        "key": "llamacpp-qwen-coder-cpp",
                        "backend": "llamacpp",
                        "unit": "llm-llamacpp-qwen-coder-cpp.service",
                        "env_file": "llamacpp-qwen-coder-cpp.env",
                        "port": 8000,
                        "bind": "0.0.0.0",
                        "probe_url": "http://127.0.0.1:8000",
                        "api_base": "http://gpu01:8000/v1",
                        "names": ["qwen-coder-cpp"],
                        "chat_model": "qwen-coder-cpp",
                        "models": ["qwen-coder-cpp"],
                        "gateway_ids": ["qwen-coder-cpp@gpu01"],
                        "ready_timeout": 180,
                        "needs_gpu": True,
                        "key_variable": "llm_stack_llamacpp_api_key",
                        "reached_from": [],
                        "config_files": [],
                        "tls": {},
                        "ca_path": "",
                        "name": "qwen-coder-cpp",
                        "model": None,
                        "model_file": GGUF,
                        "settings": {**cpp_settings, "extra_args": []},
                    },
                    {
                        "key": "llamacpp-qwen-coder-native",
                        "backend": "llamacpp",
                        "unit": "llm-llamacpp-qwen-coder-native.service",
                        "env_file": "llamacpp-qwen-coder-native.env",
                        "port": 8080,
                        "bind": "0.0.0.0",
                        "probe_url": "http://127.0.0.1:8080",
                        "api_base": "http://gpu01:8080/v1",
                        "names": ["qwen-coder-native"],
                        "chat_model": "qwen-coder-native",
                        "models": ["qwen-coder-native"],
                        "gateway_ids": ["qwen-coder-native@gpu01"],
                        "ready_timeout": 180,
                        "needs_gpu": True,
                        "key_variable": "llm_stack_llamacpp_api_key",
                        "reached_from": [],
                        "config_files": [],
                        "tls": {},
                        "ca_path": "",
                        "name": "qwen-coder-native",
                        "model": None,
                        "model_file": GGUF,
                        "settings": {**native_settings, "extra_args": ["--flash-attn"]},
                    },
                    {
                        "key": "ollama",
                        "backend": "ollama",
                        "unit": "llm-ollama.service",
                        "env_file": "ollama.env",
                        "port": 11434,
                        "bind": "0.0.0.0",
                        "probe_url": "http://127.0.0.1:11434",
                        "api_base": "http://gpu01:11434",
                        "names": ["qwen2.5-coder:7b"],
                        "chat_model": "qwen2.5-coder:7b",
                        "models": ["qwen-coder-ollama"],
                        "gateway_ids": ["qwen-coder-ollama@gpu01"],
                        "ready_timeout": 120,
                        "needs_gpu": False,
                        "key_variable": "",
                        "reached_from": [],
                        "config_files": [],
                        "tls": {},
                        "ca_path": "",
                        "digests": [],
                    },
                    {
                        "key": "litellm",
                        "backend": "litellm",
                        "unit": "llm-litellm.service",
                        "env_file": "litellm.env",
                        "port": 4000,
                        "bind": "127.0.0.1",
                        "probe_url": "http://127.0.0.1:4000",
                        "api_base": "http://127.0.0.1:4000/v1",
                        "names": [
                            "qwen-coder",
                            "qwen-math",
                            "llama2-13b-vllm",
                            "qwen-coder-ollama",
                            "qwen-coder-cpp",
                            "qwen-coder-native",
                        ],
                        "chat_model": "qwen-coder",
                        "models": ["qwen-coder", "qwen-coder-ollama", "qwen-coder-cpp", "qwen-coder-native"],
                        "gateway_ids": [],
                        "ready_timeout": 180,
                        "needs_gpu": False,
                        "key_variable": "llm_stack_litellm_master_key",
                        "reached_from": [],
                        "config_files": ["litellm/config.yaml"],
                        "tls": {},
                        "ca_path": "",
                        "redis_address": "127.0.0.1",
                    },
                ]
            },
            "gpu02": {
                "services": [
                    {
                        "key": "llamacpp-qwen-coder-cpp",
                        "backend": "llamacpp",
                        "unit": "llm-llamacpp-qwen-coder-cpp.service",
                        "env_file": "llamacpp-qwen-coder-cpp.env",
                        "port": 8000,
                        "bind": "0.0.0.0",
                        "probe_url": "http://127.0.0.1:8000",
                        "api_base": "http://gpu02:8000/v1",
                        "names": ["qwen-coder-cpp"],
                        "chat_model": "qwen-coder-cpp",
                        "models": ["qwen-coder-cpp"],
                        "gateway_ids": ["qwen-coder-cpp@gpu02"],
                        "ready_timeout": 180,
                        "needs_gpu": True,
                        "key_variable": "llm_stack_llamacpp_api_key",
                        "reached_from": ["gpu01"],
                        "config_files": [],
                        "tls": {},
                        "ca_path": "",
                        "name": "qwen-coder-cpp",
                        "model": None,
                        "model_file": GGUF,
                        "settings": {**cpp_settings, "extra_args": []},
                    },
                    {
                        "key": "llamacpp-qwen-coder-native",
                        "backend": "llamacpp",
                        "unit": "llm-llamacpp-qwen-coder-native.service",
                        "env_file": "llamacpp-qwen-coder-native.env",
                        "port": 8080,
                        "bind": "0.0.0.0",
                        "probe_url": "http://127.0.0.1:8080",
                        "api_base": "http://gpu02:8080/v1",
                        "names": ["qwen-coder-native"],
                        "chat_model": "qwen-coder-native",
                        "models": ["qwen-coder-native"],
                        "gateway_ids": ["qwen-coder-native@gpu02"],
                        "ready_timeout": 180,
                        "needs_gpu": True,
                        "key_variable": "llm_stack_llamacpp_api_key",
                        "reached_from": ["gpu01"],
                        "config_files": [],
                        "tls": {},
                        "ca_path": "",
                        "name": "qwen-coder-native",
                        "model": None,
                        "model_file": GGUF,
                        "settings": {**native_settings, "extra_args": ["--flash-attn"]},
                    },
                    {
                        "key": "ollama",
                        "backend": "ollama",
                        "unit": "llm-ollama.service",
                        "env_file": "ollama.env",
                        "port": 11434,
                        "bind": "0.0.0.0",
                        "probe_url": "http://127.0.0.1:11434",
                        "api_base": "http://gpu02:11434",
                        "names": ["qwen2.5-coder:7b"],
                        "chat_model": "qwen2.5-coder:7b",
                        "models": ["qwen-coder-ollama"],
                        "gateway_ids": ["qwen-coder-ollama@gpu02"],
                        "ready_timeout": 120,
                        "needs_gpu": False,
                        "key_variable": "",
                        "reached_from": ["gpu01"],
                        "config_files": [],
                        "tls": {},
                        "ca_path": "",
                        "digests": [],
                    },
                ]
            },
        },
        "public_names": [
            "llama2-13b-vllm",
            "qwen-coder",
            "qwen-coder-cpp",
            "qwen-coder-native",
            "qwen-coder-ollama",
            "qwen-math",
        ],
        "fallbacks": {
            "qwen-coder": ["qwen-coder-ollama", "qwen-coder-cpp"],
            "qwen-coder-ollama": ["qwen-coder-cpp"],
        },
        "routes": [{"pattern": "meta-llama/*", "model": "qwen-coder", "service": "vllm-qwen-coder"}],
        "redis": {"host": "gpu01", "bind": ["127.0.0.1"], "address": "127.0.0.1", "gateways": ["gpu01"]},
    }


def test_plan_survives_json_and_leaves_the_catalog_alone(catalog, hosts):
    before = copy.deepcopy(catalog)
    plan = build_plan(catalog, hosts)
    assert json.loads(json.dumps(plan)) == plan
    assert catalog == before


def record(plan: dict, host: str, key: str) -> dict:
    """The record of service ``key`` on ``host``; the test fails if there is not exactly one."""
    [found] = [service for service in plan["hosts"][host]["services"] if service["key"] == key]
    return found


def keys(plan: dict, host: str) -> list[str]:
    return [service["key"] for service in plan["hosts"][host]["services"]]


def test_minimal_catalog_gets_every_default():
    plan = build_plan(
        {
            "models": [
                {"name": "v", "backend": "vllm", "model": "org/v", "port": 8001},
                {"name": "c", "backend": "llamacpp", "model_file": "/m/c.gguf", "port": 8002},
                {"name": "o", "backend": "ollama", "model": "o:1b"},
            ]
        },
        ["h1"],
    )
    assert [model["settings"] for model in plan["models"]] == [
        {
            "quantization": None,
            "max_model_len": None,
            "gpu_memory_utilization": 0.9,
            "tensor_parallel_size": 1,
            "max_num_seqs": None,
            "parameters_billions": None,
            "gpus": None,
            "download_dir": None,
            "revision": None,
            "model_src": None,
            "extra_args": [],
        },
        {
            "flavor": "python",
            "n_ctx": 4096,
            "n_gpu_layers": 0,
            "threads": None,
            "parallel": 1,
            "gpus": None,
            **NO_SOURCE,
            "extra_args": [],
        },
        {"keep_alive": None, "digest": None},
    ]
    assert [model["upstream"] for model in plan["models"]] == ["v", "c", "o:1b"]
    assert list(plan["hosts"]) == ["h1"]
    assert [
        (s["key"], s["port"], s["bind"], s["probe_url"], s["api_base"], s["ready_timeout"], s["needs_gpu"])
        for s in plan["hosts"]["h1"]["services"]
    ] == [
        ("vllm-v", 8001, "127.0.0.1", "http://127.0.0.1:8001", "http://127.0.0.1:8001/v1", 600, True),
        ("llamacpp-c", 8002, "127.0.0.1", "http://127.0.0.1:8002", "http://127.0.0.1:8002/v1", 180, False),
        ("ollama", 11434, "127.0.0.1", "http://127.0.0.1:11434", "http://127.0.0.1:11434", 120, False),
        ("litellm", 4000, "127.0.0.1", "http://127.0.0.1:4000", "http://127.0.0.1:4000/v1", 180, False),
    ]
    assert (plan["fallbacks"], plan["routes"]) == ({}, [])


@pytest.mark.parametrize(
    ("changes", "check"),
    [
        pytest.param(
            {"models.3.port": 8001, "models.3.hosts": ["gpu02"]},
            lambda plan: (
                record(plan, "gpu02", "llamacpp-qwen-coder-native")["port"] == 8001
                and "llamacpp-qwen-coder-native" not in keys(plan, "gpu01")
            ),
            id="same-port-on-other-host",
        ),
        pytest.param(
            {"models.1.hosts": ["gpu02"], "models.4": {"name": "o2", "backend": "ollama", "model": "o:1b"}},
            lambda plan: (
                (record(plan, "gpu01", "ollama")["models"], record(plan, "gpu01", "ollama")["names"])
                == (["o2"], ["o:1b"])
                and (record(plan, "gpu02", "ollama")["models"], record(plan, "gpu02", "ollama")["names"])
                == (["qwen-coder-ollama", "o2"], ["qwen2.5-coder:7b", "o:1b"])
            ),
            id="ollama-hosts-are-the-union",
        ),
        pytest.param(
            {"models.1.hosts": ["gpu02"]},
            lambda plan: (
                keys(plan, "gpu01")[-2:] == ["llamacpp-qwen-coder-native", "litellm"]
                and keys(plan, "gpu02")[-1:] == ["ollama"]
            ),
            id="ollama-only-where-its-models-are",
        ),
        pytest.param(
            {"models.4": {"name": "Qwen_Coder.Ollama", "backend": "ollama", "model": "o:1b"}},
            lambda plan: plan["models"][4]["service"] == "ollama",
            id="ollama-names-may-slug-alike",
        ),
        pytest.param(
            {"models.0.vllm.gpu_memory_utilization": 1},
            lambda plan: type(plan["models"][0]["settings"]["gpu_memory_utilization"]) is float,
            id="gpu-share-becomes-float",
        ),
        pytest.param(
            {
                "models.0.vllm.gpus": [3, 1],
                "models.0.vllm.tensor_parallel_size": 2,
                "models.0.vllm.parameters_billions": 7.6,
                "models.2.llamacpp.gpus": [1],
            },
            lambda plan: (
                [
                    {key: model["settings"][key] for key in ("gpus", "parameters_billions") if key in model["settings"]}
                    for model in plan["models"]
                ]
                == [{"gpus": [3, 1], "parameters_billions": 7.6}, {}, {"gpus": [1]}, {"gpus": None}]
            ),
            id="gpu-placement",
        ),
        pytest.param(
            {"models.0.fallbacks": ["qwen-coder-cpp"], "models.1.fallbacks": ["qwen-math"]},
            lambda plan: plan["fallbacks"] == {"qwen-coder": ["qwen-coder-cpp"], "qwen-coder-ollama": ["qwen-math"]},
            id="fallback-to-an-alias",
        ),
        pytest.param(
            {"routes.0.model": "qwen-coder-ollama", "routes.1": {"pattern": "*", "model": "qwen-math"}},
            lambda plan: (
                plan["routes"]
                == [
                    {"pattern": "meta-llama/*", "model": "qwen-coder-ollama", "service": "ollama"},
                    {"pattern": "*", "model": "qwen-coder", "service": "vllm-qwen-coder"},
                ]
            ),
            id="route-to-ollama-and-alias",
        ),
        pytest.param(
            {
                "backends.vllm.enabled": False,
                "models.0": {"name": "qwen-coder", "backend": "ollama", "model": "qwen2.5-coder:7b"},
            },
            lambda plan: (
                keys(plan, "gpu01")[:1] == ["llamacpp-qwen-coder-cpp"] and plan["routes"][0]["service"] == "ollama"
            ),
            id="disabled-backend-without-models",
        ),
        pytest.param(
            {
                "models.0.vllm": {
                    "quantization": None,
                    "download_dir": "/srv/hf",
                    "extra_args": ["--enforce-eager"],
                }
            },
            lambda plan: plan["models"][0]["settings"]["download_dir"] == "/srv/hf",
            id="nullable-settings",
        ),
    ],
)
def test_valid_variations(catalog, hosts, changes, check):
    assert check(build_plan(mutated(catalog, changes), hosts))


def test_a_gateway_on_every_host_by_default(catalog, hosts):
    # A gateway on every host: vLLM on gpu01 must then be reachable from gpu02 too, and the gateways share
    # the Redis on the first gateway host, gpu01, at its address.
    changes = {"gateway": {}, "backends.vllm.bind": "0.0.0.0"}
    plan = build_plan(mutated(catalog, changes), hosts, {"gpu01": "10.0.0.1", "gpu02": "10.0.0.2"})
    assert plan["redis"] == {
        "host": "gpu01",
        "bind": ["127.0.0.1", "10.0.0.1"],
        "address": "10.0.0.1",
        "gateways": ["gpu01", "gpu02"],
    }
    assert [record(plan, host, "litellm")["redis_address"] for host in hosts] == ["127.0.0.1", "10.0.0.1"]
    assert all(
        record(plan, host, "litellm")
        | {"names": [], "models": [], "chat_model": None, "gateway_ids": [], "redis_address": None}
        == {
            "key": "litellm",
            "backend": "litellm",
            "unit": "llm-litellm.service",
            "env_file": "litellm.env",
            "port": 4000,
            "bind": "127.0.0.1",
            "probe_url": "http://127.0.0.1:4000",
            "api_base": "http://127.0.0.1:4000/v1",
            "names": [],
            "chat_model": None,
            "models": [],
            "gateway_ids": [],
            "ready_timeout": 180,
            "needs_gpu": False,
            "key_variable": "llm_stack_litellm_master_key",
            "reached_from": [],
            "config_files": ["litellm/config.yaml"],
            "tls": {},
            "ca_path": "",
            "redis_address": None,
        }
        for host in ("gpu01", "gpu02")
    )


def test_hosts_argument_is_deduplicated(catalog):
    assert list(build_plan(catalog, ["gpu01", "gpu02", "gpu01"])["hosts"]) == ["gpu01", "gpu02"]


def test_string_subclasses_come_out_plain(catalog, hosts):
    class Tagged(str):
        pass

    catalog["models"][0]["name"] = Tagged("qwen-coder")
    catalog["models"][0]["vllm"]["extra_args"] = [Tagged("--enforce-eager")]
    model = build_plan(catalog, [Tagged(host) for host in hosts])["models"][0]
    assert type(model["name"]) is str
    assert type(model["settings"]["extra_args"][0]) is str
    assert type(model["hosts"][0]) is str


# ---------------------------------------------------------------------------------------------------------
# Rejections: one problem each, in the exact words the user reads


def test_catalog_must_be_a_mapping(hosts):
    assert problems_of([], hosts) == [
        "llm_stack_catalog: expected a mapping, got a list; "
        "define models (and optionally gateway, backends, routes) under it"
    ]


@pytest.mark.parametrize(
    ("hosts", "problems"),
    [
        pytest.param("gpu01", [f"plan(hosts): expected a list of hostnames, got a string; {HOSTS_FIX}"], id="str"),
        pytest.param(
            [],
            ["plan(hosts): the list of hosts is empty; put at least one host in the group you pass"],
            id="empty",
        ),
        pytest.param(
            ["gpu01", 5, "gpu02"],
            [f"plan(hosts)[1]: expected a hostname, got an integer; {HOSTS_FIX}"],
            id="item",
        ),
    ],
)
def test_rejects_bad_hosts_argument(catalog, hosts, problems):
    assert problems_of(catalog, hosts) == problems


REJECTIONS = [
    # top level
    pytest.param(
        {"models": DELETE},
        [
            "llm_stack_catalog.models: required; list at least one model under models",
            f"routes[0].model: 'qwen-coder' {UNKNOWN_REF}",
        ],
        id="models-missing",
    ),
    pytest.param(
        {"models": [], "routes": []},
        ["llm_stack_catalog.models: the list is empty; list at least one model under models"],
        id="models-empty",
    ),
    pytest.param(
        {"models": {"qwen-coder": {}}, "routes": []},
        ["llm_stack_catalog.models: expected a list, got a mapping; write models as a list"],
        id="models-not-a-list",
    ),
    pytest.param(
        {"model": []},
        ["llm_stack_catalog: unknown field 'model'; did you mean 'models'?"],
        id="top-level-typo",
    ),
    pytest.param(
        {"extras": 1},
        ["llm_stack_catalog: unknown field 'extras'; remove it or use one of: backends, gateway, models, routes"],
        id="top-level-unknown",
    ),
    # gateway
    pytest.param(
        {"gateway": [4000]},
        ["llm_stack_catalog.gateway: expected a mapping, got a list; write gateway as a mapping, such as {port: 4000}"],
        id="gateway-not-a-mapping",
    ),
    pytest.param({"gateway.prot": 1}, ["gateway: unknown field 'prot'; did you mean 'port'?"], id="gateway-typo"),
    pytest.param({"gateway.port": 70000}, [f"gateway.port: 70000 is outside 1-65535; {PORT_FIX}"], id="gw-70000"),
    pytest.param({"gateway.port": 0}, [f"gateway.port: 0 is outside 1-65535; {PORT_FIX}"], id="gateway-port-0"),
    pytest.param({"gateway.port": "4000"}, [f"gateway.port: '4000' is not an integer; {PORT_FIX}"], id="gw-str"),
    pytest.param({"gateway.port": True}, [f"gateway.port: true is not an integer; {PORT_FIX}"], id="gw-bool"),
    pytest.param({"gateway.port": 40.0}, [f"gateway.port: 40.0 is not an integer; {PORT_FIX}"], id="gw-float"),
    pytest.param(
        {"gateway.hosts": ["gpu9"]},
        ["gateway.hosts[0]: 'gpu9' is not among the play's hosts (gpu01, gpu02); use an inventory hostname"],
        id="gateway-unknown-host",
    ),
    pytest.param(
        {"gateway.port": 8001},
        ["gateway.port: 8001 on host gpu01 is already used by models[0] (qwen-coder); give each service its own port"],
        id="gateway-port-clash",
    ),
    pytest.param(
        # vLLM on gpu01 bound to every interface, so the gateway on gpu02 may reach it.
        {"gateway.port": 8000, "gateway.hosts": DELETE, "backends.vllm.bind": "0.0.0.0"},
        [
            "gateway.port: 8000 on hosts gpu01, gpu02 is already used by models[2] (qwen-coder-cpp); "
            "give each service its own port",
            "gateway.redis_host: the gateway on gpu02 reaches Redis on gpu01 over the network, but "
            "llm_stack_address of gpu01 is not set; set llm_stack_address of gpu01 to its IP address on the "
            "private network",
        ],
        id="gateway-port-clash-on-two-hosts",
    ),
    # backends
    pytest.param({"backends.vlm": {}}, ["backends: unknown field 'vlm'; did you mean 'vllm'?"], id="backend-typo"),
    pytest.param(
        {"backends.vllm.port": 8000},
        ["backends.vllm: unknown field 'port'; remove it or use one of: bind, enabled, ready_timeout"],
        id="backend-unknown-key",
    ),
    pytest.param(
        {"backends.ollama.host": "0.0.0.0"},
        [
            "backends.ollama: unknown field 'host'; "
            "remove it or use one of: bind, enabled, ready_timeout, port, trusted_network"
        ],
        id="ollama-backend-unknown-key",
    ),
    pytest.param(
        {"backends.vllm": True},
        ["backends.vllm: expected a mapping, got a boolean; write vllm as a mapping, such as {enabled: true}"],
        id="backend-not-a-mapping",
    ),
    pytest.param(
        {"backends.vllm.enabled": "yes"},
        ["backends.vllm.enabled: 'yes' is not a boolean; use true or false"],
        id="backend-enabled-not-bool",
    ),
    pytest.param(
        {"backends.ollama.enabled": False},
        [
            f"{M1}.backend: backend 'ollama' is disabled (backends.ollama.enabled: false) but this model "
            "needs it; enable the backend or remove the model"
        ],
        id="backend-disabled",
    ),
    pytest.param(
        {"backends.ollama.port": 65536},
        [f"backends.ollama.port: 65536 is outside 1-65535; {PORT_FIX}"],
        id="ollama-port-range",
    ),
    pytest.param(
        {"backends.ollama.port": 8000},
        [
            "backends.ollama.port: 8000 on hosts gpu01, gpu02 is already used by models[2] (qwen-coder-cpp); "
            "give each service its own port"
        ],
        id="ollama-port-clash",
    ),
    # model entries and their fields
    pytest.param(
        {"models.4": "qwen"},
        ["models[4]: expected a mapping, got a string; write each model as a mapping with name and backend"],
        id="model-not-a-mapping",
    ),
    pytest.param(
        {"models.3.fallback": []},
        [f"{M3}: unknown field 'fallback'; did you mean 'fallbacks'?"],
        id="model-field-typo",
    ),
    pytest.param(
        {"models.3.zzz": 1},
        [
            f"{M3}: unknown field 'zzz'; remove it or use one of: aliases, backend, bind, "
            "context_window_fallbacks, fallbacks, hosts, llamacpp, model, model_file, name, ollama, port, vllm"
        ],
        id="model-field-unknown",
    ),
    pytest.param(
        {"models.3.name": DELETE},
        ["models[3].name: required; give the model a public name such as qwen-coder"],
        id="name-missing",
    ),
    pytest.param(
        {"models.3.name": 7},
        ["models[3].name: expected a string, got an integer; give the model a public name such as qwen-coder"],
        id="name-not-a-string",
    ),
    pytest.param(
        {"models.3.name": ""},
        ["models[3].name: the name is empty; give it a public name such as qwen-coder"],
        id="name-empty",
    ),
    pytest.param(
        {"models.3.name": "bad name"},
        [f"models[3] (bad name).name: 'bad name' has characters the gateway cannot route; {NAME_FIX}"],
        id="name-with-space",
    ),
    pytest.param(
        {"models.3.name": "-lead"},
        [f"models[3] (-lead).name: '-lead' has characters the gateway cannot route; {NAME_FIX}"],
        id="name-leading-dash",
    ),
    pytest.param(
        {"models.3.name": "native\n"},
        [f"models[3].name: 'native\\n' has characters the gateway cannot route; {NAME_FIX}"],
        id="name-trailing-newline",
    ),
    pytest.param(
        {"models.3.name": "n" * 129},
        [f"models[3] ({'n' * 129}).name: '{'n' * 40}'... is longer than 128 characters; use a shorter name"],
        id="name-too-long",
    ),
    pytest.param(
        {"models.3.name": "qwen-coder"},
        [f"models[3] (qwen-coder).name: 'qwen-coder' is already the public name of models[0]; {UNIQUE_FIX}"],
        id="duplicate-name",
    ),
    pytest.param(
        {"models.3.aliases": ["qwen-math"]},
        [f"{M3}.aliases[0]: 'qwen-math' is already an alias of models[0] (qwen-coder); {UNIQUE_FIX}"],
        id="alias-taken-by-alias",
    ),
    pytest.param(
        {"models.3.aliases": ["qwen-coder-cpp"]},
        [f"{M3}.aliases[0]: 'qwen-coder-cpp' is already the public name of models[2]; {UNIQUE_FIX}"],
        id="alias-taken-by-name",
    ),
    pytest.param(
        {"models.3.name": "qwen-math"},
        [f"{M0}.aliases[0]: 'qwen-math' is already the public name of models[3]; {UNIQUE_FIX}"],
        id="name-wins-over-earlier-alias",
    ),
    pytest.param(
        {"models.0.aliases": ["qwen-math", "qwen-math"]},
        [f"{M0}.aliases[1]: 'qwen-math' is already an alias of models[0] (qwen-coder); {UNIQUE_FIX}"],
        id="alias-twice",
    ),
    pytest.param(
        {"models.0.aliases": ["qwen math"]},
        [f"{M0}.aliases[0]: 'qwen math' has characters the gateway cannot route; {NAME_FIX}"],
        id="alias-characters",
    ),
    pytest.param(
        {"models.0.aliases": "qwen-math"},
        [
            f"{M0}.aliases: expected a list of strings, got a string; "
            "write aliases as a list of extra public names, such as [qwen-math]"
        ],
        id="aliases-not-a-list",
    ),
    pytest.param(
        {"models.0.aliases": ["qwen-math", 13]},
        [
            f"{M0}.aliases[1]: expected a string, got an integer; "
            "write aliases as a list of extra public names, such as [qwen-math]"
        ],
        id="alias-not-a-string",
    ),
    pytest.param(
        {"models.0.backend": "vlm"},
        [f"{M0}.backend: unknown backend 'vlm'; use one of llamacpp, ollama, vllm"],
        id="backend-unknown",
    ),
    pytest.param(
        {"models.0.backend": DELETE},
        [f"{M0}.backend: required; use one of llamacpp, ollama, vllm"],
        id="backend-missing",
    ),
    pytest.param(
        {"models.0.backend": ["vllm"]},
        [f"{M0}.backend: expected a string, got a list; use one of llamacpp, ollama, vllm"],
        id="backend-not-a-string",
    ),
    pytest.param(
        {"models.0.model": DELETE},
        [
            f"{M0}.model: required for backend vllm; "
            "set a Hugging Face model id such as Qwen/Qwen2.5-Coder-7B-Instruct-AWQ or a model directory"
        ],
        id="vllm-model-missing",
    ),
    pytest.param(
        {"models.0.model": 7},
        [
            f"{M0}.model: expected a string, got an integer; "
            "set a Hugging Face model id such as Qwen/Qwen2.5-Coder-7B-Instruct-AWQ or a model directory"
        ],
        id="vllm-model-not-a-string",
    ),
    pytest.param(
        {"models.1.model": DELETE},
        [f"{M1}.model: required for backend ollama; set an Ollama model tag such as qwen2.5-coder:7b"],
        id="ollama-model-missing",
    ),
    pytest.param(
        {"models.1.model": " "},
        [f"{M1}.model: the value is empty; set an Ollama model tag such as qwen2.5-coder:7b"],
        id="ollama-model-blank",
    ),
    pytest.param(
        {"models.2.model_file": DELETE},
        [f"{M2}.model_file: required for backend llamacpp; {GGUF_FIX}"],
        id="model-file-missing",
    ),
    pytest.param(
        {"models.2.model_file": "models/qwen.gguf"},
        [f"{M2}.model_file: 'models/qwen.gguf' is not an absolute path; {GGUF_FIX}"],
        id="model-file-relative",
    ),
    pytest.param(
        {"models.2.model": "qwen"},
        [f"{M2}.model: not used by backend llamacpp; remove it and set model_file instead"],
        id="model-on-llamacpp",
    ),
    pytest.param(
        {"models.0.model_file": GGUF},
        [f"{M0}.model_file: not used by backend vllm; remove it and set model instead"],
        id="model-file-on-vllm",
    ),
    pytest.param(
        {"models.0.port": DELETE},
        [f"{M0}.port: required for backend vllm; give the model its own free TCP port, such as 8001"],
        id="vllm-port-missing",
    ),
    pytest.param(
        {"models.2.port": DELETE},
        [f"{M2}.port: required for backend llamacpp; give the model its own free TCP port, such as 8001"],
        id="llamacpp-port-missing",
    ),
    pytest.param(
        {"models.1.port": 11434},
        [
            f"{M1}.port: not used by backend ollama (its models share backends.ollama.port); "
            "remove it, or set backends.ollama.port"
        ],
        id="port-on-ollama",
    ),
    pytest.param({"models.0.port": 70000}, [f"{M0}.port: 70000 is outside 1-65535; {PORT_FIX}"], id="port-70000"),
    pytest.param({"models.0.port": -1}, [f"{M0}.port: -1 is outside 1-65535; {PORT_FIX}"], id="port-negative"),
    pytest.param({"models.0.port": "8001"}, [f"{M0}.port: '8001' is not an integer; {PORT_FIX}"], id="port-str"),
    pytest.param({"models.0.port": False}, [f"{M0}.port: false is not an integer; {PORT_FIX}"], id="port-bool"),
    pytest.param({"models.0.port": None}, [f"{M0}.port: null is not an integer; {PORT_FIX}"], id="port-null"),
    pytest.param(
        {"models.3.port": 8001},
        [f"{M3}.port: 8001 on host gpu01 is already used by {M0}; give each service its own port"],
        id="port-clash",
    ),
    pytest.param(
        {"models.3.port": 4000},
        [
            "gateway.port: 4000 on host gpu01 is already used by models[3] (qwen-coder-native); give each "
            "service "
            "its own port"
        ],
        id="gateway-reported-after-models",
    ),
    pytest.param(
        {"models.3.port": 8000},
        [f"{M3}.port: 8000 on hosts gpu01, gpu02 is already used by {M2}; give each service its own port"],
        id="port-clash-on-two-hosts",
    ),
    pytest.param(
        {
            "models.1.hosts": ["gpu01"],
            "backends.ollama.port": 8000,
            "models.3.hosts": ["gpu02"],
            "models.3.port": 8000,
        },
        [
            f"{M3}.port: 8000 on host gpu02 is already used by {M2}; give each service its own port",
            f"backends.ollama.port: 8000 on host gpu01 is already used by {M2}; give each service its own port",
        ],
        id="port-clashes-in-start-order",
    ),
    pytest.param(
        {"models.4": {"name": "qwen_coder_cpp", "backend": "llamacpp", "model_file": GGUF, "port": 8002}},
        [
            "models[4] (qwen_coder_cpp).name: 'qwen_coder_cpp' gives the unit name "
            f"llm-llamacpp-qwen-coder-cpp.service, already used by {M2}; "
            "choose a name that differs in more than case or punctuation"
        ],
        id="unit-name-collision",
    ),
    # hosts
    pytest.param(
        {"models.0.hosts": ["gpu9"]},
        [f"{M0}.hosts[0]: 'gpu9' is not among the play's hosts (gpu01, gpu02); use an inventory hostname"],
        id="unknown-host",
    ),
    pytest.param(
        {"models.0.hosts": []},
        [f"{M0}.hosts: the list is empty; leave hosts out to use every host, or name some"],
        id="hosts-empty",
    ),
    pytest.param(
        {"models.0.hosts": ["gpu01", "gpu01"]},
        [f"{M0}.hosts[1]: 'gpu01' is listed twice; list each host once"],
        id="host-twice",
    ),
    pytest.param(
        {"models.0.hosts": "gpu01"},
        [f"{M0}.hosts: expected a list of strings, got a string; use an inventory hostname"],
        id="hosts-not-a-list",
    ),
    # fallbacks
    pytest.param(
        {"models.0.fallbacks": ["qwen-coder-ollama", "nope"]},
        [f"{M0}.fallbacks[1]: 'nope' {UNKNOWN_REF}"],
        id="fallback-unknown",
    ),
    pytest.param(
        {"models.0.context_window_fallbacks": ["nope"]},
        [f"{M0}.context_window_fallbacks[0]: 'nope' {UNKNOWN_REF}"],
        id="context-fallback-unknown",
    ),
    pytest.param(
        {"models.0.fallbacks": ["qwen-coder-ollama", "qwen-coder-ollama"]},
        [f"{M0}.fallbacks[1]: 'qwen-coder-ollama' is already listed at fallbacks[0]; list each fallback once"],
        id="fallback-twice",
    ),
    pytest.param(
        {"models.0.fallbacks": "qwen-coder-ollama"},
        [
            f"{M0}.fallbacks: expected a list of strings, got a string; "
            "write fallbacks as a list of public names, such as [qwen-coder-ollama]"
        ],
        id="fallbacks-not-a-list",
    ),
    pytest.param(
        {"models.3.fallbacks": ["qwen-coder-native"]},
        [f"{M3}.fallbacks: fallback chain loops qwen-coder-native -> qwen-coder-native; {LOOP_FIX}"],
        id="self-fallback",
    ),
    pytest.param(
        {"models.2.fallbacks": ["qwen-math"]},
        [
            f"{M0}.fallbacks: fallback chain loops qwen-coder -> qwen-coder-ollama -> qwen-coder-cpp -> "
            "qwen-coder; "
            f"{LOOP_FIX}",
            f"{M0}.fallbacks: fallback chain loops qwen-coder -> qwen-coder-cpp -> qwen-coder; {LOOP_FIX}",
        ],
        id="fallback-loops-through-alias",
    ),
    pytest.param(
        {"models.3.fallbacks": ["qwen-coder-cpp"], "models.2.fallbacks": ["qwen-coder-native"]},
        [f"{M2}.fallbacks: fallback chain loops qwen-coder-cpp -> qwen-coder-native -> qwen-coder-cpp; {LOOP_FIX}"],
        id="fallback-loop-reported-once",
    ),
    pytest.param(
        {
            "models.0.context_window_fallbacks": ["qwen-coder-cpp"],
            "models.2.context_window_fallbacks": ["qwen-coder"],
        },
        [f"{M0}.context_window_fallbacks: fallback chain loops qwen-coder -> qwen-coder-cpp -> qwen-coder; {LOOP_FIX}"],
        id="context-window-fallback-loop",
    ),
    # backend settings blocks
    pytest.param(
        {"models.2.vllm": {}},
        [
            f"{M2}.vllm: settings for backend vllm, but this model uses backend llamacpp; "
            "rename the block to llamacpp or remove it"
        ],
        id="block-for-other-backend",
    ),
    pytest.param(
        {"models.1.ollama": "5m"},
        [f"{M1}.ollama: expected a mapping, got a string; write ollama settings as a mapping, or leave them out"],
        id="block-not-a-mapping",
    ),
    pytest.param(
        {"models.0.vllm.max_model_length": 8192},
        [f"{M0}.vllm: unknown field 'max_model_length'; did you mean 'max_model_len'?"],
        id="block-typo",
    ),
    pytest.param(
        {"models.1.ollama.num_ctx": 8192},
        [f"{M1}.ollama: unknown field 'num_ctx'; remove it or use one of: keep_alive, digest"],
        id="block-unknown-key",
    ),
    pytest.param(
        {"models.0.vllm.quantization": "awqq"},
        [
            f"{M0}.vllm.quantization: 'awqq' is not a known quantization; use one of awq, awq_marlin, "
            "auto_awq, gptq, gptq_marlin, auto_gptq, fp8, compressed-tensors, experts_int8, moe_wna16, modelopt, "
            "modelopt_fp4, mxfp4, quark, torchao, inc, or null"
        ],
        id="quantization",
    ),
    pytest.param(
        {"models.2.llamacpp.model_url": "https://models.example/qwen.gguf"},
        [
            f"{M2}.llamacpp.model_checksum: a model downloaded without a checksum could be anything; "
            "set 'sha256:' and the file's 64 hex digits"
        ],
        id="download-without-checksum",
    ),
    pytest.param(
        {
            "models.2.llamacpp.model_url": "ftp://models/qwen.gguf",
            "models.2.llamacpp.model_checksum": "md5:abc",
        },
        [
            f"{M2}.llamacpp.model_url: 'ftp://models/qwen.gguf' is not an http(s):// or file:// URL; "
            "use an http(s):// or file:// URL of the GGUF file, or null",
            f"{M2}.llamacpp.model_checksum: 'md5:abc' is not a sha256 checksum; "
            "use 'sha256:' followed by the file's 64 hex digits, or null",
        ],
        id="download-url-and-checksum",
    ),
    pytest.param(
        {"models.0.vllm.model_src": "models/qwen"},
        [
            f"{M0}.vllm.model_src: 'models/qwen' is not an absolute path; "
            "use the absolute path of the model on the controller to copy it, or null"
        ],
        id="model-src-relative",
    ),
    pytest.param(
        {"models.0.vllm.max_model_len": True},
        [
            f"{M0}.vllm.max_model_len: true is not a positive integer; set the context length in tokens, "
            "such as 8192, "
            "or null"
        ],
        id="max-model-len-bool",
    ),
    pytest.param(
        {"models.0.vllm.max_num_seqs": 0},
        [f"{M0}.vllm.max_num_seqs: 0 is not a positive integer; set a whole number greater than 0, or null"],
        id="max-num-seqs-zero",
    ),
    pytest.param(
        {"models.0.vllm.tensor_parallel_size": None},
        [
            f"{M0}.vllm.tensor_parallel_size: null is not a positive integer; "
            "set the number of GPUs to shard the model over"
        ],
        id="tensor-parallel-null",
    ),
    pytest.param(
        {"models.0.vllm.gpus": [0, 1]},
        [
            f"{M0}.vllm.gpus: lists 2 GPUs, but vllm.tensor_parallel_size is 1; list one GPU per "
            "tensor_parallel_size, or set tensor_parallel_size: 2"
        ],
        id="gpus-not-tensor-parallel-size",
    ),
    pytest.param(
        {"models.0.vllm.gpus": [1], "models.0.vllm.tensor_parallel_size": 4},
        [
            f"{M0}.vllm.gpus: lists 1 GPU, but vllm.tensor_parallel_size is 4; list one GPU per "
            "tensor_parallel_size, or set tensor_parallel_size: 1"
        ],
        id="gpus-fewer-than-tensor-parallel-size",
    ),
    pytest.param(
        # A setting wrong on its own is reported alone: the comparison waits until both are valid.
        {"models.0.vllm.gpus": [0, 1], "models.0.vllm.tensor_parallel_size": 0},
        [
            f"{M0}.vllm.tensor_parallel_size: 0 is not a positive integer; "
            "set the number of GPUs to shard the model over"
        ],
        id="gpus-beside-bad-tensor-parallel-size",
    ),
    pytest.param(
        {"models.0.vllm.gpus": [0, 0], "models.0.vllm.tensor_parallel_size": 2},
        [f"{M0}.vllm.gpus[1]: GPU 0 is listed twice; {VLLM_GPUS_FIX}"],
        id="gpus-twice",
    ),
    pytest.param(
        {"models.0.vllm.gpus": [-1, "1", True], "models.0.vllm.tensor_parallel_size": 3},
        [
            f"{M0}.vllm.gpus[0]: -1 is not a GPU index (an integer of 0 or more); {VLLM_GPUS_FIX}",
            f"{M0}.vllm.gpus[1]: '1' is not a GPU index (an integer of 0 or more); {VLLM_GPUS_FIX}",
            f"{M0}.vllm.gpus[2]: true is not a GPU index (an integer of 0 or more); {VLLM_GPUS_FIX}",
        ],
        id="gpus-not-indexes",
    ),
    pytest.param(
        {"models.0.vllm.gpus": "0,1"},
        [f"{M0}.vllm.gpus: expected a list of GPU indexes, got a string; {VLLM_GPUS_FIX}"],
        id="gpus-a-string",
    ),
    pytest.param(
        {"models.0.vllm.gpus": []},
        [f"{M0}.vllm.gpus: the list is empty; {VLLM_GPUS_FIX}"],
        id="gpus-empty",
    ),
    pytest.param(
        {"models.2.llamacpp.gpus": [1.0]},
        [f"{M2}.llamacpp.gpus[0]: 1.0 is not a GPU index (an integer of 0 or more); {CPP_GPUS_FIX}"],
        id="llamacpp-gpus-float",
    ),
    pytest.param(
        {"models.0.vllm.parameters_billions": 0},
        [f"{M0}.vllm.parameters_billions: 0 is not a number greater than 0; {PARAMS_FIX}"],
        id="parameters-zero",
    ),
    pytest.param(
        {"models.0.vllm.parameters_billions": "7.6B"},
        [f"{M0}.vllm.parameters_billions: '7.6B' is not a number greater than 0; {PARAMS_FIX}"],
        id="parameters-string",
    ),
    pytest.param(
        {"models.0.vllm.parameters_billions": True},
        [f"{M0}.vllm.parameters_billions: true is not a number greater than 0; {PARAMS_FIX}"],
        id="parameters-bool",
    ),
    pytest.param(
        {"models.0.vllm.gpu_memory_utilization": 1.5},
        [f"{M0}.vllm.gpu_memory_utilization: 1.5 is not a number greater than 0 and at most 1; {GPU_FIX}"],
        id="gpu-share-above-1",
    ),
    pytest.param(
        {"models.0.vllm.gpu_memory_utilization": 0},
        [f"{M0}.vllm.gpu_memory_utilization: 0 is not a number greater than 0 and at most 1; {GPU_FIX}"],
        id="gpu-share-zero",
    ),
    pytest.param(
        {"models.0.vllm.gpu_memory_utilization": "0.9"},
        [f"{M0}.vllm.gpu_memory_utilization: '0.9' is not a number greater than 0 and at most 1; {GPU_FIX}"],
        id="gpu-share-string",
    ),
    pytest.param(
        {"models.0.vllm.download_dir": "cache"},
        [f"{M0}.vllm.download_dir: 'cache' is not an absolute path; use an absolute directory path, or null"],
        id="download-dir-relative",
    ),
    pytest.param(
        {"models.0.vllm.extra_args": ["--enforce-eager", 3]},
        [f"{M0}.vllm.extra_args[1]: expected a string, got an integer; {EXTRA_ARGS_FIX}"],
        id="extra-arg-not-a-string",
    ),
    pytest.param(
        {"models.3.llamacpp.extra_args": "--flash-attn"},
        [f"{M3}.llamacpp.extra_args: expected a list of strings, got a string; {EXTRA_ARGS_FIX}"],
        id="extra-args-not-a-list",
    ),
    pytest.param(
        {"models.2.llamacpp.flavor": "cpp"},
        [f"{M2}.llamacpp.flavor: 'cpp' is not a known flavor; use python (llama-cpp-python) or native (llama-server)"],
        id="flavor",
    ),
    pytest.param(
        {"models.2.llamacpp.n_ctx": "4k"},
        [f"{M2}.llamacpp.n_ctx: '4k' is not a positive integer; set the context length in tokens, such as 4096"],
        id="n-ctx",
    ),
    pytest.param(
        {"models.2.llamacpp.n_gpu_layers": -2},
        [
            f"{M2}.llamacpp.n_gpu_layers: -2 is not an integer of -1 or more; "
            "use -1 to offload every layer, 0 for CPU only, or a layer count"
        ],
        id="n-gpu-layers",
    ),
    pytest.param(
        {"models.2.llamacpp.threads": 0},
        [f"{M2}.llamacpp.threads: 0 is not a positive integer; set a thread count greater than 0, or null"],
        id="threads",
    ),
    pytest.param(
        {"models.2.llamacpp.parallel": 1.0},
        [f"{M2}.llamacpp.parallel: 1.0 is not a positive integer; set the number of parallel request slots, such as 1"],
        id="parallel",
    ),
    pytest.param(
        {"models.1.ollama.keep_alive": 300},
        [
            f"{M1}.ollama.keep_alive: expected a string, got an integer; "
            "use a duration string such as '5m' or '-1', or null"
        ],
        id="keep-alive",
    ),
    # routes
    pytest.param(
        {"routes": {"meta-llama/*": "qwen-coder"}},
        ["llm_stack_catalog.routes: expected a list, got a mapping; write routes as a list"],
        id="routes-not-a-list",
    ),
    pytest.param(
        {"routes.1": "meta-llama/*"},
        ["routes[1]: expected a mapping, got a string; write each route as {pattern: 'vendor/*', model: <model name>}"],
        id="route-not-a-mapping",
    ),
    pytest.param(
        {"routes.0.models": "x"},
        ["routes[0]: unknown field 'models'; did you mean 'model'?"],
        id="route-typo",
    ),
    pytest.param(
        {"routes.0.pattern": "meta-llama/llama"},
        [
            "routes[0].pattern: 'meta-llama/llama' has no '*'; use a wildcard pattern such as "
            "'meta-llama/*', "
            "or add the exact name as an alias of the model"
        ],
        id="route-without-wildcard",
    ),
    pytest.param(
        {"routes.0.pattern": DELETE},
        ["routes[0].pattern: required; use a wildcard pattern such as 'meta-llama/*'"],
        id="route-pattern-missing",
    ),
    pytest.param(
        {"routes.1": {"pattern": "meta-llama/*", "model": "qwen-coder-cpp"}},
        ["routes[1].pattern: 'meta-llama/*' is already routed by routes[0]; keep one route per pattern"],
        id="route-pattern-twice",
    ),
    pytest.param(
        {"routes.0.model": "nope"},
        [f"routes[0].model: 'nope' {UNKNOWN_REF}"],
        id="route-model-unknown",
    ),
    pytest.param(
        {"routes.0.model": DELETE},
        ["routes[0].model: required; name a model declared under models"],
        id="route-model-missing",
    ),
]


@pytest.mark.parametrize(("changes", "problems"), REJECTIONS)
def test_rejects(catalog, hosts, changes, problems):
    assert problems_of(mutated(catalog, changes), hosts) == problems


def test_reports_every_problem_together(catalog, hosts):
    changes = {
        "gateway.port": "4000",
        "models.0.port": 70000,
        "models.1.backend": "olama",
        "models.3.fallback": ["qwen-coder-cpp"],
        "models.3.port": 8000,
        "routes.0.model": "nope",
    }
    assert problems_of(mutated(catalog, changes), hosts) == [
        f"gateway.port: '4000' is not an integer; {PORT_FIX}",
        f"{M0}.port: 70000 is outside 1-65535; {PORT_FIX}",
        f"{M1}.backend: unknown backend 'olama'; use one of llamacpp, ollama, vllm",
        f"{M3}: unknown field 'fallback'; did you mean 'fallbacks'?",
        f"{M3}.port: 8000 on hosts gpu01, gpu02 is already used by {M2}; give each service its own port",
        f"routes[0].model: 'nope' {UNKNOWN_REF}",
    ]


def test_many_loops_are_capped():
    names = [f"m{index}" for index in range(6)]
    models = [
        {
            "name": name,
            "backend": "ollama",
            "model": "x:1",
            "fallbacks": [other for other in names if other != name],
        }
        for name in names
    ]
    problems = problems_of({"models": models}, ["h1"])
    assert len(problems) == 20
    assert problems[0] == f"models[0] (m0).fallbacks: fallback chain loops m0 -> m1 -> m0; {LOOP_FIX}"


def test_catalog_error_message():
    error = CatalogError(["a.b: wrong; fix it"])
    assert error.problems == ["a.b: wrong; fix it"]
    assert str(error) == "llm_stack_catalog is invalid (1 problem):\n  - a.b: wrong; fix it"


# ---------------------------------------------------------------------------------------------------------
# Values that reach a unit or env file


CONTROL_FIX = "remove the control character (the value is written into a unit or env file)"


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        pytest.param(
            {"models.0.model": "Qwen/Qwen2.5-Coder\nExecStartPre=/bin/sh"},
            f"{M0}.model: 'Qwen/Qwen2.5-Coder\\nExecStartPre=/bin/sh' holds a control character (U+000A)",
            id="model-line-break",
        ),
        pytest.param(
            {"models.1.model": "qwen2.5-coder:7b\x00"},
            f"{M1}.model: 'qwen2.5-coder:7b\\x00' holds a control character (U+0000)",
            id="ollama-model-nul",
        ),
        pytest.param(
            {"models.2.model_file": "/srv/models/q\r.gguf"},
            f"{M2}.model_file: '/srv/models/q\\r.gguf' holds a control character (U+000D)",
            id="model-file-carriage-return",
        ),
        pytest.param(
            {"models.0.vllm.download_dir": "/srv/hf\tcache"},
            f"{M0}.vllm.download_dir: '/srv/hf\\tcache' holds a control character (U+0009)",
            id="download-dir-tab",
        ),
        pytest.param(
            {"models.0.vllm.model_src": "/data/qwen\x1b[0m"},
            f"{M0}.vllm.model_src: '/data/qwen\\x1b[0m' holds a control character (U+001B)",
            id="model-src-escape",
        ),
        pytest.param(
            {
                "models.2.llamacpp.model_url": "https://example.invalid/q.gguf\x7f",
                "models.2.llamacpp.model_checksum": "sha256:" + "0" * 64,
            },
            f"{M2}.llamacpp.model_url: 'https://example.invalid/q.gguf\\x7f' holds a control character (U+007F)",
            id="model-url-delete",
        ),
        pytest.param(
            {"models.1.ollama.keep_alive": "5m\n"},
            f"{M1}.ollama.keep_alive: '5m\\n' holds a control character (U+000A)",
            id="keep-alive-line-break",
        ),
        pytest.param(
            {"models.0.vllm.extra_args": ["--enforce-eager", "--chat-template\n/etc/x"]},
            f"{M0}.vllm.extra_args[1]: '--chat-template\\n/etc/x' holds a control character (U+000A)",
            id="extra-arg-line-break",
        ),
        pytest.param(
            {"models.0.aliases": ["qwen-math", "qwen\x85"]},
            f"{M0}.aliases[1]: 'qwen\\x85' holds a control character (U+0085)",
            id="alias-c1-control",
        ),
        pytest.param(
            {"gateway.redis_host": "gpu01\n"},
            "gateway.redis_host: 'gpu01\\n' holds a control character (U+000A)",
            id="redis-host-line-break",
        ),
    ],
)
def test_rejects_control_characters(catalog, hosts, changes, problem):
    assert problems_of(mutated(catalog, changes), hosts) == [f"{problem}; {CONTROL_FIX}"]


def own_flag(source: str) -> str:
    return f"is a flag the role sets itself, from {source}; remove it and set {source} instead"


VLLM_BIND = "bind (the model's, or backends.vllm.bind)"
CPP_BIND = "bind (the model's, or backends.llamacpp.bind)"


@pytest.mark.parametrize(
    ("model", "extra_args", "problems"),
    [
        pytest.param(
            0,
            ["--enforce-eager", "--host", "0.0.0.0", "--port=9000", "--api-key", "k"],
            [
                f"[1]: '--host' {own_flag(VLLM_BIND)}",
                f"[3]: '--port=9000' passes --port, which {own_flag('port')}",
                f"[4]: '--api-key' {own_flag('llm_stack_vllm_api_key')}",
            ],
            id="vllm-host-port-key",
        ),
        pytest.param(
            0,
            ["--served-model-name=gpt-4", "--model", "/tmp/other", "--api_key=k", "--max_model_len", "4096"],
            [
                f"[0]: '--served-model-name=gpt-4' passes --served-model-name, which {own_flag('name and aliases')}",
                f"[1]: '--model' {own_flag('model')}",
                f"[3]: '--api_key=k' passes --api-key, which {own_flag('llm_stack_vllm_api_key')}",
                f"[4]: '--max_model_len' passes --max-model-len, which {own_flag('vllm.max_model_len')}",
            ],
            id="vllm-names-and-underscores",
        ),
        pytest.param(
            0,
            ["--hos", "0.0.0.0", "--api-k=k", "-qawq", "-tp", "2", "--dtype", "half", "--shutdown-timeout=0"],
            [
                f"[0]: '--hos' passes --host, which {own_flag(VLLM_BIND)}",
                f"[2]: '--api-k=k' passes --api-key, which {own_flag('llm_stack_vllm_api_key')}",
                f"[3]: '-qawq' passes -q, which {own_flag('vllm.quantization')}",
                f"[4]: '-tp' {own_flag('vllm.tensor_parallel_size')}",
                f"[6]: '--dtype' {own_flag('vllm_dtype')}",
                f"[8]: '--shutdown-timeout=0' passes --shutdown-timeout, which {own_flag('vllm_shutdown_timeout')}",
            ],
            id="vllm-abbreviations-short-flags-role-variables",
        ),
        pytest.param(
            0,
            ["--uds", "/run/v.sock", "--config=/etc/vllm.yaml"],
            [
                "[0]: '--uds' makes vLLM listen on a Unix socket instead of the address and port the plan gives it; "
                "remove it; set bind and port to choose where vLLM listens",
                "[2]: '--config=/etc/vllm.yaml' passes --config, which reads flags from a file, where they could "
                "override the flags the role sets; remove it and list the file's flags in extra_args",
            ],
            id="vllm-socket-and-config-file",
        ),
        pytest.param(
            3,
            ["--flash-attn", "--host", "0.0.0.0", "--port", "1", "--api-key-file=/k", "-m", "/x.gguf", "-a", "gpt"],
            [
                f"[1]: '--host' {own_flag(CPP_BIND)}",
                f"[3]: '--port' {own_flag('port')}",
                f"[5]: '--api-key-file=/k' passes --api-key-file, which {own_flag('llm_stack_llamacpp_api_key')}",
                f"[6]: '-m' {own_flag('model_file')}",
                f"[8]: '-a' {own_flag('name and aliases')}",
            ],
            id="native-host-port-key-model-alias",
        ),
        pytest.param(
            3,
            ["--api-key", "k", "-c", "8192", "-ngl=0", "--parallel", "4", "-t", "8"],
            [
                f"[0]: '--api-key' {own_flag('llm_stack_llamacpp_api_key')}",
                f"[2]: '-c' {own_flag('llamacpp.n_ctx')}",
                f"[4]: '-ngl=0' passes -ngl, which {own_flag('llamacpp.n_gpu_layers')}",
                f"[5]: '--parallel' {own_flag('llamacpp.parallel')}",
                f"[7]: '-t' {own_flag('llamacpp.threads')}",
            ],
            id="native-settings",
        ),
        pytest.param(
            2,
            ["--n_threads_batch", "4", "--host=0.0.0.0", "--port", "1", "--api_key", "k", "--model_alias=gpt"],
            [
                f"[2]: '--host=0.0.0.0' passes --host, which {own_flag(CPP_BIND)}",
                f"[3]: '--port' {own_flag('port')}",
                f"[5]: '--api_key' {own_flag('llm_stack_llamacpp_api_key')}",
                f"[7]: '--model_alias=gpt' passes --model_alias, which {own_flag('name and aliases')}",
            ],
            id="python-host-port-key-alias",
        ),
        pytest.param(
            2,
            ["--api_k", "k", "--n_ctx=2048", "--interrupt_requests", "true", "--config_file", "/etc/s.json"],
            [
                f"[0]: '--api_k' passes --api_key, which {own_flag('llm_stack_llamacpp_api_key')}",
                f"[2]: '--n_ctx=2048' passes --n_ctx, which {own_flag('llamacpp.n_ctx')}",
                "[3]: '--interrupt_requests' is a flag the role sets itself, to false: a new request waits instead of "
                "cutting off a stream; remove it",
                "[5]: '--config_file' makes llama_cpp.server read its settings from a file and ignore the flags the "
                "role sets; remove it and list the file's settings in extra_args",
            ],
            id="python-abbreviation-settings-config-file",
        ),
    ],
)
def test_extra_args_cannot_pass_the_flags_the_role_sets(catalog, hosts, model, extra_args, problems):
    where = {0: f"{M0}.vllm", 2: f"{M2}.llamacpp", 3: f"{M3}.llamacpp"}[model]
    catalog["models"][model][where.rsplit(".", 1)[1]]["extra_args"] = extra_args
    assert problems_of(catalog, hosts) == [f"{where}.extra_args{problem}" for problem in problems]


def test_extra_args_flags_are_checked_beside_a_refused_argument(catalog, hosts):
    catalog["models"][0]["vllm"]["extra_args"] = ["--port", 8002, "--kv-cache-dtype\n"]
    assert problems_of(catalog, hosts) == [
        f"{M0}.vllm.extra_args[1]: expected a string, got an integer; {EXTRA_ARGS_FIX}",
        f"{M0}.vllm.extra_args[2]: '--kv-cache-dtype\\n' holds a control character (U+000A); {CONTROL_FIX}",
        f"{M0}.vllm.extra_args[0]: '--port' {own_flag('port')}",
    ]


@pytest.mark.parametrize(
    ("model", "extra_args"),
    [
        (0, ["--enforce-eager", "--kv-cache-dtype", "fp8", "--max-num-batched-tokens=4096", "--host-ip-note"]),
        (2, ["--n_threads_batch", "4", "--verbose", "true"]),
        (3, ["--flash-attn", "--threads-batch", "4", "-tb", "4", "--metrics", "--cont-batching"]),
    ],
)
def test_extra_args_of_other_flags_pass(catalog, hosts, model, extra_args):
    block = "vllm" if model == 0 else "llamacpp"
    catalog["models"][model][block]["extra_args"] = extra_args
    build_plan(catalog, hosts)


@pytest.mark.parametrize(
    ("template", "part", "flags", "booleans"),
    [
        ("roles/vllm/templates/unit.service.j2", 0, "VLLM_FLAGS", {"--enforce-eager"}),
        ("roles/llamacpp/templates/unit.service.j2", 0, "LLAMACPP_NATIVE_FLAGS", {"--metrics"}),
        ("roles/llamacpp/templates/unit.service.j2", 1, "LLAMACPP_PYTHON_FLAGS", set()),
    ],
)
def test_every_flag_a_unit_template_sets_is_refused_in_extra_args(template, part, flags, booleans):
    """On/off flags the role adds (--enforce-eager, --metrics) only turn on what a role variable leaves off:
    passing one again overrides nothing. Every other flag of the template is refused, and so is the API key
    the role passes in the env file."""
    text = (TOP / template).read_text(encoding="utf-8")
    section = re.split(r"\{% else %\}", text)[part] if "{% else %}" in text else text
    set_by_role = set(re.findall(r"'(--?[A-Za-z][A-Za-z0-9_-]*)'", section)) - {"-m"}
    own = getattr(backends, flags)
    refused = set(own.sources) | set(own.refused)
    assert set_by_role - booleans <= refused
    assert {"--host", "--port"} <= refused
    assert {"--api-key", "--api_key"} & refused


# ---------------------------------------------------------------------------------------------------------
# Supply chain: vllm.revision pins what vLLM fetches from the Hub, ollama.digest what Ollama pulls

COMMIT = "0123456789abcdef0123456789abcdef01234567"
REVISION_FIX = "set the commit hash (40 hex digits) or a tag of the model's Hugging Face repository, or null"
DIGEST = "a2af6cc3eb7fa8be8504abaf9b04e88f17a119ec3f04a3addf55f92841195f5a"
DIGEST_FIX = "use the model's digest as Ollama's /api/tags lists it: 64 hex digits, with or without 'sha256:', or null"


@pytest.mark.parametrize("revision", [COMMIT, "v2.1", "refs/pr/12"])
def test_a_hub_model_takes_a_revision(catalog, hosts, revision):
    plan = build_plan(mutated(catalog, {"models.0.vllm.revision": revision}), hosts)
    assert plan["models"][0]["settings"]["revision"] == revision
    assert record(plan, "gpu01", "vllm-qwen-coder")["settings"]["revision"] == revision


@pytest.mark.parametrize(
    ("revision", "what", "fix"),
    [
        pytest.param(1234567, "expected a string, got an integer", REVISION_FIX, id="integer"),
        pytest.param("", "the value is empty", REVISION_FIX, id="empty"),
        pytest.param("v2.1 main", "'v2.1 main' holds whitespace", REVISION_FIX, id="space"),
        pytest.param("v2.1\u00a0", "'v2.1\\xa0' holds whitespace", REVISION_FIX, id="no-break-space"),
        pytest.param(
            "v2.1\n--trust-remote-code",
            "'v2.1\\n--trust-remote-code' holds a control character (U+000A)",
            CONTROL_FIX,
            id="line-break",
        ),
        pytest.param(
            "--trust-remote-code",
            "'--trust-remote-code' starts with '-', so vLLM would read it as a flag",
            REVISION_FIX,
        ),
    ],
)
def test_rejects_a_bad_revision(catalog, hosts, revision, what, fix):
    problems = problems_of(mutated(catalog, {"models.0.vllm.revision": revision}), hosts)
    assert problems == [f"{M0}.vllm.revision: {what}; {fix}"]


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"models.0.model": "/srv/models/qwen"}, id="local-directory"),
        pytest.param({"models.0.model": "/srv/models/qwen", "models.0.vllm.model_src": "/data/qwen"}, id="copied"),
    ],
)
def test_rejects_a_revision_for_a_local_model(catalog, hosts, changes):
    problems = problems_of(mutated(catalog, {**changes, "models.0.vllm.revision": COMMIT}), hosts)
    assert problems == [
        f"{M0}.vllm.revision: '/srv/models/qwen' is a local directory, and a revision only pins a model vLLM "
        "fetches from the Hugging Face Hub; remove vllm.revision, or set model to the Hugging Face id, such as "
        "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ"
    ]


@pytest.mark.parametrize(
    ("extra_args", "problems"),
    [
        (["--revision", "main"], [f"[0]: '--revision' {own_flag('vllm.revision')}"]),
        (["--revision=main"], [f"[0]: '--revision=main' passes --revision, which {own_flag('vllm.revision')}"]),
        (["--rev", "main"], [f"[0]: '--rev' passes --revision, which {own_flag('vllm.revision')}"]),
    ],
)
def test_extra_args_cannot_pass_a_revision(catalog, hosts, extra_args, problems):
    """The unit passes vllm.revision; argparse would take a second --revision, the last one, over it."""
    catalog["models"][0]["vllm"]["extra_args"] = extra_args
    assert problems_of(catalog, hosts) == [f"{M0}.vllm.extra_args{problem}" for problem in problems]


def test_extra_args_may_pin_another_tokenizer(catalog, hosts):
    catalog["models"][0]["vllm"]["extra_args"] = ["--tokenizer", "Qwen/Qwen2.5-7B", "--tokenizer-revision", COMMIT]
    build_plan(catalog, hosts)


@pytest.mark.parametrize("given", [DIGEST, f"sha256:{DIGEST}", DIGEST.upper(), f"sha256:{DIGEST.upper()}"])
def test_an_ollama_model_takes_a_digest_as_api_tags_lists_it(catalog, hosts, given):
    plan = build_plan(mutated(catalog, {"models.1.ollama.digest": given}), hosts)
    assert plan["models"][1]["settings"]["digest"] == DIGEST
    pins = [{"model": "qwen2.5-coder:7b", "digest": DIGEST, "name": "qwen-coder-ollama"}]
    assert [record(plan, host, "ollama")["digests"] for host in hosts] == [pins, pins]


def test_an_untagged_ollama_model_is_pinned_by_its_latest_tag(catalog, hosts):
    changes = {"models.1.model": "qwen2.5-coder", "models.1.ollama.digest": DIGEST, "models.1.hosts": ["gpu02"]}
    plan = build_plan(mutated(catalog, changes), hosts)
    assert record(plan, "gpu02", "ollama")["digests"] == [
        {"model": "qwen2.5-coder:latest", "digest": DIGEST, "name": "qwen-coder-ollama"}
    ]


@pytest.mark.parametrize(
    ("digest", "what"),
    [
        pytest.param(DIGEST[:12], f"'{DIGEST[:12]}' is not a sha256 digest", id="short-id-of-ollama-list"),
        pytest.param(f"sha512:{DIGEST}", f"'sha512:{DIGEST}' is not a sha256 digest", id="other-algorithm"),
        pytest.param(DIGEST[:-1] + "g", f"'{DIGEST[:-1]}g' is not a sha256 digest", id="not-hex"),
        pytest.param(12345, "12345 is not a sha256 digest", id="integer"),
    ],
)
def test_rejects_a_bad_ollama_digest(catalog, hosts, digest, what):
    problems = problems_of(mutated(catalog, {"models.1.ollama.digest": digest}), hosts)
    assert problems == [f"{M1}.ollama.digest: {what}; {DIGEST_FIX}"]


def test_two_names_for_one_ollama_model_pin_one_digest(catalog, hosts):
    other = "b" * 64
    twin = {"name": "coder-twin", "backend": "ollama", "model": "qwen2.5-coder:7b", "ollama": {"digest": other}}
    changes = {"models.1.ollama.digest": f"sha256:{DIGEST}", "models.4": twin}
    assert problems_of(mutated(catalog, changes), hosts) == [
        "models[4] (coder-twin).ollama.digest: differs from the ollama.digest of models[1] (qwen-coder-ollama), "
        "which serves the same model 'qwen2.5-coder:7b'; "
        "give both models the one digest the server lists for qwen2.5-coder:7b"
    ]
    twin["ollama"]["digest"] = DIGEST.upper()
    plan = build_plan(mutated(catalog, changes), hosts)
    assert [pin["name"] for pin in record(plan, "gpu01", "ollama")["digests"]] == ["qwen-coder-ollama", "coder-twin"]
