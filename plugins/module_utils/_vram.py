# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How much GPU memory a model needs, whether the models placed on a GPU fit there, and the messages that say so.

Standard library only: scripts/gpu-check.sh imports this file by its path on GPU machines without Ansible. The
GPUs are those of the labai.llm_stack.gpu_facts module (_nvidia_smi.py); the labai.llm_stack.vram_fit filter
places the catalog's models on them and calls ``fit`` once per GPU.

The estimate
    needed = weights + KV cache + overhead, in bytes, for one vLLM model on one GPU; ``shard`` divides the
    weights and the KV cache of a model sharded over N GPUs (tensor parallelism) by N, the overhead not.

    weights
        parameters x bytes per parameter: 2 for fp16/bf16 (``dtype: auto`` runs float32 checkpoints in 16
        bits too), 4 for float32, 1 for fp8/int8, and for the 4-bit methods (awq, gptq, bitsandbytes) 4.25 bits:
        4-bit weights plus a 16-bit scale and a 4-bit zero point per group of 128. Their embeddings and LM head
        stay in 16 bits, which ``architecture`` counts apart when it reads a config.json. The size of the
        checkpoint files (``weights_bytes``, a GGUF file's size for llama.cpp) replaces the whole product when
        it is known.
    KV cache
        2 (K and V) x num_hidden_layers x num_key_value_heads x head_dim x bytes per value (the model's dtype,
        or 1 for ``kv_cache_dtype: fp8``) per token. Without those numbers the KV cache is not counted and the
        estimate says so (``kv_cache_known``).
    overhead
        2 GiB per GPU for the CUDA context, the activations of vLLM's profiling run and its CUDA graphs: what
        vLLM's startup log reports as non-torch memory, activation peak and graph capture on 7B-13B models.
        GPUStack estimates ``VRAM = WEIGHT_SIZE x 1.2 + FRAMEWORK_FOOTPRINT``
        (https://docs.gpustack.ai/latest/user-guide/compatibility-check/), its 1.2 being EleutherAI's "total
        inference memory" rule of thumb that stands for the KV cache and activations together; its vLLM
        scheduler reserves a 3 GiB footprint beside weights, KV cache and computation. The KV cache is computed
        here, so only a footprint is added, and the smaller one, so that a refusal stays on the safe side.

    Which tokens count
        vLLM sizes its KV cache from what is left of ``gpu_memory_utilization`` x the GPU's total memory (a
        per-instance limit: https://docs.vllm.ai/en/stable/api/vllm/config/cache/) after the weights and the
        profiling run. It refuses to start only when that cannot hold ONE sequence of ``max_model_len`` tokens
        ("To serve at least one request with the model's max seq len ...", formerly "No available memory for the
        cache blocks" and "The model's max seq len ... is larger than the maximum number of tokens that can be
        stored in KV cache"); with room for fewer than ``max_num_seqs`` such sequences it starts and runs fewer
        at once. So ``fit`` REFUSES on ``to_start`` (weights + one sequence + overhead) and WARNS on
        ``at_full_batch`` (weights + ``max_num_seqs`` sequences + overhead).

    Free memory
        At start vLLM also requires ``gpu_memory_utilization`` x total to be free on the device ("Free memory on
        device ... on startup is less than desired GPU memory utilization"), on each GPU it is sharded over, so
        each vLLM model claims that share of each of its GPUs; another model on the same GPU (llama.cpp layers)
        claims its own estimate. ``fit`` compares the sum of the claims with the GPU's total and with its free
        memory, counting as free what the deployment's own processes hold (``own_memory_mib``): the deploy
        restarts them, and their models are among the claims.

    "GB" in messages is 2**30 bytes, the unit of nvidia-smi's MiB, of vLLM's GiB and of a card sold as 16 GB.
"""

from __future__ import annotations

MIB = 1024**2
GIB = 1024**3
OVERHEAD_BYTES = 2 * GIB
DTYPE_BYTES = {
    "auto": 2,
    "half": 2,
    "float16": 2,
    "fp16": 2,
    "bfloat16": 2,
    "bf16": 2,
    "float": 4,
    "float32": 4,
    "fp32": 4,
}
FOUR_BIT = 4.25
QUANTIZATION_BITS = {
    "awq": FOUR_BIT,
    "awq_marlin": FOUR_BIT,
    "gptq": FOUR_BIT,
    "gptq_marlin": FOUR_BIT,
    "marlin": FOUR_BIT,
    "bitsandbytes": FOUR_BIT,
    "int4": FOUR_BIT,
    "fp8": 8,
    "int8": 8,
    "experts_int8": 8,
    "auto_awq": FOUR_BIT,
    "auto_gptq": FOUR_BIT,
    # ModelOpt's FP8; its NVFP4 is 4-bit values with an 8-bit scale per 16, MXFP4 with an 8-bit scale per 32.
    "modelopt": 8,
    "modelopt_fp4": 4.5,
    "mxfp4": FOUR_BIT,
}
FP8_KV_CACHE = ("fp8", "fp8_e4m3", "fp8_e5m2")


def dtype_bytes(dtype: str = "auto") -> int:
    """Bytes of one 16- or 32-bit value of the model's ``dtype``."""
    try:
        return DTYPE_BYTES[str(dtype).lower()]
    except KeyError:
        raise ValueError(f"dtype {dtype!r} is not one of {', '.join(DTYPE_BYTES)}") from None


def quantization_bits(quantization: str | None) -> float | None:
    """Bits per quantized weight; ``None`` for an unquantized model."""
    if not quantization:
        return None
    try:
        return QUANTIZATION_BITS[quantization.lower()]
    except KeyError:
        raise ValueError(
            f"quantization {quantization!r}: bytes per weight unknown (known: {', '.join(QUANTIZATION_BITS)}); "
            "give the checkpoint's size as weights_bytes"
        ) from None


def text_config(config: dict) -> dict:
    """A config.json's language-model part (multimodal configs nest it under ``text_config``)."""
    nested = config.get("text_config")
    return {**config, **nested} if isinstance(nested, dict) else config


def params_from_config(config: dict) -> tuple[int, int] | None:
    """(all parameters, embedding + LM head parameters) of a dense decoder (Llama, Qwen, Mistral), or ``None``.

    Per layer: the q, k, v, o projections, a gated MLP (3 x hidden x intermediate) and two norms; biases are
    left out. Mixture-of-experts configs are not counted (``None``): give their parameter count instead.
    """
    cfg = text_config(config)
    if any(key in cfg for key in ("num_local_experts", "num_experts", "n_routed_experts")):
        return None
    try:
        hidden, layers, vocab = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["vocab_size"]
        heads, intermediate = cfg["num_attention_heads"], cfg["intermediate_size"]
    except KeyError:
        return None
    kv_heads = cfg.get("num_key_value_heads") or heads
    head_dim = cfg.get("head_dim") or hidden // heads
    attention = hidden * heads * head_dim * 2 + hidden * kv_heads * head_dim * 2
    per_layer = attention + 3 * hidden * intermediate + 2 * hidden
    embedding = vocab * hidden * (1 if cfg.get("tie_word_embeddings") else 2)
    return layers * per_layer + embedding + hidden, embedding


def architecture(config: dict) -> dict:
    """The numbers of a config.json the estimate uses; ``None`` where the config does not say."""
    cfg = text_config(config)
    heads = cfg.get("num_attention_heads") or cfg.get("n_head")
    hidden = cfg.get("hidden_size") or cfg.get("n_embd")
    counted = params_from_config(config)
    return {
        "num_hidden_layers": cfg.get("num_hidden_layers") or cfg.get("n_layer"),
        "num_key_value_heads": cfg.get("num_key_value_heads") or heads,
        "head_dim": cfg.get("head_dim") or (hidden // heads if hidden and heads else None),
        "params": counted[0] if counted else None,
        "embedding_params": counted[1] if counted else None,
    }


def weights_from_params(
    params: float, dtype: str = "auto", quantization: str | None = None, embedding_params: float | None = None
) -> int:
    """Bytes of the weights: quantized weights at their bits, the embeddings (when known) and the rest at dtype."""
    bits = quantization_bits(quantization)
    if bits is None:
        return int(params * dtype_bytes(dtype))
    kept = embedding_params or 0
    return int((params - kept) * bits / 8 + kept * dtype_bytes(dtype))


def kv_cache_per_token(arch: dict | None, value_bytes: int) -> int | None:
    """2 x layers x KV heads x head_dim x bytes; ``None`` without those numbers."""
    arch = arch or {}
    numbers = [arch.get(key) for key in ("num_hidden_layers", "num_key_value_heads", "head_dim")]
    if not all(numbers):
        return None
    layers, kv_heads, head_dim = numbers
    return 2 * layers * kv_heads * head_dim * value_bytes


def estimate(
    *,
    max_model_len: int,
    max_num_seqs: int = 1,
    params: float | None = None,
    weights_bytes: int | None = None,
    dtype: str = "auto",
    quantization: str | None = None,
    kv_cache_dtype: str = "auto",
    arch: dict | None = None,
) -> dict:
    """Bytes one vLLM model needs: weights, KV cache (one sequence and ``max_num_seqs``), overhead, and sums.

    ``params`` (a count, such as 7.6e9) or ``weights_bytes`` give the weights; ``arch`` (from ``architecture``)
    gives the KV cache, and the parameter count when neither is given.
    """
    arch = arch or {}
    if weights_bytes is None:
        params = params or arch.get("params")
        if not params:
            raise ValueError("the estimate needs the parameter count (params) or the size of the weights")
        weights_bytes = weights_from_params(params, dtype, quantization, arch.get("embedding_params"))
    value_bytes = 1 if str(kv_cache_dtype).lower() in FP8_KV_CACHE else dtype_bytes(dtype)
    per_token = kv_cache_per_token(arch, value_bytes)
    per_sequence = (per_token or 0) * max_model_len
    return {
        "weights": weights_bytes,
        "kv_cache_per_token": per_token,
        "kv_cache_per_sequence": per_sequence,
        "kv_cache": per_sequence * max_num_seqs,
        "kv_cache_known": per_token is not None,
        "overhead": OVERHEAD_BYTES,
        "to_start": weights_bytes + per_sequence + OVERHEAD_BYTES,
        "at_full_batch": weights_bytes + per_sequence * max_num_seqs + OVERHEAD_BYTES,
        "max_model_len": max_model_len,
        "max_num_seqs": max_num_seqs,
    }


def shard(est: dict, shards: int) -> dict:
    """What each of ``shards`` GPUs holds of a model sharded over them: its part of the weights and of the KV
    cache (vLLM splits the attention heads), and a whole overhead (one worker process, CUDA context and graphs
    per GPU)."""
    if shards <= 1:
        return est
    weights = est["weights"] // shards
    per_sequence = est["kv_cache_per_sequence"] // shards
    return {
        **est,
        "weights": weights,
        "kv_cache_per_token": None if est["kv_cache_per_token"] is None else est["kv_cache_per_token"] // shards,
        "kv_cache_per_sequence": per_sequence,
        "kv_cache": per_sequence * est["max_num_seqs"],
        "to_start": weights + per_sequence + est["overhead"],
        "at_full_batch": weights + per_sequence * est["max_num_seqs"] + est["overhead"],
        "shards": shards,
    }


# -- the fit check -------------------------------------------------------------------------------------------


def gb(size: float) -> str:
    """Bytes as GB (2**30) to one decimal: 16, 14.4."""
    return f"{round(size / GIB, 1):g}"


def about_gb(size: float) -> str:
    """An estimate as GB: whole from 10 GB up (26), one decimal below (5.7)."""
    value = size / GIB
    return f"{round(value)}" if value >= 10 else f"{round(value, 1):g}"


def short_name(model: str) -> str:
    """The last part of a model id or path, without the -hf of a checkpoint converted for transformers:
    Llama-2-13b for meta-llama/Llama-2-13b-hf."""
    name = model.rstrip("/").rsplit("/", 1)[-1]
    return name[:-3] if name.lower().endswith("-hf") and len(name) > 3 else name


def own_memory_mib(gpu: dict, prefixes: list[str]) -> int:
    """MiB held on a GPU by processes whose executable is under one of ``prefixes`` (the deployment's own)."""
    return sum(
        process.get("used_memory_mib") or 0
        for process in gpu.get("processes") or []
        if any(str(process.get("process_name") or "").startswith(prefix) for prefix in prefixes if prefix)
    )


def claim(entry: dict, total: int) -> int:
    """What one model takes of the GPU: a vLLM model its share of the total, another model its estimate (nothing
    while its size is unknown)."""
    share = entry.get("gpu_memory_utilization")
    if share is not None:
        return int(share * total)
    return entry["estimate"]["to_start"] if entry.get("estimate") else 0


def claim_text(entry: dict, total: int) -> str:
    share = entry.get("gpu_memory_utilization")
    at = f" at gpu_memory_utilization {share:g}" if share is not None else ""
    return f"{entry['name']} {gb(claim(entry, total))} GB{at}"


def holders_text(gpu: dict) -> str:
    processes = gpu.get("processes") or []
    if not processes:
        return "held by no process nvidia-smi lists (another container or VM?)"
    held = ", ".join(
        f"pid {p['pid']} {p['process_name']} {gb((p['used_memory_mib'] or 0) * MIB)} GB" for p in processes
    )
    return f"held by {held}"


def problem(kind: str, gpu: dict, host: str, *, needed: int, available: int, message: str, model=None) -> dict:
    return {
        "kind": kind,
        "model": model,
        "host": host,
        "gpu": gpu["index"],
        "needed_bytes": needed,
        "available_bytes": available,
        "msg": message,
    }


def too_big(entry: dict, gpu: dict, host: str) -> dict | None:
    """A model alone does not fit: the refusal, with the seed's kind of message."""
    est = entry.get("estimate")
    if not est:
        return None
    total = gpu["memory_total_mib"] * MIB
    needed = est["to_start"]
    share = entry.get("gpu_memory_utilization")
    usable = int(total * share) if share is not None else total
    if needed <= usable:
        return None
    where = f"{host} GPU {gpu['index']} has {gb(total)} GB ({gpu['name']})"
    name, model = entry["name"], short_name(entry["model"])
    shards = est.get("shards", 1)
    each = f" on each of the {shards} GPUs it is sharded over" if shards > 1 else ""
    if share is None:
        message = (
            f"{name}: {model} needs about {about_gb(needed)} GB{each}; {where}. "
            "Offload fewer layers (n_gpu_layers), use a smaller quantization, or another GPU."
        )
    else:
        fix = "a smaller model" if entry.get("quantization") else "a quantized model (awq)"
        context = f" at max_model_len {est['max_model_len']}" if est["max_model_len"] else ""
        more = "a larger tensor_parallel_size" if shards > 1 else "another GPU"
        message = (
            f"{name}: {model} needs about {about_gb(needed)} GB{each}{context}; {where}, {gb(usable)} GB usable at "
            f"gpu_memory_utilization {share:g}. Use {fix}, a shorter max_model_len, or {more}."
        )
    return problem("too_big", gpu, host, needed=needed, available=usable, message=message, model=name)


def batch_warning(entry: dict, gpu: dict, host: str) -> dict | None:
    """One sequence fits but not ``max_num_seqs`` of them: vLLM starts and runs fewer at once."""
    share = entry.get("gpu_memory_utilization")
    est = entry.get("estimate")
    if share is None or not est or not est["kv_cache_known"]:
        return None
    usable = int(gpu["memory_total_mib"] * MIB * share)
    if est["at_full_batch"] <= usable or est["to_start"] > usable:
        return None
    message = (
        f"{entry['name']}: {est['max_num_seqs']} sequences of {est['max_model_len']} tokens need about "
        f"{about_gb(est['kv_cache'])} GB of KV cache, about {about_gb(est['at_full_batch'])} GB in all; "
        f"{host} GPU {gpu['index']} has {gb(usable)} GB usable at gpu_memory_utilization {share:g}, "
        "so vLLM will run fewer sequences at once."
    )
    needed = est["at_full_batch"]
    return problem(
        "kv_cache_for_max_num_seqs", gpu, host, needed=needed, available=usable, message=message, model=entry["name"]
    )


def unknown_kv_warning(entry: dict, gpu: dict, host: str) -> dict | None:
    est = entry.get("estimate")
    if not est or est["kv_cache_known"]:
        return None
    message = (
        f"{entry['name']}: the KV cache of {short_name(entry['model'])} is not counted (num_hidden_layers, "
        "num_key_value_heads and head_dim unknown): the estimate is the weights and the overhead only."
    )
    return problem(
        "kv_cache_unknown", gpu, host, needed=est["to_start"], available=0, message=message, model=entry["name"]
    )


def fit(gpu: dict, models: list[dict], host: str, reclaimable_mib: int = 0) -> dict:
    """Whether ``models`` fit together on one GPU of the gpu_facts module's facts.

    Each model: ``name``, ``model`` (id or path), ``estimate`` (from ``estimate``, through ``shard`` for a model
    sharded over several GPUs; ``None`` when unknown: a vLLM model then claims only its share, another model
    nothing), ``gpu_memory_utilization`` (``None`` for a model that is not vLLM's, which claims its estimate) and
    ``quantization``. ``reclaimable_mib`` is memory held now by processes the deployment replaces (its own
    running models), counted as free. Problems refuse; warnings do not.
    """
    total = gpu["memory_total_mib"] * MIB
    free = ((gpu.get("memory_free_mib") or 0) + reclaimable_mib) * MIB
    claimed = sum(claim(entry, total) for entry in models)
    problems = [p for p in (too_big(entry, gpu, host) for entry in models) if p]
    warnings = [
        w for entry in models for w in (batch_warning(entry, gpu, host), unknown_kv_warning(entry, gpu, host)) if w
    ]
    name = f"{host} GPU {gpu['index']} ({gpu['name']})"
    parts = ", ".join(claim_text(entry, total) for entry in models)
    if len(models) == 1 and problems:
        pass  # the one model is refused already: the sums would say it again
    elif claimed > total:
        message = (
            f"{name} has {gb(total)} GB, but the models placed on it claim about {about_gb(claimed)} GB together "
            f"({parts}). Lower gpu_memory_utilization, or move a model to another GPU with its gpus setting."
        )
        problems.append(problem("over_committed", gpu, host, needed=claimed, available=total, message=message))
    elif claimed > free:
        message = (
            f"{name} has {gb(free)} GB free of {gb(total)} GB, but the models placed on it claim about "
            f"{about_gb(claimed)} GB together ({parts}); the rest is {holders_text(gpu)}. "
            "Stop those processes, lower gpu_memory_utilization, or move a model to another GPU with its gpus "
            "setting."
        )
        problems.append(problem("not_free", gpu, host, needed=claimed, available=free, message=message))
    return {"problems": problems, "warnings": warnings, "claimed_bytes": claimed, "free_bytes": free}


# -- placement -----------------------------------------------------------------------------------------------


def gpu_list(indexes: list[int]) -> str:
    """GPU 1, GPUs 1, 2."""
    return ("GPU " if len(indexes) == 1 else "GPUs ") + ", ".join(str(index) for index in indexes)


def missing_gpus(name: str, host: str, gpus: list[dict], *, placed: list[int], field: str, how: str = "") -> str:
    """A model placed on GPU indexes the host does not have. ``how``: how the placement came about when the
    catalog's ``field`` (vllm.gpus, llamacpp.gpus) is not set; empty when it is."""
    present = {gpu["index"] for gpu in gpus}
    missing = [index for index in placed if index not in present]
    listed = ", ".join(f"{gpu['index']} ({gpu['name']})" for gpu in gpus) or "none"
    if field.startswith("vllm.") and len(placed) > len(gpus):
        fix = f"Lower vllm.tensor_parallel_size to at most {len(gpus)}" + ("" if how else f" with as many {field}")
        fix += f", or move the model to a host with {len(placed)} GPUs."
    else:
        fix = f"Set {field} to GPUs it has, or move the model to another host."
    how = how or f"{field} places it on {gpu_list(placed)}"
    return f"{name}: {how}, but {host} has no {gpu_list(missing)}; its GPUs: {listed}. {fix}"


def unknown_size(name: str, model: str, host: str, indexes: list[int], *, local: bool) -> str:
    """A vLLM model whose parameter count is unknown: only its share of the GPU is checked."""
    where = f"{model} has no config.json on {host}" if local else f"{model} is not a model directory on {host}"
    return (
        f"{name}: the memory {short_name(model)} needs cannot be estimated ({where}, and vllm.parameters_billions "
        f"is not set), so on {gpu_list(indexes)} only its gpu_memory_utilization share is checked. Set "
        "vllm.parameters_billions to its parameter count in billions, such as 7.6."
    )


def unknown_file(name: str, model_file: str, host: str, indexes: list[int]) -> str:
    """A llama.cpp model whose GGUF file is not on the host yet: it is not counted on its GPUs."""
    return (
        f"{name}: {model_file} is not on {host} yet, so what its layers take of {gpu_list(indexes)} is not "
        "counted; run pre-flight again once the file is there."
    )


def unknown_quantization(name: str, model: str, quantization: str, indexes: list[int]) -> str:
    """A vLLM model whose quantization has no known size per weight: only its share of the GPU is checked."""
    return (
        f"{name}: the memory {short_name(model)} needs cannot be estimated (the bytes per weight of quantization "
        f"{quantization} are not known here), so on {gpu_list(indexes)} only its gpu_memory_utilization share is "
        "checked."
    )


def no_gpu(names: list[str], host: str, message: str, fixes: list[str]) -> str:
    """Models that need a GPU on a host where nvidia-smi gives none; ``message`` is gpu_facts' (what is wrong
    and its fix), ``fixes`` the settings that serve the models without a GPU."""
    one = len(names) == 1
    return (
        f"{', '.join(names)} need{'s' if one else ''} an NVIDIA GPU on {host}, but {message.rstrip('.')}. "
        f"Or serve {'it' if one else 'them'} without one: {' and '.join(fixes)}."
    )
