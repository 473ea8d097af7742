# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The labai.llm_stack.vram_fit filter: the GPU models of one host placed on its GPUs, and whether they fit."""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible_collections.labai.llm_stack.plugins.module_utils import _vram as vram

DOCUMENTATION = r"""
name: vram_fit
author: labai
version_added: "1.0.0"
short_description: Place a host's GPU models on its GPUs and check that they fit in their memory
description:
  - Takes the plan made by P(labai.llm_stack.plan#filter) and the GPUs of O(host) as the
    M(labai.llm_stack.gpu_facts) module reads them, and checks, before anything changes, that the models that
    need a GPU there can start.
  - "The models placed: every vLLM record of the host (unless O(vllm_flavor) is V(cpu)), on the GPUs of its
    C(vllm.gpus) or else on GPUs 0 to C(tensor_parallel_size) - 1; every llama.cpp record with C(n_gpu_layers)
    other than 0, on the GPUs of its C(llamacpp.gpus) or else on GPU 0."
  - A model placed on a GPU index the host does not have is a problem naming the model, the host, the index
    and the GPUs the host has.
  - "What a model needs is estimated (see C(plugins/module_utils/_vram.py) for the formula and where it comes
    from): for vLLM from the model directory's C(config.json) when O(sources) has it, else from
    C(vllm.parameters_billions); for llama.cpp from the size of the GGUF file. A model sharded over N GPUs
    needs 1/N of its weights and KV cache on each, and a whole runtime overhead. Without a parameter count or
    file size the model's fit cannot be checked, which is a warning naming the setting to give."
  - Then per GPU, each vLLM model claims C(gpu_memory_utilization) of it and each llama.cpp model its estimate;
    a model that alone needs more than its share, claims that add up to more than the GPU has, or more than is
    free beside the processes holding memory now, are problems naming the model, the host, the GPU and the fix
    (see RV(_value.problems)).
  - When nvidia-smi gives no GPU (no driver, module not loaded, driver/library mismatch, no GPU), that is the
    one problem, naming the models that need one and the fix the module gives.
positional: host, gpu_facts, sources
options:
  _input:
    description: The deployment plan.
    type: dict
    required: true
  host:
    description: An inventory hostname, normally C(inventory_hostname).
    type: str
    required: true
  gpu_facts:
    description:
      - What M(labai.llm_stack.gpu_facts) returned on the host, its registered result or the fact
        C(gpu_facts), with C(state), C(msg) and C(gpus). A result without a C(state) (the module failed) counts
        as no GPU, with its C(msg).
    type: dict
    required: true
  sources:
    description:
      - By model name, what the host says about the model's weights, C(config) (the parsed C(config.json) of a
        local vLLM model directory, or V(null)) and C(size_bytes) (the size of a llama.cpp GGUF file, or
        V(null) when it is not there yet). A model missing here counts as both unknown.
    type: dict
    default: {}
  vllm_flavor:
    description: The vllm role's C(vllm_flavor); V(cpu) serves vLLM without a GPU, so its models are not placed.
    type: str
    default: cuda
  vllm_dtype:
    description: The vllm role's C(vllm_dtype), the type of the weights that are not quantized.
    type: str
    default: auto
  own_processes:
    description:
      - Path prefixes of the deployment's own executables (its virtual environments and builds). Memory that
        processes under them hold now counts as free, since the deploy restarts them and their models are
        among the claims.
    type: list
    elements: str
    default: []
notes:
  - C(max_num_seqs) unset counts one sequence; C(max_model_len) unset counts the C(max_position_embeddings)
    of the C(config.json), or no KV cache without one.
  - A C(--kv-cache-dtype) in C(vllm.extra_args) is read.
  - A llama.cpp model counts as wholly offloaded, whatever layer count C(n_gpu_layers) gives, and without
    C(llamacpp.gpus) as wholly on GPU 0 (llama.cpp itself spreads the layers over every GPU it sees).
"""

EXAMPLES = r"""
- name: Read the GPUs
  labai.llm_stack.gpu_facts:
  register: __gpus

- name: Place the models and check that they fit
  ansible.builtin.set_fact:
    __fit: "{{ llm_stack_plan | labai.llm_stack.vram_fit(inventory_hostname, __gpus, {}) }}"

- name: Fail on a model that does not fit
  ansible.builtin.assert:
    that: __fit.problems | length == 0
    fail_msg: "{{ __fit.problems | join('\n') }}"
"""

RETURN = r"""
_value:
  description: The verdict.
  type: dict
  contains:
    problems:
      description: What would stop a model from starting, one sentence each with the fix.
      type: list
      elements: str
      sample:
        - "qwen-coder: Llama-2-13b needs about 26 GB at max_model_len 4096; gpu01 GPU 0 has 16 GB (Quadro RTX 5000),
          14.4 GB usable at gpu_memory_utilization 0.9. Use a quantized model (awq), a shorter max_model_len, or
          another GPU."
    warnings:
      description: What pre-flight cannot check, or what makes a model run with fewer sequences at once.
      type: list
      elements: str
    placements:
      description: By GPU index (of those the host has), the names of the models placed there.
      type: dict
"""

OK = "ok"


def _records(plan: Mapping, host: str, vllm_flavor: str) -> list[dict]:
    """The host's records of models that need a GPU, in plan order."""
    services = plan.get("hosts", {}).get(host, {}).get("services", [])
    return [
        record
        for record in services
        if (record["backend"] == "vllm" and vllm_flavor != "cpu")
        or (record["backend"] == "llamacpp" and record.get("needs_gpu"))
    ]


def _placement(record: dict) -> tuple[list[int], str, str]:
    """The GPU indexes a model runs on, the setting that places it, and how it was placed when that is unset."""
    settings, backend = record["settings"], record["backend"]
    field = f"{backend}.gpus"
    if settings.get("gpus") is not None:
        return list(settings["gpus"]), field, ""
    if backend == "vllm":
        size = settings.get("tensor_parallel_size") or 1
        placed = list(range(size))
        return placed, field, f"without {field} it runs on {vram.gpu_list(placed)} (tensor_parallel_size {size})"
    return [0], field, f"without {field} it runs on GPU 0"


def _kv_cache_dtype(extra_args: list[str]) -> str:
    for index, arg in enumerate(extra_args):
        if arg == "--kv-cache-dtype" and index + 1 < len(extra_args):
            return extra_args[index + 1]
        if arg.startswith("--kv-cache-dtype="):
            return arg.split("=", 1)[1]
    return "auto"


def _config_quantization(config: Mapping) -> str | None:
    quantization = config.get("quantization_config")
    return quantization.get("quant_method") if isinstance(quantization, Mapping) else None


class Fit:
    """The models of one host on its GPUs."""

    def __init__(self, host: str, gpus: list[dict], sources: Mapping, vllm_dtype: str) -> None:
        self.host = host
        self.gpus = {gpu["index"]: gpu for gpu in gpus}
        self.sources = sources
        self.vllm_dtype = vllm_dtype
        self.problems: list[str] = []
        self.warnings: list[str] = []
        self.placed: dict[int, list[dict]] = {}

    def place(self, record: dict) -> None:
        indexes, field, how = _placement(record)
        if any(index not in self.gpus for index in indexes):
            listed = list(self.gpus.values())
            self.problems.append(
                vram.missing_gpus(record["name"], self.host, listed, placed=indexes, field=field, how=how)
            )
        here = [index for index in indexes if index in self.gpus]
        if not here:
            return
        entry = self.entry(record, here)
        if entry["estimate"]:
            entry["estimate"] = vram.shard(entry["estimate"], len(indexes))
        for index in here:
            self.placed.setdefault(index, []).append(entry)

    def entry(self, record: dict, indexes: list[int]) -> dict:
        """What fit() takes for one model; its estimate None (with a warning) when unknown."""
        source = self.sources.get(record["name"]) or {}
        settings = record["settings"]
        if record["backend"] == "llamacpp":
            size = source.get("size_bytes")
            if size is None:
                self.warnings.append(vram.unknown_file(record["name"], record["model_file"], self.host, indexes))
            est = vram.estimate(weights_bytes=int(size), max_model_len=settings["n_ctx"]) if size is not None else None
            return {"name": record["name"], "model": record["model_file"], "estimate": est, "quantization": None}
        config = source.get("config") if isinstance(source.get("config"), Mapping) else None
        quantization = settings.get("quantization") or (_config_quantization(config) if config else None)
        entry = {
            "name": record["name"],
            "model": record["model"],
            "estimate": None,
            "gpu_memory_utilization": settings["gpu_memory_utilization"],
            "quantization": quantization,
        }
        arch = vram.architecture(config) if config else {}
        billions = settings.get("parameters_billions")
        params = arch.get("params") or (billions * 1e9 if billions else None)
        if not params:
            local = record["model"].startswith("/")
            self.warnings.append(vram.unknown_size(record["name"], record["model"], self.host, indexes, local=local))
            return entry
        # vLLM's default context is the model's own.
        context = settings.get("max_model_len") or (config and vram.text_config(config).get("max_position_embeddings"))
        try:
            vram.quantization_bits(quantization)
        except ValueError:
            self.warnings.append(vram.unknown_quantization(record["name"], record["model"], quantization, indexes))
            return entry
        entry["estimate"] = vram.estimate(
            max_model_len=context or 0,
            max_num_seqs=settings.get("max_num_seqs") or 1,
            params=params,
            dtype=self.vllm_dtype,
            quantization=quantization,
            kv_cache_dtype=_kv_cache_dtype(settings.get("extra_args") or []),
            arch=arch,
        )
        return entry

    def check(self, own_processes: list[str]) -> None:
        for index in sorted(self.placed):
            gpu = self.gpus[index]
            result = vram.fit(gpu, self.placed[index], self.host, vram.own_memory_mib(gpu, own_processes))
            self.problems.extend(problem["msg"] for problem in result["problems"])
            self.warnings.extend(warning["msg"] for warning in result["warnings"])

    def verdict(self) -> dict:
        return {
            "problems": list(dict.fromkeys(self.problems)),
            "warnings": list(dict.fromkeys(self.warnings)),
            "placements": {index: [entry["name"] for entry in self.placed[index]] for index in sorted(self.placed)},
        }


def vram_fit(
    plan: Mapping,
    host: str,
    gpu_facts: Mapping,
    sources: Mapping | None = None,
    *,
    vllm_flavor: str = "cuda",
    vllm_dtype: str = "auto",
    own_processes: list[str] | None = None,
) -> dict:
    if not isinstance(plan, Mapping) or "hosts" not in plan:
        raise AnsibleFilterError("vram_fit: the input is not a plan made by labai.llm_stack.plan")
    if not isinstance(gpu_facts, Mapping):
        raise AnsibleFilterError("vram_fit: gpu_facts must be what labai.llm_stack.gpu_facts returned")
    records = _records(plan, host, vllm_flavor)
    if not records:
        return {"problems": [], "warnings": [], "placements": {}}
    if gpu_facts.get("state") != OK or not gpu_facts.get("gpus"):
        backends = {record["backend"] for record in records}
        cpu = (("vllm", "vllm_flavor: cpu"), ("llamacpp", "n_gpu_layers: 0"))
        fixes = [fix for backend, fix in cpu if backend in backends]
        message = str(gpu_facts.get("msg") or "labai.llm_stack.gpu_facts found no GPU")
        problem = vram.no_gpu([record["name"] for record in records], host, message, fixes)
        return {"problems": [problem], "warnings": [], "placements": {}}
    fit = Fit(host, list(gpu_facts["gpus"]), sources or {}, vllm_dtype)
    try:
        for record in records:
            fit.place(record)
    except ValueError as err:
        raise AnsibleFilterError(f"vram_fit: {err}") from err
    fit.check(list(own_processes or []))
    return fit.verdict()


class FilterModule:
    def filters(self) -> dict:
        return {"vram_fit": vram_fit}
