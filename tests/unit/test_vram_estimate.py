# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The VRAM estimate and the fit check on the recorded GPUs: the seed's 13B-on-16GB refusal word for word."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from ansible_collections.labai.llm_stack.plugins.module_utils import _nvidia_smi as smi
from ansible_collections.labai.llm_stack.plugins.module_utils import _vram as vram

TOP = Path(__file__).resolve().parents[2]
FIXTURES = TOP / "tests" / "fixtures" / "nvidia_smi"
GIB = 1024**3

# config.json of Qwen/Qwen2.5-Coder-7B-Instruct-AWQ and of meta-llama/Llama-2-13b-hf (the numbers the estimate reads).
QWEN_7B = {
    "architectures": ["Qwen2ForCausalLM"],
    "hidden_size": 3584,
    "intermediate_size": 18944,
    "num_attention_heads": 28,
    "num_hidden_layers": 28,
    "num_key_value_heads": 4,
    "tie_word_embeddings": False,
    "torch_dtype": "float16",
    "vocab_size": 152064,
    "quantization_config": {"bits": 4, "group_size": 128, "quant_method": "awq", "zero_point": True},
}
LLAMA_2_13B = {
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 5120,
    "intermediate_size": 13824,
    "num_attention_heads": 40,
    "num_hidden_layers": 40,
    "num_key_value_heads": 40,
    "tie_word_embeddings": False,
    "torch_dtype": "float16",
    "vocab_size": 32000,
}
SEED_REFUSAL = (
    "qwen-coder: Llama-2-13b needs about 26 GB at max_model_len 4096; gpu01 GPU 0 has 16 GB (Quadro RTX 5000), "
    "14.4 GB usable at gpu_memory_utilization 0.9. Use a quantized model (awq), a shorter max_model_len, or "
    "another GPU."
)


def recorded_gpus(case: str) -> list[dict]:
    """The GPUs of a recorded case, with their processes, as gpu_facts reads them."""
    directory = FIXTURES / case
    gpus = smi.parse_gpus((directory / "query-gpu.csv").read_text())
    return smi.attach_processes(gpus, smi.parse_compute_apps((directory / "query-compute-apps.csv").read_text()))


def vllm(name: str, model: str, share: float, quantization: str | None = None, **estimate) -> dict:
    est = vram.estimate(quantization=quantization, **estimate)
    return {
        "name": name,
        "model": model,
        "estimate": est,
        "gpu_memory_utilization": share,
        "quantization": quantization,
    }


def qwen_coder(share: float = 0.85, **overrides) -> dict:
    """The example catalog's qwen-coder: AWQ, max_model_len 8192, max_num_seqs 16."""
    options = {"max_model_len": 8192, "max_num_seqs": 16, "arch": vram.architecture(QWEN_7B), **overrides}
    return vllm("qwen-coder", "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ", share, "awq", **options)


def messages(result: dict, key: str = "problems") -> list[str]:
    return [entry["msg"] for entry in result[key]]


# ---------------------------------------------------------------------------------------------------------
# The parts of the estimate


@pytest.mark.parametrize(
    ("dtype", "quantization", "expected"),
    [
        ("float16", None, 26_000_000_000),
        ("bfloat16", None, 26_000_000_000),
        ("auto", None, 26_000_000_000),
        ("float32", None, 52_000_000_000),
        ("auto", "fp8", 13_000_000_000),
        ("auto", "int8", 13_000_000_000),
        ("auto", "awq", 6_906_250_000),
        ("auto", "GPTQ", 6_906_250_000),
    ],
)
def test_weights_from_the_parameter_count(dtype, quantization, expected):
    assert vram.weights_from_params(13e9, dtype, quantization) == expected


def test_quantized_weights_keep_the_embeddings_in_16_bits():
    assert vram.weights_from_params(7e9, "auto", "awq", embedding_params=1e9) == int(6e9 * 4.25 / 8 + 2e9)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_model_len": 4096}, "the estimate needs the parameter count (params) or the size of the weights"),
        ({"max_model_len": 4096, "params": 7e9, "quantization": "gguf"}, "quantization 'gguf': bytes per weight"),
        ({"max_model_len": 4096, "params": 7e9, "dtype": "int3"}, "dtype 'int3' is not one of auto, half"),
    ],
)
def test_what_the_estimate_refuses(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        vram.estimate(**kwargs)


@pytest.mark.parametrize(
    ("config", "numbers", "params", "embedding"),
    [
        (QWEN_7B, (28, 4, 128), 7_615_487_488, 1_089_994_752),
        (LLAMA_2_13B, (40, 40, 128), 13_015_864_320, 327_680_000),
        ({"text_config": LLAMA_2_13B, "vision_config": {"hidden_size": 1024}}, (40, 40, 128), 13_015_864_320, None),
        ({"num_hidden_layers": 32, "num_attention_heads": 32, "hidden_size": 4096}, (32, 32, 128), None, None),
        ({**QWEN_7B, "num_experts": 64}, (28, 4, 128), None, None),
        ({"n_layer": 12, "n_head": 12, "n_embd": 768}, (12, 12, 64), None, None),
    ],
    ids=["qwen2.5-7b", "llama-2-13b", "multimodal", "no-vocab", "moe", "gpt2-names"],
)
def test_architecture_from_config_json(config, numbers, params, embedding):
    arch = vram.architecture(config)
    assert (arch["num_hidden_layers"], arch["num_key_value_heads"], arch["head_dim"]) == numbers
    assert arch["params"] == params
    if embedding is not None:
        assert arch["embedding_params"] == embedding


@pytest.mark.parametrize(
    ("config", "kv_cache_dtype", "per_token"),
    [(QWEN_7B, "auto", 57_344), (QWEN_7B, "fp8", 28_672), (LLAMA_2_13B, "auto", 819_200)],
)
def test_kv_cache_per_token(config, kv_cache_dtype, per_token):
    est = vram.estimate(max_model_len=4096, params=1e9, kv_cache_dtype=kv_cache_dtype, arch=vram.architecture(config))
    assert est["kv_cache_per_token"] == per_token
    assert est["kv_cache_per_sequence"] == per_token * 4096


def test_estimate_from_config_json_alone():
    """The AWQ 7B of the example catalog: parameters, embeddings and KV cache all from its config.json."""
    est = vram.estimate(max_model_len=8192, max_num_seqs=16, quantization="awq", arch=vram.architecture(QWEN_7B))
    weights = int((7_615_487_488 - 1_089_994_752) * 4.25 / 8 + 1_089_994_752 * 2)
    one = 57_344 * 8192
    assert est == {
        "weights": weights,
        "kv_cache_per_token": 57_344,
        "kv_cache_per_sequence": one,
        "kv_cache": one * 16,
        "kv_cache_known": True,
        "overhead": 2 * GIB,
        "to_start": weights + one + 2 * GIB,
        "at_full_batch": weights + one * 16 + 2 * GIB,
        "max_model_len": 8192,
        "max_num_seqs": 16,
    }
    assert 5.0 < weights / GIB < 5.5, "the AWQ checkpoint is about 5.2 GiB on disk"


def test_a_model_sharded_over_gpus_holds_its_part_on_each_and_a_whole_overhead():
    est = vram.estimate(max_model_len=4096, max_num_seqs=4, params=13e9, arch=vram.architecture(LLAMA_2_13B))
    half = vram.shard(est, 2)
    assert (half["weights"], half["kv_cache_per_sequence"], half["overhead"]) == (
        13_000_000_000,
        819_200 * 4096 // 2,
        2 * GIB,
    )
    assert half["to_start"] == 13_000_000_000 + 819_200 * 2048 + 2 * GIB
    assert half["at_full_batch"] == 13_000_000_000 + 819_200 * 2048 * 4 + 2 * GIB
    assert vram.shard(est, 1) is est


@pytest.mark.parametrize(
    ("model", "short"),
    [
        ("meta-llama/Llama-2-13b-hf", "Llama-2-13b"),
        ("/srv/models/Llama-2-13b/", "Llama-2-13b"),
        ("Qwen/Qwen2.5-Coder-7B-Instruct-AWQ", "Qwen2.5-Coder-7B-Instruct-AWQ"),
        ("org/-hf", "-hf"),
    ],
)
def test_short_model_names(model, short):
    assert vram.short_name(model) == short


def test_memory_of_the_deployments_own_processes():
    gpu = recorded_gpus("a100-2")[1]
    assert vram.own_memory_mib(gpu, ["/srv/llm/"]) == 72296
    assert vram.own_memory_mib(gpu, ["/home/llm/", ""]) == 0


# ---------------------------------------------------------------------------------------------------------
# The fit check


def test_seed_13b_on_16_gb_is_refused_word_for_word():
    (gpu,) = recorded_gpus("rtx5000-1")
    model = vllm("qwen-coder", "/srv/models/Llama-2-13b", 0.9, params=13e9, dtype="float16", max_model_len=4096)
    result = vram.fit(gpu, [model], "gpu01")
    assert messages(result) == [SEED_REFUSAL]
    (refusal,) = result["problems"]
    assert (refusal["kind"], refusal["model"], refusal["host"], refusal["gpu"]) == ("too_big", "qwen-coder", "gpu01", 0)
    assert refusal["needed_bytes"] == 26_000_000_000 + 2 * GIB
    assert refusal["available_bytes"] == int(16384 * 1024**2 * 0.9)
    assert messages(result, "warnings") == [
        "qwen-coder: the KV cache of Llama-2-13b is not counted (num_hidden_layers, num_key_value_heads and "
        "head_dim unknown): the estimate is the weights and the overhead only."
    ]


def test_13b_with_its_config_json_needs_more_and_a_quantized_model_gets_another_fix():
    (gpu,) = recorded_gpus("rtx5000-1")
    arch = vram.architecture(LLAMA_2_13B)
    full = vllm("llama", "meta-llama/Llama-2-13b-hf", 0.9, max_model_len=4096, arch=arch)
    assert messages(vram.fit(gpu, [full], "gpu01"))[0].startswith(
        "llama: Llama-2-13b needs about 29 GB at max_model_len 4096;"
    )
    awq = vllm("llama", "TheBloke/Llama-2-13B-AWQ", 0.9, "awq", max_model_len=65536, arch=arch)
    assert messages(vram.fit(gpu, [awq], "gpu01")) == [
        "llama: Llama-2-13B-AWQ needs about 59 GB at max_model_len 65536; gpu01 GPU 0 has 16 GB (Quadro RTX 5000), "
        "14.4 GB usable at gpu_memory_utilization 0.9. Use a smaller model, a shorter max_model_len, or another GPU."
    ]


def test_the_example_7b_awq_fits_on_16_gb():
    (gpu,) = recorded_gpus("rtx5000-1")
    result = vram.fit(gpu, [qwen_coder()], "gpu01")
    assert result["problems"] == []
    assert result["claimed_bytes"] == int(16384 * 1024**2 * 0.85)
    # One 8192-token sequence fits with room to spare; sixteen of them do not, which vLLM survives.
    assert messages(result, "warnings") == [
        "qwen-coder: 16 sequences of 8192 tokens need about 7 GB of KV cache, about 14 GB in all; gpu01 GPU 0 has "
        "13.6 GB usable at gpu_memory_utilization 0.85, so vLLM will run fewer sequences at once."
    ]
    fewer = vram.fit(gpu, [qwen_coder(max_num_seqs=8)], "gpu01")
    assert (fewer["problems"], fewer["warnings"]) == ([], [])


@pytest.mark.parametrize(
    ("case", "shares", "kinds"),
    [
        ("a100-2", (0.5, 0.45), []),
        ("a100-2", (0.6, 0.45), ["over_committed"]),
        ("h100-1", (0.45, 0.45), []),
        ("h100-1", (0.5, 0.48), []),
        # 0.99 of the total is more than is free (1 GiB is in use): vLLM would refuse to start the second.
        ("h100-1", (0.5, 0.49), ["not_free"]),
        ("h100-1", (0.45, 0.45, 0.11), ["over_committed"]),
    ],
)
def test_vllm_models_on_one_gpu_are_summed(case, shares, kinds):
    gpu = recorded_gpus(case)[0]
    models = [{**qwen_coder(share), "name": f"m{i}"} for i, share in enumerate(shares)]
    result = vram.fit(gpu, models, "gpu01")
    assert result["claimed_bytes"] == sum(int(gpu["memory_total_mib"] * 1024**2 * s) for s in shares)
    assert [p["kind"] for p in result["problems"]] == kinds


def test_vllm_and_llamacpp_on_one_16_gb_gpu():
    """vLLM takes its share, the llama.cpp model beside it its estimate: together too much."""
    (gpu,) = recorded_gpus("rtx5000-1")
    gguf = vram.estimate(weights_bytes=4_683_073_184, max_model_len=4096, arch=vram.architecture(QWEN_7B))
    cpp = {"name": "qwen-coder-cpp", "model": "/srv/models/qwen2.5-coder-7b-instruct-q4_k_m.gguf", "estimate": gguf}
    result = vram.fit(gpu, [qwen_coder(), cpp], "gpu01")
    assert messages(result) == [
        "gpu01 GPU 0 (Quadro RTX 5000) has 16 GB, but the models placed on it claim about 20 GB together "
        "(qwen-coder 13.6 GB at gpu_memory_utilization 0.85, qwen-coder-cpp 6.6 GB). Lower "
        "gpu_memory_utilization, or move a model to another GPU with its gpus setting."
    ]
    alone = vram.fit(gpu, [qwen_coder(0.5), cpp], "gpu01")
    assert alone["problems"] == []


def test_a_llamacpp_model_too_big_for_the_gpu():
    (gpu,) = recorded_gpus("rtx5000-1")
    est = vram.estimate(weights_bytes=26_033_356_800, max_model_len=4096, arch=vram.architecture(LLAMA_2_13B))
    model = {"name": "llama-cpp", "model": "/srv/models/llama-2-13b.f16.gguf", "estimate": est}
    assert messages(vram.fit(gpu, [model], "gpu01"))[0] == (
        "llama-cpp: llama-2-13b.f16.gguf needs about 29 GB; gpu01 GPU 0 has 16 GB (Quadro RTX 5000). Offload "
        "fewer layers (n_gpu_layers), use a smaller quantization, or another GPU."
    )


def test_memory_held_by_another_process_refuses():
    gpus = recorded_gpus("a100-2")
    busy = vram.fit(gpus[1], [qwen_coder(0.3)], "gpu01")
    assert messages(busy) == [
        "gpu01 GPU 1 (NVIDIA A100-SXM4-80GB) has 8.8 GB free of 80 GB, but the models placed on it claim about "
        "24 GB together (qwen-coder 24 GB at gpu_memory_utilization 0.3); the rest is held by pid 48213 "
        "/srv/llm/vllm/bin/python3 70.6 GB. Stop those processes, lower gpu_memory_utilization, or move a model to "
        "another GPU with its gpus setting."
    ]
    assert busy["problems"][0]["kind"] == "not_free"
    assert vram.fit(gpus[0], [qwen_coder(0.3)], "gpu01")["problems"] == []
    replaced = vram.fit(gpus[1], [qwen_coder(0.3)], "gpu01", reclaimable_mib=72296)
    assert replaced["problems"] == []


def test_memory_held_on_the_recorded_h200():
    """Recorded on a real H200 while torch held 100 GiB: the example catalog's share is not free."""
    (busy,) = recorded_gpus("h200-1-busy")
    assert messages(vram.fit(busy, [qwen_coder()], "gpu01")) == [
        "gpu01 GPU 0 (NVIDIA H200) has 39.2 GB free of 140.4 GB, but the models placed on it claim about 119 GB "
        "together (qwen-coder 119.3 GB at gpu_memory_utilization 0.85); the rest is held by pid 509 python3 "
        "100.6 GB. Stop those processes, lower gpu_memory_utilization, or move a model to another GPU with its gpus "
        "setting."
    ]
    assert vram.fit(busy, [qwen_coder(0.25)], "gpu01")["problems"] == []
    (idle,) = recorded_gpus("h200-1")
    assert vram.fit(idle, [qwen_coder()], "gpu01") == {
        "problems": [],
        "warnings": [],
        "claimed_bytes": int(143771 * 1024**2 * 0.85),
        "free_bytes": 143156 * 1024**2,
    }


def test_memory_held_by_no_listed_process():
    gpu = {**recorded_gpus("rtx5000-1")[0], "memory_used_mib": 9000, "memory_free_mib": 7122}
    assert messages(vram.fit(gpu, [qwen_coder()], "gpu01"))[0].endswith(
        "the rest is held by no process nvidia-smi lists (another container or VM?). Stop those processes, lower "
        "gpu_memory_utilization, or move a model to another GPU with its gpus setting."
    )


# ---------------------------------------------------------------------------------------------------------
# scripts/gpu-check.sh checks the example catalog's models


def test_gpu_check_models_are_the_example_catalogs():
    script = (TOP / "scripts" / "gpu-check.sh").read_text()
    listed = json.loads(re.search(r'models\.json" <<\'EOF\'\n(.*?)\nEOF\n', script, re.S).group(1))
    catalog = yaml.safe_load((TOP / "inventories" / "example" / "group_vars" / "all" / "catalog.yml").read_text())
    keys = ("max_model_len", "gpu_memory_utilization", "max_num_seqs", "quantization")
    expected = [
        {"name": m["name"], "model": m["model"], **{k: m["vllm"][k] for k in keys}}
        for m in catalog["llm_stack_catalog"]["models"]
        if m["backend"] == "vllm"
    ]
    assert [{k: m[k] for k in ("name", "model", *keys)} for m in listed] == expected
    assert vram.architecture(listed[0]["config"])["params"] == vram.architecture(QWEN_7B)["params"]
