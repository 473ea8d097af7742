# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validate the ``llm_stack_catalog`` model catalog and turn it into a deployment plan.

``build_plan(catalog, hosts)`` checks the whole catalog, collects every problem it finds and raises
``CatalogError`` with all of them; otherwise it returns the plan: plain dicts, lists, strings, numbers
and booleans that every role of the collection renders its configuration from.

Every problem reads ``<location>.<field>: <what is wrong>; <how to fix it>``, where the location is
``models[<i>] (<name>)``, ``routes[<i>]``, ``gateway``, ``backends.<name>`` or ``llm_stack_catalog``.

Standard library only: modules running on the managed hosts may import this file.
"""

from __future__ import annotations

import difflib
import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

BACKENDS = ("llamacpp", "ollama", "vllm")
OWN_SERVICE_BACKENDS = ("vllm", "llamacpp")  # one service per model; ollama is one service per host
SOURCE_FIELD = {"vllm": "model", "ollama": "model", "llamacpp": "model_file"}
FALLBACK_FIELDS = ("fallbacks", "context_window_fallbacks")
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
DEFAULT_GATEWAY_PORT = 4000
DEFAULT_OLLAMA_PORT = 11434
MAX_REPORTED_LOOPS = 20

CATALOG = "llm_stack_catalog"
TOP_FIELDS = ("backends", "gateway", "models", "routes")
GATEWAY_FIELDS = ("hosts", "port")
BACKEND_FIELDS = {"llamacpp": ("enabled",), "ollama": ("enabled", "port"), "vllm": ("enabled",)}
MODEL_FIELDS = (
    "aliases",
    "backend",
    "context_window_fallbacks",
    "fallbacks",
    "hosts",
    "llamacpp",
    "model",
    "model_file",
    "name",
    "ollama",
    "port",
    "vllm",
)
ROUTE_FIELDS = ("model", "pattern")

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}")
NAME_FIX = "use letters, digits and . _ : / - (starting with a letter or digit)"
PORT_FIX = "use a free TCP port between 1 and 65535"
ALL_BACKENDS_FIX = "use one of " + ", ".join(BACKENDS)
SOURCE_FIX = {
    "vllm": "set a Hugging Face model id such as Qwen/Qwen2.5-Coder-7B-Instruct-AWQ or a model directory",
    "ollama": "set an Ollama model tag such as qwen2.5-coder:7b",
    "llamacpp": "set the absolute path of the GGUF file on the host",
}


class CatalogError(ValueError):
    """The catalog is invalid; ``problems`` lists every problem found, one sentence each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        header = f"{CATALOG} is invalid ({count} problem{'' if count == 1 else 's'}):"
        super().__init__(header + "".join(f"\n  - {problem}" for problem in self.problems))


# ---------------------------------------------------------------------------------------------------------
# Describing values in messages


def _is_mapping(value: object) -> bool:
    return isinstance(value, Mapping)


def _is_list(value: object) -> bool:
    return isinstance(value, (list, tuple))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind(value: object) -> str:
    """The YAML kind of a value, with its article: 'a string', 'an integer', 'null'."""
    if value is None:
        return "null"
    kinds = ((bool, "a boolean"), (int, "an integer"), (float, "a number"), (str, "a string"))
    for python_type, kind in kinds:
        if isinstance(value, python_type):
            return kind
    if _is_list(value):
        return "a list"
    if _is_mapping(value):
        return "a mapping"
    return f"a {type(value).__name__}"


def _show(value: object) -> str:
    """A scalar as YAML would spell it ('name', 8001, true, null); other values by their kind."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return repr(str(value))
    return _kind(value)


def _plain(value: object) -> object:
    """A copy made of plain dict, list, str, int, float and bool (no Ansible-tagged subclasses)."""
    if _is_mapping(value):
        return {str(key): _plain(item) for key, item in value.items()}
    if _is_list(value):
        return [_plain(item) for item in value]
    for python_type in (bool, int, float, str):
        if isinstance(value, python_type):
            return python_type(value)
    return value


def slug(name: str) -> str:
    """The unit-name form of a public name: lowercase, runs of other characters become '-'."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _name_problem(value: str) -> tuple[str, str] | None:
    """What is wrong with a public name or alias, and how to fix it; None when it is fine."""
    if not value:
        return "the name is empty", "give it a public name such as qwen-coder"
    if len(value) > 128:
        return f"{value[:40]!r}... is longer than 128 characters", "use a shorter name"
    if not NAME_PATTERN.fullmatch(value):
        return f"{value!r} has characters the gateway cannot route", NAME_FIX
    return None


# ---------------------------------------------------------------------------------------------------------
# Settings blocks: one rule per known key (default, check, fix)

Check = Callable[[object], list[tuple[str, str]]]  # value -> [(field suffix, what is wrong)]


@dataclass(frozen=True)
class Rule:
    default: object
    check: Check
    fix: str
    normalise: Callable[[object], object] = _plain


def _positive_int(value: object) -> list[tuple[str, str]]:
    if _is_int(value) and value > 0:
        return []
    return [("", f"{_show(value)} is not a positive integer")]


def _int_at_least(minimum: int) -> Check:
    def check(value: object) -> list[tuple[str, str]]:
        if _is_int(value) and value >= minimum:
            return []
        return [("", f"{_show(value)} is not an integer of {minimum} or more")]

    return check


def _fraction(value: object) -> list[tuple[str, str]]:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 1:
        return []
    return [("", f"{_show(value)} is not a number greater than 0 and at most 1")]


def _one_of(label: str, choices: tuple[str, ...]) -> Check:
    def check(value: object) -> list[tuple[str, str]]:
        if isinstance(value, str) and value in choices:
            return []
        return [("", f"{_show(value)} is not a known {label}")]

    return check


def _string(value: object) -> list[tuple[str, str]]:
    return [] if isinstance(value, str) else [("", f"expected a string, got {_kind(value)}")]


def _absolute_path(value: object) -> list[tuple[str, str]]:
    if isinstance(value, str) and posixpath.isabs(value):
        return []
    if isinstance(value, str):
        return [("", f"{value!r} is not an absolute path")]
    return [("", f"expected a string, got {_kind(value)}")]


def _strings(value: object) -> list[tuple[str, str]]:
    if not _is_list(value):
        return [("", f"expected a list of strings, got {_kind(value)}")]
    return [
        (f"[{index}]", f"expected a string, got {_kind(item)}")
        for index, item in enumerate(value)
        if not isinstance(item, str)
    ]


def _nullable(check: Check) -> Check:
    return lambda value: [] if value is None else check(value)


def _url(value: object) -> list[tuple[str, str]]:
    if isinstance(value, str) and re.match(r"(https?|file)://[^\s]+$", value):
        return []
    return [("", f"{_show(value)} is not an http(s):// or file:// URL")]


def _checksum(value: object) -> list[tuple[str, str]]:
    if isinstance(value, str) and re.fullmatch(r"sha256:[0-9a-fA-F]{64}", value):
        return []
    return [("", f"{_show(value)} is not a sha256 checksum")]


MODEL_SRC = Rule(
    None, _nullable(_absolute_path), "use the absolute path of the model on the controller to copy it, or null"
)
EXTRA_ARGS = Rule([], _strings, "write extra_args as a list of strings, such as ['--enforce-eager']")
SETTINGS: dict[str, dict[str, Rule]] = {
    "vllm": {
        "quantization": Rule(
            None,
            _nullable(_one_of("quantization", QUANTIZATIONS)),
            "use one of " + ", ".join(QUANTIZATIONS) + ", or null",
        ),
        "max_model_len": Rule(
            None, _nullable(_positive_int), "set the context length in tokens, such as 8192, or null"
        ),
        "gpu_memory_utilization": Rule(
            0.9, _fraction, "use the share of GPU memory vLLM may take, such as 0.85", float
        ),
        "tensor_parallel_size": Rule(1, _positive_int, "set the number of GPUs to shard the model over"),
        "max_num_seqs": Rule(None, _nullable(_positive_int), "set a whole number greater than 0, or null"),
        "download_dir": Rule(None, _nullable(_absolute_path), "use an absolute directory path, or null"),
        "model_src": MODEL_SRC,
        "extra_args": EXTRA_ARGS,
    },
    "llamacpp": {
        "flavor": Rule(
            "python",
            _one_of("flavor", ("native", "python")),
            "use python (llama-cpp-python) or native (llama-server)",
        ),
        "n_ctx": Rule(4096, _positive_int, "set the context length in tokens, such as 4096"),
        "n_gpu_layers": Rule(0, _int_at_least(-1), "use -1 to offload every layer, 0 for CPU only, or a layer count"),
        "threads": Rule(None, _nullable(_positive_int), "set a thread count greater than 0, or null"),
        "parallel": Rule(1, _positive_int, "set the number of parallel request slots, such as 1"),
        "model_src": MODEL_SRC,
        "model_url": Rule(None, _nullable(_url), "use an http(s):// or file:// URL of the GGUF file, or null"),
        "model_checksum": Rule(
            None, _nullable(_checksum), "use 'sha256:' followed by the file's 64 hex digits, or null"
        ),
        "extra_args": EXTRA_ARGS,
    },
    "ollama": {
        "keep_alive": Rule(None, _nullable(_string), "use a duration string such as '5m' or '-1', or null"),
    },
}


# ---------------------------------------------------------------------------------------------------------
# What the checks gather


@dataclass
class _Gateway:
    port: int | None
    hosts: list[str]


@dataclass
class _Backend:
    enabled: bool = True
    port: int | None = None


@dataclass
class _Model:
    index: int
    where: str
    name: str | None = None  # any non-empty string: it still resolves references
    name_ok: bool = False  # the name is routable and not taken by an earlier model
    backend: str | None = None  # a known backend
    model: str | None = None
    model_file: str | None = None
    port: int | None = None
    aliases: list[tuple[int, str]] = field(default_factory=list)
    fallbacks: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    hosts: list[str] = field(default_factory=list)
    settings: dict = field(default_factory=dict)

    @property
    def service(self) -> str:
        if self.backend == "ollama":
            return "ollama"
        return f"{self.backend}-{slug(self.name or '')}"


@dataclass
class _Service:
    key: str
    backend: str
    where: str
    port: int | None
    hosts: list[str]
    models: list[_Model]

    @property
    def unit(self) -> str:
        return f"llm-{self.key}.service"


class _Checker:
    """Collects problems while the catalog is read."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, where: str, field_name: str, what: str, fix: str) -> None:
        location = f"{where}.{field_name}" if field_name else where
        self.problems.append(f"{location}: {what}; {fix}")

    def unknown_fields(self, where: str, mapping: Mapping, known: tuple[str, ...]) -> None:
        for key in mapping:
            if key in known:
                continue
            close = difflib.get_close_matches(key, known, n=1) if isinstance(key, str) else []
            fix = f"did you mean {close[0]!r}?" if close else "remove it or use one of: " + ", ".join(known)
            self.problems.append(f"{where}: unknown field {_show(key)}; {fix}")

    def mapping(self, where: str, field_name: str, value: object, fix: str) -> bool:
        if _is_mapping(value):
            return True
        self.add(where, field_name, f"expected a mapping, got {_kind(value)}", fix)
        return False

    def port(self, where: str, field_name: str, value: object) -> int | None:
        if not _is_int(value):
            self.add(where, field_name, f"{_show(value)} is not an integer", PORT_FIX)
        elif not 1 <= value <= 65535:
            self.add(where, field_name, f"{value} is outside 1-65535", PORT_FIX)
        else:
            return int(value)
        return None

    def string(self, where: str, field_name: str, value: object, fix: str) -> str | None:
        if not isinstance(value, str):
            self.add(where, field_name, f"expected a string, got {_kind(value)}", fix)
        elif not value.strip():
            self.add(where, field_name, "the value is empty", fix)
        else:
            return str(value)
        return None

    def strings(self, where: str, field_name: str, value: object, fix: str) -> list[tuple[int, str]]:
        """The (index, string) items of a list of strings, reporting the rest."""
        problems = _strings(value)
        for suffix, what in problems:
            self.add(where, field_name + suffix, what, fix)
        if not _is_list(value):
            return []
        return [(index, str(item)) for index, item in enumerate(value) if isinstance(item, str)]

    def hosts(self, where: str, raw: Mapping, play_hosts: list[str] | None) -> list[str]:
        """The hosts a service runs on: the 'hosts' field, or every host of the play."""
        if "hosts" not in raw:
            return list(play_hosts or [])
        fix = "use an inventory hostname"
        items = self.strings(where, "hosts", raw["hosts"], fix)
        if _is_list(raw["hosts"]) and not raw["hosts"]:
            self.add(where, "hosts", "the list is empty", "leave hosts out to use every host, or name some")
        hosts: list[str] = []
        for index, host in items:
            if play_hosts is not None and host not in play_hosts:
                known = ", ".join(play_hosts)
                self.add(where, f"hosts[{index}]", f"{host!r} is not among the play's hosts ({known})", fix)
            elif host in hosts:
                self.add(where, f"hosts[{index}]", f"{host!r} is listed twice", "list each host once")
            else:
                hosts.append(host)
        return hosts

    def settings(self, where: str, block: str, raw: object) -> dict:
        """A backend settings block, with defaults filled in."""
        rules = SETTINGS[block]
        settings = {key: _plain(rule.default) for key, rule in rules.items()}
        if not self.mapping(where, block, raw, f"write {block} settings as a mapping, or leave them out"):
            return settings
        self.unknown_fields(f"{where}.{block}", raw, tuple(rules))
        for key, value in raw.items():
            rule = rules.get(key)
            if rule is None:
                continue
            problems = rule.check(value)
            for suffix, what in problems:
                self.add(where, f"{block}.{key}{suffix}", what, rule.fix)
            if not problems:
                settings[key] = rule.normalise(value)
        return settings


# ---------------------------------------------------------------------------------------------------------
# Sections of the catalog


def _play_hosts(check: _Checker, hosts: object) -> list[str] | None:
    """The hosts passed to the filter, once each; None when they are unusable."""
    where, fix = "plan(hosts)", "pass the inventory hostnames, such as groups['llm_hosts']"
    if not _is_list(hosts):
        check.add(where, "", f"expected a list of hostnames, got {_kind(hosts)}", fix)
        return None
    if not hosts:
        check.add(where, "", "the list of hosts is empty", "put at least one host in the group you pass")
        return None
    for index, host in enumerate(hosts):
        if not isinstance(host, str):
            check.add(f"{where}[{index}]", "", f"expected a hostname, got {_kind(host)}", fix)
    return list(dict.fromkeys(str(host) for host in hosts if isinstance(host, str)))


def _gateway(check: _Checker, catalog: Mapping, play_hosts: list[str] | None) -> _Gateway:
    raw = catalog.get("gateway", {})
    if not check.mapping(CATALOG, "gateway", raw, "write gateway as a mapping, such as {port: 4000}"):
        return _Gateway(port=None, hosts=[])
    check.unknown_fields("gateway", raw, GATEWAY_FIELDS)
    port = check.port("gateway", "port", raw.get("port", DEFAULT_GATEWAY_PORT))
    return _Gateway(port=port, hosts=check.hosts("gateway", raw, play_hosts))


def _backends(check: _Checker, catalog: Mapping) -> dict[str, _Backend]:
    backends = {name: _Backend() for name in BACKENDS}
    backends["ollama"].port = DEFAULT_OLLAMA_PORT
    raw = catalog.get("backends", {})
    if not check.mapping(CATALOG, "backends", raw, "write backends as a mapping, such as {vllm: {}}"):
        return backends
    check.unknown_fields("backends", raw, BACKENDS)
    for name in BACKENDS:
        if name in raw:
            _backend(check, name, raw[name], backends[name])
    return backends


def _backend(check: _Checker, name: str, raw: object, backend: _Backend) -> None:
    if not check.mapping("backends", name, raw, f"write {name} as a mapping, such as {{enabled: true}}"):
        return
    where = f"backends.{name}"
    check.unknown_fields(where, raw, BACKEND_FIELDS[name])
    enabled = raw.get("enabled", True)
    if isinstance(enabled, bool):
        backend.enabled = enabled
    else:
        check.add(where, "enabled", f"{_show(enabled)} is not a boolean", "use true or false")
    if "port" in raw:
        backend.port = check.port(where, "port", raw["port"])


def _models(
    check: _Checker, catalog: Mapping, backends: dict[str, _Backend], play_hosts: list[str] | None
) -> list[_Model]:
    if "models" not in catalog:
        check.add(CATALOG, "models", "required", "list at least one model under models")
        return []
    raw = catalog["models"]
    if not _is_list(raw):
        check.add(CATALOG, "models", f"expected a list, got {_kind(raw)}", "write models as a list")
        return []
    if not raw:
        check.add(CATALOG, "models", "the list is empty", "list at least one model under models")
    models = [_model(check, index, entry, backends, play_hosts) for index, entry in enumerate(raw)]
    return [model for model in models if model is not None]


def _model(
    check: _Checker, index: int, raw: object, backends: dict[str, _Backend], play_hosts: list[str] | None
) -> _Model | None:
    if not check.mapping(f"models[{index}]", "", raw, "write each model as a mapping with name and backend"):
        return None
    model = _Model(index=index, where=_model_where(index, raw.get("name")))
    check.unknown_fields(model.where, raw, MODEL_FIELDS)
    _model_name(check, model, raw)
    _model_backend(check, model, raw, backends)
    _model_source(check, model, raw)
    _model_port(check, model, raw)
    _model_references(check, model, raw)
    model.hosts = check.hosts(model.where, raw, play_hosts)
    _model_settings(check, model, raw)
    return model


def _model_where(index: int, name: object) -> str:
    if isinstance(name, str) and name and name.isprintable():
        return f"models[{index}] ({name})"
    return f"models[{index}]"


def _model_name(check: _Checker, model: _Model, raw: Mapping) -> None:
    fix = "give the model a public name such as qwen-coder"
    if "name" not in raw:
        check.add(model.where, "name", "required", fix)
        return
    name = raw["name"]
    if not isinstance(name, str):
        check.add(model.where, "name", f"expected a string, got {_kind(name)}", fix)
        return
    if name:
        model.name = str(name)
    problem = _name_problem(name)
    if problem:
        check.add(model.where, "name", *problem)
    else:
        model.name_ok = True


def _model_backend(check: _Checker, model: _Model, raw: Mapping, backends: dict[str, _Backend]) -> None:
    if "backend" not in raw:
        check.add(model.where, "backend", "required", ALL_BACKENDS_FIX)
        return
    backend = raw["backend"]
    if not isinstance(backend, str):
        check.add(model.where, "backend", f"expected a string, got {_kind(backend)}", ALL_BACKENDS_FIX)
    elif backend not in BACKENDS:
        check.add(model.where, "backend", f"unknown backend {backend!r}", ALL_BACKENDS_FIX)
    else:
        model.backend = str(backend)
        if not backends[backend].enabled:
            what = f"backend {backend!r} is disabled (backends.{backend}.enabled: false)"
            what += " but this model needs it"
            check.add(model.where, "backend", what, "enable the backend or remove the model")


def _model_source(check: _Checker, model: _Model, raw: Mapping) -> None:
    """model (vllm, ollama) or model_file (llamacpp): required by its backend, refused by the others."""
    wanted = SOURCE_FIELD.get(model.backend or "")
    for field_name in ("model", "model_file"):
        if field_name not in raw:
            if field_name == wanted:
                what = f"required for backend {model.backend}"
                check.add(model.where, field_name, what, SOURCE_FIX[model.backend])
            continue
        if wanted and field_name != wanted:
            what = f"not used by backend {model.backend}"
            check.add(model.where, field_name, what, f"remove it and set {wanted} instead")
            continue
        fix = SOURCE_FIX.get(model.backend or "", "set the model to serve")
        value = check.string(model.where, field_name, raw[field_name], fix)
        if field_name == "model_file" and value is not None and not posixpath.isabs(value):
            check.add(model.where, field_name, f"{value!r} is not an absolute path", SOURCE_FIX["llamacpp"])
            value = None
        setattr(model, field_name, value)


def _model_port(check: _Checker, model: _Model, raw: Mapping) -> None:
    """vllm and llamacpp models each need their own port; ollama models share backends.ollama.port."""
    if model.backend == "ollama":
        if "port" in raw:
            what = "not used by backend ollama (every ollama model is served on backends.ollama.port)"
            check.add(model.where, "port", what, "remove it")
        return
    if "port" in raw:
        model.port = check.port(model.where, "port", raw["port"])
    elif model.backend:
        what = f"required for backend {model.backend}"
        check.add(model.where, "port", what, "give the model its own free TCP port, such as 8001")


def _model_references(check: _Checker, model: _Model, raw: Mapping) -> None:
    """aliases and the fallback lists: lists of public names (resolved once every model is read)."""
    fix = "write aliases as a list of extra public names, such as [qwen-math]"
    for index, alias in check.strings(model.where, "aliases", raw.get("aliases", []), fix):
        problem = _name_problem(alias)
        if problem:
            check.add(model.where, f"aliases[{index}]", *problem)
        else:
            model.aliases.append((index, alias))
    for field_name in FALLBACK_FIELDS:
        fix = f"write {field_name} as a list of public names, such as [qwen-coder-ollama]"
        model.fallbacks[field_name] = check.strings(model.where, field_name, raw.get(field_name, []), fix)


def _model_settings(check: _Checker, model: _Model, raw: Mapping) -> None:
    """The settings block named after the model's backend; a block for another backend is refused."""
    for block in BACKENDS:
        if block not in raw:
            continue
        if model.backend and block != model.backend:
            what = f"settings for backend {block}, but this model uses backend {model.backend}"
            check.add(model.where, block, what, f"rename the block to {model.backend} or remove it")
            continue
        settings = check.settings(model.where, block, raw[block])
        if block == model.backend:
            model.settings = settings
    if model.backend and model.backend not in raw:
        model.settings = check.settings(model.where, model.backend, {})
    if model.settings.get("model_url") and not model.settings.get("model_checksum"):
        what = "a model downloaded without a checksum could be anything"
        check.add(model.where, f"{model.backend}.model_checksum", what, "set 'sha256:' and the file's 64 hex digits")


# ---------------------------------------------------------------------------------------------------------
# Checks across models: public names, unit names, fallbacks, ports


def _public_names(check: _Checker, models: list[_Model]) -> dict[str, _Model]:
    """Every name, then every alias, with the model it belongs to; a second claim is a problem."""
    owners: dict[str, tuple[_Model, str]] = {}
    fix = "give each model and alias a unique name"
    for model in models:
        if model.name is None:
            continue
        if model.name in owners:
            check.add(model.where, "name", _taken(model.name, *owners[model.name]), fix)
            model.name_ok = False
        else:
            owners[model.name] = (model, "name")
    for model in models:
        for index, alias in model.aliases:
            if alias in owners:
                check.add(model.where, f"aliases[{index}]", _taken(alias, *owners[alias]), fix)
            else:
                owners[alias] = (model, "alias")
    return {public: owner for public, (owner, _) in owners.items()}


def _taken(public: str, owner: _Model, kind: str) -> str:
    if kind == "name":
        return f"{public!r} is already the public name of models[{owner.index}]"
    return f"{public!r} is already an alias of {owner.where}"


def _unit_names(check: _Checker, models: list[_Model]) -> None:
    """Models with their own service need unit names that differ after slugging."""
    units: dict[str, _Model] = {}
    for model in models:
        if not model.name_ok or model.backend not in OWN_SERVICE_BACKENDS:
            continue
        unit = f"llm-{model.service}.service"
        if unit in units:
            what = f"{model.name!r} gives the unit name {unit}, already used by {units[unit].where}"
            check.add(model.where, "name", what, "choose a name that differs in more than case or punctuation")
        else:
            units[unit] = model


def _fallbacks(check: _Checker, models: list[_Model], owners: dict[str, _Model]) -> None:
    """Each fallback must name a model or alias; no chain may come back to where it started."""
    by_index = {model.index: model for model in models}
    for field_name in FALLBACK_FIELDS:
        edges = {model.index: _fallback_targets(check, model, field_name, owners) for model in models}
        for loop in _loops(edges):
            chain = " -> ".join(by_index[index].name or "?" for index in loop)
            what = f"fallback chain loops {chain}"
            check.add(by_index[loop[0]].where, field_name, what, "remove one of these fallbacks")


def _fallback_targets(check: _Checker, model: _Model, field_name: str, owners: dict) -> list[int]:
    targets: dict[int, None] = {}
    seen: dict[str, int] = {}
    for index, public in model.fallbacks[field_name]:
        location = f"{field_name}[{index}]"
        if public in seen:
            what = f"{public!r} is already listed at {field_name}[{seen[public]}]"
            check.add(model.where, location, what, "list each fallback once")
        elif public not in owners:
            what = f"{public!r} is not a model name or alias in the catalog"
            check.add(model.where, location, what, "name a model declared under models")
        else:
            targets[owners[public].index] = None
        seen.setdefault(public, index)
    return list(targets)


def _loops(edges: dict[int, list[int]]) -> list[list[int]]:
    """Every simple cycle once, each starting (and ending) at its lowest model index."""
    loops: list[list[int]] = []
    for start in sorted(edges):
        reaching = _reaching(edges, start)
        _walk(edges, start, [start], reaching, loops)
        if len(loops) >= MAX_REPORTED_LOOPS:
            break
    return loops[:MAX_REPORTED_LOOPS]


def _reaching(edges: dict[int, list[int]], start: int) -> set[int]:
    """Nodes not below start from which start can be reached through nodes not below start."""
    reaching, todo = {start}, [start]
    while todo:
        node = todo.pop()
        for source, targets in edges.items():
            if source > start and source not in reaching and node in targets:
                reaching.add(source)
                todo.append(source)
    return reaching


def _walk(edges: dict[int, list[int]], start: int, path: list[int], reaching: set[int], loops: list) -> None:
    for target in edges.get(path[-1], []):
        if len(loops) >= MAX_REPORTED_LOOPS:
            return
        if target == start:
            loops.append([*path, start])
        elif target in reaching and target not in path:
            _walk(edges, start, [*path, target], reaching, loops)


def _services(
    models: list[_Model], backends: dict[str, _Backend], gateway: _Gateway, play_hosts: list[str] | None
) -> list[_Service]:
    """Services in start order: one per vllm or llamacpp model, then ollama, then the gateway."""
    services = [
        _Service(model.service, model.backend, model.where, model.port, model.hosts, [model])
        for model in models
        if model.backend in OWN_SERVICE_BACKENDS and model.name_ok
    ]
    ollama_models = [model for model in models if model.backend == "ollama"]
    if ollama_models and backends["ollama"].enabled:
        hosts = [host for host in play_hosts or [] if any(host in model.hosts for model in ollama_models)]
        services.append(_Service("ollama", "ollama", "backends.ollama", backends["ollama"].port, hosts, ollama_models))
    services.append(_Service("litellm", "litellm", "gateway", gateway.port, gateway.hosts, models))
    return services


def _ports(check: _Checker, services: list[_Service], play_hosts: list[str] | None) -> None:
    """No two services on one host may share a port; the later one (in start order) is reported."""
    clashes: dict[tuple[int, int], list[str]] = {}
    for host in play_hosts or []:
        used: dict[int, int] = {}
        for position, service in enumerate(services):
            if service.port is None or host not in service.hosts:
                continue
            if service.port in used:
                clashes.setdefault((position, used[service.port]), []).append(host)
            else:
                used[service.port] = position
    for (later, earlier), hosts in sorted(clashes.items()):
        service = services[later]
        on = f"host {hosts[0]}" if len(hosts) == 1 else "hosts " + ", ".join(hosts)
        what = f"{service.port} on {on} is already used by {services[earlier].where}"
        check.add(service.where, "port", what, "give each service its own port")


# ---------------------------------------------------------------------------------------------------------
# Routes


def _routes(check: _Checker, catalog: Mapping, owners: dict[str, _Model]) -> list[tuple[str, _Model]]:
    raw = catalog.get("routes", [])
    if not _is_list(raw):
        check.add(CATALOG, "routes", f"expected a list, got {_kind(raw)}", "write routes as a list")
        return []
    routes: list[tuple[str, _Model]] = []
    patterns: dict[str, int] = {}
    for index, entry in enumerate(raw):
        route = _route(check, index, entry, owners, patterns)
        if route:
            routes.append(route)
    return routes


def _route(
    check: _Checker, index: int, raw: object, owners: dict[str, _Model], patterns: dict[str, int]
) -> tuple[str, _Model] | None:
    where = f"routes[{index}]"
    if not check.mapping(where, "", raw, "write each route as {pattern: 'vendor/*', model: <model name>}"):
        return None
    check.unknown_fields(where, raw, ROUTE_FIELDS)
    pattern = _route_pattern(check, index, raw, patterns)
    target = None
    fix = "name a model declared under models"
    if "model" not in raw:
        check.add(where, "model", "required", fix)
    else:
        public = check.string(where, "model", raw["model"], fix)
        target = owners.get(public) if public is not None else None
        if public is not None and target is None:
            check.add(where, "model", f"{public!r} is not a model name or alias in the catalog", fix)
    if pattern is None or target is None:
        return None
    return pattern, target


def _route_pattern(check: _Checker, index: int, raw: Mapping, patterns: dict[str, int]) -> str | None:
    where = f"routes[{index}]"
    fix = "use a wildcard pattern such as 'meta-llama/*'"
    if "pattern" not in raw:
        check.add(where, "pattern", "required", fix)
        return None
    pattern = check.string(where, "pattern", raw["pattern"], fix)
    if pattern is None:
        return None
    if "*" not in pattern:
        what = f"{pattern!r} has no '*'"
        check.add(where, "pattern", what, fix + ", or add the exact name as an alias of the model")
        return None
    if pattern in patterns:
        what = f"{pattern!r} is already routed by routes[{patterns[pattern]}]"
        check.add(where, "pattern", what, "keep one route per pattern")
        return None
    patterns[pattern] = index
    return pattern


# ---------------------------------------------------------------------------------------------------------
# The plan


def _served_names(models: list[_Model]) -> list[str]:
    return [public for model in models for public in [model.name, *(alias for _, alias in model.aliases)]]


def _plan_model(model: _Model) -> dict:
    return {
        "name": model.name,
        "backend": model.backend,
        "aliases": [alias for _, alias in model.aliases],
        "fallbacks": [public for _, public in model.fallbacks["fallbacks"]],
        "context_window_fallbacks": [public for _, public in model.fallbacks["context_window_fallbacks"]],
        "hosts": list(model.hosts),
        "service": model.service,
        "model": model.model,
        "model_file": model.model_file,
        "settings": model.settings,
    }


def _plan_service(service: _Service) -> dict:
    return {
        "key": service.key,
        "backend": service.backend,
        "unit": service.unit,
        "port": service.port,
        "hosts": list(service.hosts),
        "models": [model.name for model in service.models],
        "served_names": _served_names(service.models),
    }


def _assemble(
    models: list[_Model], services: list[_Service], routes: list[tuple[str, _Model]], play_hosts: list[str]
) -> dict:
    plan_models = [_plan_model(model) for model in models]
    return {
        "models": plan_models,
        "services": {service.key: _plan_service(service) for service in services},
        "hosts": {
            host: {"services": [service.key for service in services if host in service.hosts]} for host in play_hosts
        },
        "public_names": sorted(_served_names(models)),
        "fallbacks": {model["name"]: model["fallbacks"] for model in plan_models if model["fallbacks"]},
        "routes": [{"pattern": pattern, "model": target.name, "service": target.service} for pattern, target in routes],
    }


def build_plan(catalog: dict, hosts: list[str]) -> dict:
    """Check ``catalog`` against ``hosts`` (the play's inventory hostnames) and return the plan.

    Raises CatalogError listing every problem when the catalog is invalid.
    """
    check = _Checker()
    play_hosts = _play_hosts(check, hosts)
    if not _is_mapping(catalog):
        what = f"expected a mapping, got {_kind(catalog)}"
        check.add(CATALOG, "", what, "define models (and optionally gateway, backends, routes) under it")
        raise CatalogError(check.problems)
    check.unknown_fields(CATALOG, catalog, TOP_FIELDS)
    gateway = _gateway(check, catalog, play_hosts)
    backends = _backends(check, catalog)
    models = _models(check, catalog, backends, play_hosts)
    owners = _public_names(check, models)
    _unit_names(check, models)
    _fallbacks(check, models, owners)
    services = _services(models, backends, gateway, play_hosts)
    _ports(check, services, play_hosts)
    routes = _routes(check, catalog, owners)
    if check.problems:
        raise CatalogError(check.problems)
    return _assemble(models, services, routes, play_hosts or [])
