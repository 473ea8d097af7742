# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The vram_fit filter: the models of a plan placed on recorded GPUs (read by gpu_facts' own code), the seed's
13B-on-16GB refusal word for word, per-GPU placement, and what pre-flight cannot check."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.labai.llm_stack.plugins.filter.vram_fit import vram_fit
from ansible_collections.labai.llm_stack.plugins.module_utils import _nvidia_smi as smi
from ansible_collections.labai.llm_stack.plugins.plugin_utils.plan import build_plan

TOP = Path(__file__).resolve().parents[2]
FIXTURES = TOP / "tests" / "fixtures"
GB = 1024**3
GGUF_7B_Q4 = 4_683_073_184  # qwen2.5-coder-7b-instruct-q4_k_m.gguf
SEED_REFUSAL = (
    "qwen-coder: Llama-2-13b needs about 26 GB at max_model_len 4096; gpu01 GPU 0 has 16 GB (Quadro RTX 5000), "
    "14.4 GB usable at gpu_memory_utilization 0.9. Use a quantized model (awq), a shorter max_model_len, or "
    "another GPU."
)
LLAMA_13B = {"parameters_billions": 13, "max_model_len": 4096, "gpu_memory_utilization": 0.9}


def gpu_facts(case: str) -> dict:
    """What the gpu_facts module returns for a recorded case: its collect() replaying the recorded answers."""
    directory = FIXTURES / "nvidia_smi" / case
    commands = {tuple(smi.command(name)): name for name in smi.COMMANDS}

    def run(argv: list[str]) -> tuple[int, str, str]:
        name = commands[tuple(argv)]
        rc_file = directory / f"{name}.rc"
        rc = int(rc_file.read_text()) if rc_file.exists() else 0
        return rc, (directory / smi.FIXTURE_FILES[name]).read_text(), ""

    return smi.collect(run)


def config(name: str) -> dict:
    return json.loads((FIXTURES / "model_config" / name / "config.json").read_text())


def vllm(name: str, model: str, port: int, **settings) -> dict:
    return {"name": name, "backend": "vllm", "model": model, "port": port, "vllm": settings}


def llamacpp(name: str, port: int, **settings) -> dict:
    model_file = f"/srv/models/{name}.gguf"
    return {"name": name, "backend": "llamacpp", "model_file": model_file, "port": port, "llamacpp": settings}


def fit(models: list[dict], case: str, sources: dict | None = None, host: str = "gpu01", **options) -> dict:
    plan = build_plan({"models": models}, [host])
    return vram_fit(plan, host, gpu_facts(case), sources or {}, **options)


# ---------------------------------------------------------------------------------------------------------
# The seed's refusal, and the example catalog


def test_seed_13b_on_16_gb_is_refused_word_for_word():
    result = fit([vllm("qwen-coder", "meta-llama/Llama-2-13b-hf", 8001, **LLAMA_13B)], "rtx5000-1")
    assert result == {
        "problems": [SEED_REFUSAL],
        "warnings": [
            "qwen-coder: the KV cache of Llama-2-13b is not counted (num_hidden_layers, num_key_value_heads and "
            "head_dim unknown): the estimate is the weights and the overhead only."
        ],
        "placements": {0: ["qwen-coder"]},
    }


def test_13b_with_its_local_config_json_counts_the_kv_cache_too():
    """A local model directory: the parameter count and the KV cache come from its config.json, and the
    context from max_position_embeddings when max_model_len is not set."""
    model = vllm("qwen-coder", "/srv/models/Llama-2-13b-hf", 8001, gpu_memory_utilization=0.9)
    result = fit([model], "rtx5000-1", {"qwen-coder": {"config": config("Llama-2-13b-hf"), "size_bytes": None}})
    assert result["problems"] == [
        "qwen-coder: Llama-2-13b needs about 29 GB at max_model_len 4096; gpu01 GPU 0 has 16 GB (Quadro RTX 5000), "
        "14.4 GB usable at gpu_memory_utilization 0.9. Use a quantized model (awq), a shorter max_model_len, or "
        "another GPU."
    ]
    assert result["warnings"] == []


def test_13b_sharded_over_two_16_gb_gpus_fits():
    """Half the weights on each GPU, and a whole overhead: 12.1 + 2 GB of 14.4 usable."""
    facts = gpu_facts("rtx5000-1")
    facts["gpus"].append({**facts["gpus"][0], "index": 1})
    sharded = vllm("qwen-coder", "meta-llama/Llama-2-13b-hf", 8001, **LLAMA_13B, tensor_parallel_size=2)
    plan = build_plan({"models": [sharded]}, ["gpu01"])
    result = vram_fit(plan, "gpu01", facts, {})
    assert (result["problems"], result["placements"]) == ([], {0: ["qwen-coder"], 1: ["qwen-coder"]})
    assert len(result["warnings"]) == 1, "the same warning once, not once per GPU"


def example_catalog() -> dict:
    path = TOP / "inventories" / "example" / "group_vars" / "all" / "catalog.yml"
    return yaml.safe_load(path.read_text())["llm_stack_catalog"]


EXAMPLE_SOURCES = {
    "qwen-coder": {"config": config("Qwen2.5-Coder-7B-Instruct-AWQ"), "size_bytes": None},
    "qwen-coder-cpp": {"config": None, "size_bytes": GGUF_7B_Q4},
    "qwen-coder-cpp-native": {"config": None, "size_bytes": GGUF_7B_Q4},
}


def cpp_kv_warning(name: str) -> str:
    return (
        f"{name}: the KV cache of qwen2.5-coder-7b-instruct-q4_k_m.gguf is not counted (num_hidden_layers, "
        "num_key_value_heads and head_dim unknown): the estimate is the weights and the overhead only."
    )


def test_the_example_catalog_fits_on_an_h200():
    """The 7B AWQ at 0.85 of the GPU, and both llama.cpp servers of the 7B Q4 GGUF beside it on GPU 0; Ollama
    is not placed."""
    plan = build_plan(example_catalog(), ["gpu01"])
    result = vram_fit(plan, "gpu01", gpu_facts("h200-1"), EXAMPLE_SOURCES)
    assert result == {
        "problems": [],
        "warnings": [cpp_kv_warning("qwen-coder-cpp"), cpp_kv_warning("qwen-coder-cpp-native")],
        "placements": {0: ["qwen-coder", "qwen-coder-cpp", "qwen-coder-cpp-native"]},
    }


def test_the_example_catalog_on_the_recorded_busy_h200():
    """Recorded while another process held 100 GiB: refused, unless that process is the deployment's own."""
    plan = build_plan(example_catalog(), ["gpu01"])
    busy = gpu_facts("h200-1-busy")
    assert vram_fit(plan, "gpu01", busy, EXAMPLE_SOURCES)["problems"] == [
        "gpu01 GPU 0 (NVIDIA H200) has 39.2 GB free of 140.4 GB, but the models placed on it claim about 132 GB "
        "together (qwen-coder 119.3 GB at gpu_memory_utilization 0.85, qwen-coder-cpp 6.4 GB, "
        "qwen-coder-cpp-native 6.4 GB); the rest is held by pid 509 python3 100.6 GB. Stop those processes, lower "
        "gpu_memory_utilization, or move a model to another GPU with its gpus setting."
    ]
    assert vram_fit(plan, "gpu01", busy, EXAMPLE_SOURCES, own_processes=["python3"])["problems"] == []
    assert vram_fit(plan, "gpu01", busy, EXAMPLE_SOURCES, own_processes=["/home/llm/"])["problems"] != []


def test_the_example_catalog_without_what_the_host_says_about_the_weights():
    plan = build_plan(example_catalog(), ["gpu01"])
    result = vram_fit(plan, "gpu01", gpu_facts("rtx5000-1"), {})
    assert result["problems"] == []
    assert result["warnings"] == [
        "qwen-coder: the memory Qwen2.5-Coder-7B-Instruct-AWQ needs cannot be estimated "
        "(Qwen/Qwen2.5-Coder-7B-Instruct-AWQ is not a model directory on gpu01, and vllm.parameters_billions is not "
        "set), so on GPU 0 only its gpu_memory_utilization share is checked. Set vllm.parameters_billions to its "
        "parameter count in billions, such as 7.6.",
        "qwen-coder-cpp: /srv/models/qwen2.5-coder-7b-instruct-q4_k_m.gguf is not on gpu01 yet, so what its layers "
        "take of GPU 0 is not counted; run pre-flight again once the file is there.",
        "qwen-coder-cpp-native: /srv/models/qwen2.5-coder-7b-instruct-q4_k_m.gguf is not on gpu01 yet, so what its "
        "layers take of GPU 0 is not counted; run pre-flight again once the file is there.",
    ]


def test_the_example_7b_awq_with_its_config_json_on_16_gb():
    """The quantization read from config.json when the catalog does not say it: the 7B AWQ fits a 16 GB card,
    and sixteen sequences of 8192 tokens do not, which vLLM survives."""
    settings = {"max_model_len": 8192, "max_num_seqs": 16, "gpu_memory_utilization": 0.85}
    model = vllm("qwen-coder", "/srv/models/qwen", 8001, **settings)
    sources = {"qwen-coder": {"config": config("Qwen2.5-Coder-7B-Instruct-AWQ"), "size_bytes": None}}
    result = fit([model], "rtx5000-1", sources)
    assert result["problems"] == []
    assert result["warnings"] == [
        "qwen-coder: 16 sequences of 8192 tokens need about 7 GB of KV cache, about 14 GB in all; gpu01 GPU 0 has "
        "13.6 GB usable at gpu_memory_utilization 0.85, so vLLM will run fewer sequences at once."
    ]
    fp8 = vllm("qwen-coder", "/srv/models/qwen", 8001, **settings, extra_args=["--kv-cache-dtype", "fp8"])
    assert fit([fp8], "rtx5000-1", sources)["warnings"] == [], "an fp8 KV cache takes half"


# ---------------------------------------------------------------------------------------------------------
# Placement per GPU


TWO = {"gpu_memory_utilization": 0.6, "parameters_billions": 7.6, "quantization": "awq", "max_model_len": 8192}
A100_OVER = (
    "gpu01 GPU 0 (NVIDIA A100-SXM4-80GB) has 80 GB, but the models placed on it claim about 96 GB together "
    "(coder-a 48 GB at gpu_memory_utilization 0.6, coder-b 48 GB at gpu_memory_utilization 0.6). Lower "
    "gpu_memory_utilization, or move a model to another GPU with its gpus setting."
)


@pytest.mark.parametrize(
    ("gpus", "problems", "placements"),
    [
        (([0], [1]), [], {0: ["coder-a"], 1: ["coder-b"]}),
        (([1], [0]), [], {0: ["coder-b"], 1: ["coder-a"]}),
        (([0], [0]), [A100_OVER], {0: ["coder-a", "coder-b"]}),
        ((None, None), [A100_OVER], {0: ["coder-a", "coder-b"]}),
    ],
    ids=["one-each", "swapped", "both-on-0", "both-by-default"],
)
def test_two_vllm_models_on_two_gpus(gpus, problems, placements):
    """GPU 1 is held by the deployment's own vLLM (recorded), which the deploy restarts."""
    models = [
        vllm(f"coder-{name}", "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ", port, **TWO, gpus=placed)
        for name, port, placed in zip("ab", (8001, 8002), gpus, strict=True)
    ]
    result = fit(models, "a100-2", own_processes=["/srv/llm/vllm/"])
    assert (result["problems"], result["placements"]) == (problems, placements)


def test_memory_another_process_holds_is_not_free():
    models = [vllm("coder-b", "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ", 8002, **TWO, gpus=[1])]
    assert fit(models, "a100-2")["problems"] == [
        "gpu01 GPU 1 (NVIDIA A100-SXM4-80GB) has 8.8 GB free of 80 GB, but the models placed on it claim about 48 GB "
        "together (coder-b 48 GB at gpu_memory_utilization 0.6); the rest is held by pid 48213 "
        "/srv/llm/vllm/bin/python3 70.6 GB. Stop those processes, lower gpu_memory_utilization, or move a model to "
        "another GPU with its gpus setting."
    ]


def test_vllm_beside_llamacpp_layers_on_one_gpu():
    models = [
        vllm("coder", "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ", 8001, **{**TWO, "gpu_memory_utilization": 0.85}),
        llamacpp("coder-cpp", 8002, n_gpu_layers=-1),
        llamacpp("coder-cpu", 8003, n_gpu_layers=0),
    ]
    sources = {"coder-cpp": {"config": None, "size_bytes": GGUF_7B_Q4}, "coder-cpu": {"size_bytes": 10**12}}
    result = fit(models, "rtx5000-1", sources)
    assert result["placements"] == {0: ["coder", "coder-cpp"]}, "a model on the CPU is not placed"
    assert result["problems"] == [
        "gpu01 GPU 0 (Quadro RTX 5000) has 16 GB, but the models placed on it claim about 20 GB together (coder "
        "13.6 GB at gpu_memory_utilization 0.85, coder-cpp 6.4 GB). Lower gpu_memory_utilization, or move a model "
        "to another GPU with its gpus setting."
    ]
    models[1]["llamacpp"]["gpus"] = [1]
    moved = fit(models, "a100-2", sources)
    assert (moved["problems"], moved["placements"]) == ([], {0: ["coder"], 1: ["coder-cpp"]})


def test_a_llamacpp_model_too_big_for_its_gpu():
    result = fit([llamacpp("llama-cpp", 8000, n_gpu_layers=99)], "rtx5000-1", {"llama-cpp": {"size_bytes": 26 * GB}})
    assert result["problems"] == [
        "llama-cpp: llama-cpp.gguf needs about 28 GB; gpu01 GPU 0 has 16 GB (Quadro RTX 5000). Offload fewer layers "
        "(n_gpu_layers), use a smaller quantization, or another GPU."
    ]


@pytest.mark.parametrize(
    ("case", "model", "message"),
    [
        (
            "h100-1",
            vllm("big-a", "/srv/models/big-a", 8001, tensor_parallel_size=2),
            "big-a: without vllm.gpus it runs on GPUs 0, 1 (tensor_parallel_size 2), but gpu01 has no GPU 1; its "
            "GPUs: 0 (NVIDIA H100 80GB HBM3). Lower vllm.tensor_parallel_size to at most 1, or move the model to a "
            "host with 2 GPUs.",
        ),
        (
            "a100-2",
            vllm("big-a", "/srv/models/big-a", 8001, tensor_parallel_size=2, gpus=[1, 2]),
            "big-a: vllm.gpus places it on GPUs 1, 2, but gpu01 has no GPU 2; its GPUs: 0 (NVIDIA A100-SXM4-80GB), "
            "1 (NVIDIA A100-SXM4-80GB). Set vllm.gpus to GPUs it has, or move the model to another host.",
        ),
        (
            "h100-1",
            vllm("big-a", "/srv/models/big-a", 8001, tensor_parallel_size=2, gpus=[0, 1]),
            "big-a: vllm.gpus places it on GPUs 0, 1, but gpu01 has no GPU 1; its GPUs: 0 (NVIDIA H100 80GB HBM3). "
            "Lower vllm.tensor_parallel_size to at most 1 with as many vllm.gpus, or move the model to a host with 2 "
            "GPUs.",
        ),
        (
            "rtx5000-1",
            llamacpp("coder-cpp", 8000, n_gpu_layers=-1, gpus=[3]),
            "coder-cpp: llamacpp.gpus places it on GPU 3, but gpu01 has no GPU 3; its GPUs: 0 (Quadro RTX 5000). Set "
            "llamacpp.gpus to GPUs it has, or move the model to another host.",
        ),
    ],
    ids=["tensor-parallel-default", "vllm-gpus", "vllm-gpus-more-than-the-host", "llamacpp-gpus"],
)
def test_a_gpu_the_host_does_not_have(case, model, message):
    result = fit([model], case, own_processes=["/srv/llm/vllm/"])
    assert result["problems"] == [message]
    present = {gpu["index"] for gpu in gpu_facts(case)["gpus"]}
    assert set(result["placements"]) <= present


# ---------------------------------------------------------------------------------------------------------
# No GPU, and nothing to place


@pytest.mark.parametrize(
    ("case", "said"),
    [
        (
            "no-gpu",
            "nvidia-smi found no NVIDIA GPU (No devices were found): check that the GPU is present (lspci -d 10de:) "
            "and passed through to this machine, and that the driver supports it",
        ),
        ("mismatch", "nvidia-smi: Failed to initialize NVML: Driver/library version mismatch"),
    ],
)
def test_a_host_without_a_working_gpu_names_the_models(case, said):
    models = [vllm("coder", "org/coder", 8001), llamacpp("coder-cpp", 8002, n_gpu_layers=20)]
    (problem,) = fit(models, case)["problems"]
    assert problem.startswith(f"coder, coder-cpp need an NVIDIA GPU on gpu01, but {said}")
    assert problem.endswith(". Or serve them without one: vllm_flavor: cpu and n_gpu_layers: 0.")


def test_a_failed_module_counts_as_no_gpu():
    plan = build_plan({"models": [vllm("coder", "org/coder", 8001)]}, ["gpu01"])
    failed = {"failed": True, "msg": "/usr/bin/nvidia-smi answered what this module cannot read: x"}
    assert vram_fit(plan, "gpu01", failed)["problems"] == [
        "coder needs an NVIDIA GPU on gpu01, but /usr/bin/nvidia-smi answered what this module cannot read: x. Or "
        "serve it without one: vllm_flavor: cpu."
    ]


def test_nothing_to_place():
    """vLLM served on the CPU, llama.cpp without offloaded layers, and a host running no model."""
    models = [{**vllm("coder", "org/coder", 8001), "hosts": ["gpu01"]}, {**llamacpp("cpp", 8002), "hosts": ["gpu01"]}]
    plan = build_plan({"gateway": {"hosts": ["gpu01"]}, "models": models}, ["gpu01", "gpu02"])
    empty = {"problems": [], "warnings": [], "placements": {}}
    assert vram_fit(plan, "gpu01", gpu_facts("no-driver"), vllm_flavor="cpu") == empty
    assert vram_fit(plan, "gpu02", gpu_facts("no-driver")) == empty
    assert vram_fit(plan, "gpu03", gpu_facts("no-driver")) == empty


def test_not_a_plan():
    with pytest.raises(AnsibleFilterError, match=re.escape("vram_fit: the input is not a plan")):
        vram_fit({"models": []}, "gpu01", gpu_facts("h100-1"))


# ---------------------------------------------------------------------------------------------------------
# The molecule preflight scenario asserts these messages word for word


PREFLIGHT_HOST = "llm-stack-preflight-debian12"
SCENARIO = TOP / "molecule" / "preflight"


def test_the_preflight_scenario_expects_what_the_filter_says():
    """The scenario's host answers as one H100 (the double's default, recorded as h100-1): big-a's second GPU
    is missing, and the two models' shares over-commit GPU 0."""
    group_vars = yaml.safe_load((SCENARIO / "molecule.yml").read_text())["provisioner"]["inventory"]["group_vars"]
    plan = build_plan(group_vars["all"]["llm_stack_catalog"], [PREFLIGHT_HOST])
    result = vram_fit(plan, PREFLIGHT_HOST, gpu_facts("h100-1"), {})
    assert len(result["problems"]) == 2
    expected = re.sub(r"\s+", " ", (SCENARIO / "verify.yml").read_text())
    for problem in result["problems"]:
        assert f"'{problem}' in __out" in expected


def test_the_preflight_scenario_refusals_are_the_filters():
    """Its second play replays rtx5000-1 and no-gpu on the host with a 13B model and expects these lines."""
    (play,) = [play for play in yaml.safe_load((SCENARIO / "verify.yml").read_text()) if "refusals" in play["vars"]]
    plan = build_plan(play["vars"]["gpu_catalog"], [PREFLIGHT_HOST])
    for refusal in play["vars"]["refusals"]:
        result = vram_fit(plan, PREFLIGHT_HOST, gpu_facts(refusal["case"]), {})
        assert result["problems"] == [refusal["expect"]], refusal["case"]
    assert play["vars"]["refusals"][0]["expect"] == SEED_REFUSAL.replace("gpu01", PREFLIGHT_HOST)
