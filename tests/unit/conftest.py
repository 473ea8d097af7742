# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The seed deployment's catalog, shared by the catalog and filter tests."""

from __future__ import annotations

import pytest

HOSTS = ["gpu01", "gpu02"]


@pytest.fixture
def hosts() -> list[str]:
    return list(HOSTS)


@pytest.fixture
def catalog() -> dict:
    """vLLM -> Ollama -> llama.cpp fallbacks behind the gateway; vLLM and the gateway on gpu01 only."""
    return {
        "gateway": {"port": 4000, "hosts": ["gpu01"]},
        "backends": {
            "vllm": {"enabled": True},
            # gpu01's gateway reaches gpu02's Ollama, which has no authentication: a network the operator trusts.
            "ollama": {"enabled": True, "port": 11434, "bind": "0.0.0.0", "trusted_network": True},
            "llamacpp": {"enabled": True, "bind": "0.0.0.0"},
        },
        "models": [
            {
                "name": "qwen-coder",
                "backend": "vllm",
                "model": "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ",
                "port": 8001,
                "aliases": ["qwen-math", "llama2-13b-vllm"],
                "fallbacks": ["qwen-coder-ollama", "qwen-coder-cpp"],
                "hosts": ["gpu01"],
                "vllm": {
                    "quantization": "awq",
                    "max_model_len": 8192,
                    "gpu_memory_utilization": 0.85,
                    "tensor_parallel_size": 1,
                    "max_num_seqs": 16,
                    "extra_args": [],
                },
            },
            {
                "name": "qwen-coder-ollama",
                "backend": "ollama",
                "model": "qwen2.5-coder:7b",
                "fallbacks": ["qwen-coder-cpp"],
                "ollama": {"keep_alive": "5m"},
            },
            {
                "name": "qwen-coder-cpp",
                "backend": "llamacpp",
                "model_file": "/srv/models/qwen2.5-coder-7b-instruct-q4_k_m.gguf",
                "port": 8000,
                "llamacpp": {
                    "flavor": "python",
                    "n_ctx": 4096,
                    "n_gpu_layers": 99,
                    "threads": 8,
                    "parallel": 1,
                },
            },
            {
                "name": "qwen-coder-native",
                "backend": "llamacpp",
                "model_file": "/srv/models/qwen2.5-coder-7b-instruct-q4_k_m.gguf",
                "port": 8080,
                "llamacpp": {"flavor": "native", "n_gpu_layers": 99, "extra_args": ["--flash-attn"]},
            },
        ],
        "routes": [{"pattern": "meta-llama/*", "model": "qwen-coder"}],
    }
