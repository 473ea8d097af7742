# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One description per backend, and one for the gateway: everything the plan needs to know about a kind of
server. Adding a backend is one description here plus one role."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ansible_collections.labai.llm_stack.plugins.plugin_utils._values import (
    Rule,
    absolute_path,
    checksum,
    digest_hex,
    fraction,
    gpu_indexes,
    int_at_least,
    nullable,
    ollama_digest,
    one_of,
    positive_int,
    positive_number,
    revision,
    string,
    strings,
    url,
)

# vLLM 0.33's --quantization methods, less the deprecated fbgemm_fp8 and fp_quant.
QUANTIZATIONS = (
    "awq",
    "awq_marlin",
    "auto_awq",
    "gptq",
    "gptq_marlin",
    "auto_gptq",
    "fp8",
    "compressed-tensors",
    "experts_int8",
    "moe_wna16",
    "modelopt",
    "modelopt_fp4",
    "mxfp4",
    "quark",
    "torchao",
    "inc",
)


@dataclass(frozen=True)
class OwnFlags:
    """The flags a role puts on a server's command line itself: extra_args must not pass them again (the
    server takes the last one, so a second --host, --port or --api-key would quietly override the plan)."""

    # Each spelling of a flag -> the setting the role takes it from.
    sources: dict[str, str]
    # Flags with no setting behind them -> (what passing one does, how to fix it).
    refused: dict[str, tuple[str, str]] = field(default_factory=dict)
    # argparse servers read a unique prefix of a long flag (--hos) as the flag, and -qawq as -q awq.
    abbreviations: bool = False
    # vLLM reads --max_model_len as --max-model-len.
    underscores: bool = False


def _sources(*groups: tuple[tuple[str, ...], str]) -> dict[str, str]:
    return {spelling: source for spellings, source in groups for spelling in spellings}


def _flag_of(argument: str, flags: OwnFlags) -> str | None:
    """The flag of ``flags`` an extra argument passes: --flag, --flag=value, or an abbreviation of either."""
    if not argument.startswith("-") or argument == "--":
        return None
    canonical = (lambda flag: flag.replace("_", "-")) if flags.underscores else (lambda flag: flag)
    given = canonical(argument.split("=", 1)[0])
    known = {canonical(flag): flag for flag in (*flags.sources, *flags.refused)}
    if given in known:
        return known[given]
    if not flags.abbreviations:
        return None
    if given.startswith("--") and len(given) > 2:
        longer = [known[flag] for flag in known if flag.startswith("--") and flag.startswith(given)]
        return longer[0] if longer else None
    short = given[:2]
    return known.get(short) if not given.startswith("--") and short in known else None


def own_flag_problems(arguments: list[str], flags: OwnFlags) -> list[tuple[int, str, str]]:
    """(index, what is wrong, how to fix it) for each extra argument that passes a flag the role sets."""
    problems = []
    for index, argument in enumerate(arguments):
        flag = _flag_of(argument, flags)
        if flag is None:
            continue
        passes = repr(argument) if argument == flag else f"{argument!r} passes {flag}, which"
        if flag in flags.refused:
            what, fix = flags.refused[flag]
            problems.append((index, f"{passes} {what}", fix))
        else:
            source = flags.sources[flag]
            what = f"{passes} is a flag the role sets itself, from {source}"
            problems.append((index, what, f"remove it and set {source} instead"))
    return problems


def _bind(backend: str) -> str:
    return f"bind (the model's, or backends.{backend}.bind)"


VLLM_FLAGS = OwnFlags(
    sources=_sources(
        (("--model",), "model"),
        (("--revision",), "vllm.revision"),
        (("--served-model-name",), "name and aliases"),
        (("--host",), _bind("vllm")),
        (("--port",), "port"),
        (("--api-key",), "llm_stack_vllm_api_key"),
        (("--tensor-parallel-size", "-tp"), "vllm.tensor_parallel_size"),
        (("--gpu-memory-utilization",), "vllm.gpu_memory_utilization"),
        (("--quantization", "-q"), "vllm.quantization"),
        (("--max-model-len",), "vllm.max_model_len"),
        (("--max-num-seqs",), "vllm.max_num_seqs"),
        (("--download-dir",), "vllm.download_dir"),
        (("--dtype",), "vllm_dtype"),
        (("--shutdown-timeout",), "vllm_shutdown_timeout"),
    ),
    refused={
        "--uds": (
            "makes vLLM listen on a Unix socket instead of the address and port the plan gives it",
            "remove it; set bind and port to choose where vLLM listens",
        ),
        "--config": (
            "reads flags from a file, where they could override the flags the role sets",
            "remove it and list the file's flags in extra_args",
        ),
    },
    abbreviations=True,
    underscores=True,
)
LLAMACPP_NATIVE_FLAGS = OwnFlags(
    sources=_sources(
        (("--model", "-m", "--hf-repo", "-hf", "-hfr", "--hf-file", "-hff"), "model_file"),
        (("--model-url", "-mu"), "llamacpp.model_url"),
        (("--alias", "-a"), "name and aliases"),
        (("--host",), _bind("llamacpp")),
        (("--port",), "port"),
        (("--api-key", "--api-key-file"), "llm_stack_llamacpp_api_key"),
        (("--ctx-size", "-c"), "llamacpp.n_ctx"),
        (("--n-gpu-layers", "--gpu-layers", "-ngl"), "llamacpp.n_gpu_layers"),
        (("--parallel", "-np"), "llamacpp.parallel"),
        (("--threads", "-t"), "llamacpp.threads"),
    ),
)
LLAMACPP_PYTHON_FLAGS = OwnFlags(
    sources=_sources(
        (("--model", "--hf_model_repo_id"), "model_file"),
        (("--model_alias",), "name and aliases"),
        (("--host",), _bind("llamacpp")),
        (("--port",), "port"),
        (("--api_key",), "llm_stack_llamacpp_api_key"),
        (("--n_ctx",), "llamacpp.n_ctx"),
        (("--n_gpu_layers",), "llamacpp.n_gpu_layers"),
        (("--n_threads",), "llamacpp.threads"),
    ),
    refused={
        "--interrupt_requests": (
            "is a flag the role sets itself, to false: a new request waits instead of cutting off a stream",
            "remove it",
        ),
        "--config_file": (
            "makes llama_cpp.server read its settings from a file and ignore the flags the role sets",
            "remove it and list the file's settings in extra_args",
        ),
    },
    abbreviations=True,
)

MODEL_SRC = Rule(
    None, nullable(absolute_path), "use the absolute path of the model on the controller to copy it, or null"
)
EXTRA_ARGS = Rule([], strings, "write extra_args as a list of strings, such as ['--enforce-eager']")
# (field, what is wrong, fix) for each problem between the valid settings of one block.
CrossCheck = Callable[[dict], list[tuple[str, str, str]]]


def _vllm_cross_check(settings: dict) -> list[tuple[str, str, str]]:
    """vLLM shards a model over tensor_parallel_size GPUs: gpus, when set, names each of them."""
    gpus, size = settings.get("gpus"), settings.get("tensor_parallel_size")
    if gpus is None or len(gpus) == size:
        return []
    what = f"lists {len(gpus)} GPU{'' if len(gpus) == 1 else 's'}, but vllm.tensor_parallel_size is {size}"
    fix = f"list one GPU per tensor_parallel_size, or set tensor_parallel_size: {len(gpus)}"
    return [("gpus", what, fix)]


def _tag(model: str) -> str:
    """Ollama lists an untagged model as NAME:latest, on /api/tags and /v1/models alike."""
    return model if ":" in model else f"{model}:latest"


@dataclass(frozen=True)
class Backend:
    """A kind of server the catalog can place models on."""

    name: str
    # True: one service (unit, port) per model. False: one server per host shared by its models.
    per_model: bool
    # The catalog field naming what to serve, and how to fill it in.
    source_field: str
    source_fix: str
    # The per-model settings block named after the backend: one rule per key.
    settings: dict[str, Rule]
    # How the LiteLLM gateway calls it: provider prefix and the API path after host:port.
    provider: str
    api_path: str
    # The inventory variable holding the key its servers require (empty: it takes none).
    key_variable: str
    # Seconds a server may take to be ready after a (re)start, unless the catalog says otherwise.
    ready_timeout: int
    # Whether the gateway must send some key even when the servers take none (LiteLLM's OpenAI client does).
    placeholder_key: bool = False
    # The shared server's port (per_model False); per-model backends take the model's port.
    default_port: int | None = None
    # Whether a model with these settings needs a GPU on its host.
    needs_gpu: Callable[[dict], bool] = field(default=lambda settings: False)
    # Checks between settings, run when each setting of the block is valid on its own.
    cross_check: CrossCheck = field(default=lambda settings: [])
    # The names a server lists on /v1/models for a model: (public names, source, settings) -> names.
    listed_names: Callable[[list[str], str | None, dict], list[str]] = field(
        default=lambda names, source, settings: list(names)
    )
    # The name the gateway asks the server for: (public name, source) -> upstream model name.
    upstream: Callable[[str, str | None], str] = field(default=lambda name, source: name)
    # The flags its role sets on the command line, for a model's settings (extra_args must not repeat them).
    own_flags: Callable[[dict], OwnFlags] = field(default=lambda settings: OwnFlags({}))


VLLM = Backend(
    name="vllm",
    per_model=True,
    source_field="model",
    source_fix="set a Hugging Face model id such as Qwen/Qwen2.5-Coder-7B-Instruct-AWQ or a model directory",
    settings={
        "quantization": Rule(
            None,
            nullable(one_of("quantization", QUANTIZATIONS)),
            "use one of " + ", ".join(QUANTIZATIONS) + ", or null",
        ),
        "max_model_len": Rule(None, nullable(positive_int), "set the context length in tokens, such as 8192, or null"),
        "gpu_memory_utilization": Rule(0.9, fraction, "use the share of GPU memory vLLM may take, such as 0.85", float),
        "tensor_parallel_size": Rule(1, positive_int, "set the number of GPUs to shard the model over"),
        "max_num_seqs": Rule(None, nullable(positive_int), "set a whole number greater than 0, or null"),
        "parameters_billions": Rule(
            None,
            nullable(positive_number),
            "set the model's parameter count in billions, such as 7.6 (the pre-flight memory check reads it when "
            "the model is not a local directory with a config.json), or null",
        ),
        "gpus": Rule(
            None,
            nullable(gpu_indexes),
            "list the GPUs to run the model on by nvidia-smi's index, one per tensor_parallel_size, such as [0, 1], "
            "or null for GPUs 0 to tensor_parallel_size - 1",
        ),
        "download_dir": Rule(None, nullable(absolute_path), "use an absolute directory path, or null"),
        "revision": Rule(
            None,
            nullable(revision),
            "set the commit hash (40 hex digits) or a tag of the model's Hugging Face repository, or null",
        ),
        "model_src": MODEL_SRC,
        "extra_args": EXTRA_ARGS,
    },
    provider="hosted_vllm",
    api_path="/v1",
    key_variable="llm_stack_vllm_api_key",
    ready_timeout=600,
    # The cuda flavor (the default); the role's vllm_flavor: cpu serves without one.
    needs_gpu=lambda settings: True,
    cross_check=_vllm_cross_check,
    own_flags=lambda settings: VLLM_FLAGS,
)

LLAMACPP = Backend(
    name="llamacpp",
    per_model=True,
    source_field="model_file",
    source_fix="set the absolute path of the GGUF file on the host",
    settings={
        "flavor": Rule(
            "python", one_of("flavor", ("native", "python")), "use python (llama-cpp-python) or native (llama-server)"
        ),
        "n_ctx": Rule(4096, positive_int, "set the context length in tokens, such as 4096"),
        "n_gpu_layers": Rule(0, int_at_least(-1), "use -1 to offload every layer, 0 for CPU only, or a layer count"),
        "threads": Rule(None, nullable(positive_int), "set a thread count greater than 0, or null"),
        "parallel": Rule(1, positive_int, "set the number of parallel request slots, such as 1"),
        "gpus": Rule(
            None,
            nullable(gpu_indexes),
            "list the GPUs to offload the layers to by nvidia-smi's index, such as [1], or null for GPU 0",
        ),
        "model_src": MODEL_SRC,
        "model_url": Rule(None, nullable(url), "use an http(s):// or file:// URL of the GGUF file, or null"),
        "model_checksum": Rule(None, nullable(checksum), "use 'sha256:' followed by the file's 64 hex digits, or null"),
        "extra_args": EXTRA_ARGS,
    },
    provider="openai",
    api_path="/v1",
    key_variable="llm_stack_llamacpp_api_key",
    ready_timeout=180,
    placeholder_key=True,
    # llama-cpp-python's server (the python flavor) serves one alias; llama-server (native) takes several.
    listed_names=lambda names, source, settings: list(names) if settings.get("flavor") == "native" else names[:1],
    needs_gpu=lambda settings: settings.get("n_gpu_layers", 0) != 0,
    own_flags=lambda settings: LLAMACPP_NATIVE_FLAGS if settings.get("flavor") == "native" else LLAMACPP_PYTHON_FLAGS,
)

OLLAMA = Backend(
    name="ollama",
    per_model=False,
    source_field="model",
    source_fix="set an Ollama model tag such as qwen2.5-coder:7b",
    settings={
        "keep_alive": Rule(None, nullable(string), "use a duration string such as '5m' or '-1', or null"),
        "digest": Rule(
            None,
            nullable(ollama_digest),
            "use the model's digest as Ollama's /api/tags lists it: 64 hex digits, with or without 'sha256:', or null",
            digest_hex,
        ),
    },
    provider="ollama_chat",
    api_path="",
    key_variable="",
    ready_timeout=120,
    default_port=11434,
    listed_names=lambda names, source, settings: [_tag(source or "")],
    upstream=lambda name, source: source or name,
)

BACKENDS: dict[str, Backend] = {backend.name: backend for backend in (LLAMACPP, OLLAMA, VLLM)}


@dataclass(frozen=True)
class Gateway:
    """The LiteLLM gateway: one per gateway host, listing every public name."""

    name: str = "litellm"
    key: str = "litellm"
    key_variable: str = "llm_stack_litellm_master_key"
    default_port: int = 4000
    ready_timeout: int = 180
    # Files besides its env file and unit that it reads, relative to the service account's ~/.config.
    config_files: tuple[str, ...] = ("litellm/config.yaml",)
    # Its TLS certificate and key (catalog gateway.tls), relative to ~/.config like its config; never backed
    # up, so that a rollback cannot bring back a replaced key.
    tls_certificate: str = "litellm/tls/certificate.pem"
    tls_private_key: str = "litellm/tls/private_key.pem"
    # The CA that signed it, where every account on the host can read it.
    tls_ca_file: str = "/etc/llm-stack/gateway-ca.pem"

    @staticmethod
    def deployment_id(public: str, host: str) -> str:
        """The gateway's id of one deployment (its model_info id, sent back in x-litellm-model-id)."""
        return f"{public}@{host}"


GATEWAY = Gateway()
DEFAULT_BIND = "127.0.0.1"
