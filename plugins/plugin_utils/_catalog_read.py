# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading the catalog's sections (gateway, backends, models) into what the later checks need."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field

from ansible_collections.labai.llm_stack.plugins.plugin_utils._checker import CATALOG, Checker
from ansible_collections.labai.llm_stack.plugins.plugin_utils._values import (
    below_top_level,
    ip_address,
    is_int,
    is_list,
    is_mapping,
    kind,
    name_problem,
    show,
    slug,
)
from ansible_collections.labai.llm_stack.plugins.plugin_utils.backends import (
    BACKENDS,
    DEFAULT_BIND,
    GATEWAY,
    Backend,
    own_flag_problems,
)

FALLBACK_FIELDS = ("fallbacks", "context_window_fallbacks")
TOP_FIELDS = ("backends", "gateway", "models", "routes")
GATEWAY_FIELDS = ("bind", "hosts", "port", "ready_timeout", "redis_host", "tls")
# Controller paths of the gateway's PEM files (Ansible Vault encrypted or not); ca_certificate is optional.
TLS_FIELDS = ("certificate", "private_key", "ca_certificate")
TLS_REQUIRED = ("certificate", "private_key")
MODEL_FIELDS = (
    "aliases",
    "backend",
    "bind",
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
ALL_BACKENDS_FIX = "use one of " + ", ".join(BACKENDS)
BIND_FIX = (
    "use an IP address of the host: 127.0.0.1, a private address, 0.0.0.0 for every interface, "
    "or llm_stack_address for each host's own address"
)
TIMEOUT_FIX = "set the seconds a server may take to be ready after a (re)start, such as 600"


@dataclass
class Listener:
    """Where a service listens, and which catalog field said so."""

    bind: str
    field: str  # e.g. backends.vllm.bind, models[0] (qwen-coder).bind, or the default's location
    checked: bool = True  # False when the catalog's value was refused: nothing more is said about it


@dataclass
class GatewayEntry:
    port: int | None
    hosts: list[str]
    listener: Listener
    ready_timeout: int
    redis_host: str | None = None  # where the gateways' shared Redis runs; None: the first gateway host
    tls: dict[str, str] = field(default_factory=dict)  # TLS_FIELDS given, as controller paths; empty: plain HTTP


@dataclass
class BackendEntry:
    enabled: bool = True
    port: int | None = None
    listener: Listener | None = None
    ready_timeout: int = 0
    trusted_network: bool = False  # for a backend without authentication: the operator trusts its network


@dataclass
class ModelEntry:
    index: int
    where: str
    name: str | None = None  # any non-empty string: it still resolves references
    name_ok: bool = False  # the name is routable and not taken by an earlier model
    backend: str | None = None  # a known backend
    model: str | None = None
    model_file: str | None = None
    port: int | None = None
    bind: str | None = None  # the model's own bind, overriding its backend's
    bind_refused: bool = False
    aliases: list[tuple[int, str]] = field(default_factory=list)
    fallbacks: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    hosts: list[str] = field(default_factory=list)
    settings: dict = field(default_factory=dict)

    @property
    def service(self) -> str:
        if self.backend and not BACKENDS[self.backend].per_model:
            return self.backend
        return f"{self.backend}-{slug(self.name or '')}"

    @property
    def public_names(self) -> list[str]:
        return [self.name or "", *(alias for _, alias in self.aliases)]


def play_hosts(check: Checker, hosts: object) -> list[str] | None:
    """The hosts passed to the filter, once each; None when they are unusable."""
    where, fix = "plan(hosts)", "pass the inventory hostnames, such as groups['llm_hosts']"
    if not is_list(hosts):
        check.add(where, "", f"expected a list of hostnames, got {kind(hosts)}", fix)
        return None
    if not hosts:
        check.add(where, "", "the list of hosts is empty", "put at least one host in the group you pass")
        return None
    for index, host in enumerate(hosts):
        if not isinstance(host, str):
            check.add(f"{where}[{index}]", "", f"expected a hostname, got {kind(host)}", fix)
    return list(dict.fromkeys(str(host) for host in hosts if isinstance(host, str)))


def gateway(check: Checker, catalog: Mapping, play_hosts: list[str] | None) -> GatewayEntry:
    raw = catalog.get("gateway", {})
    default = GatewayEntry(None, [], Listener(DEFAULT_BIND, "gateway.bind"), GATEWAY.ready_timeout)
    if not check.mapping(CATALOG, "gateway", raw, "write gateway as a mapping, such as {port: 4000}"):
        return default
    check.unknown_fields("gateway", raw, GATEWAY_FIELDS)
    default.port = check.port("gateway", "port", raw.get("port", GATEWAY.default_port))
    default.hosts = check.hosts("gateway", raw, play_hosts)
    default.listener = _listener(check, "gateway", raw, default.listener)
    default.ready_timeout = _ready_timeout(check, "gateway", raw, GATEWAY.ready_timeout)
    default.redis_host = _redis_host(check, raw, play_hosts)
    default.tls = _tls(check, raw)
    return default


def _tls(check: Checker, raw: Mapping) -> dict[str, str]:
    """The gateway's certificate, key and optional CA: absolute controller paths, each a PEM file."""
    if "tls" not in raw:
        return {}
    fix = "write tls as {certificate: /path/gateway.crt, private_key: /path/gateway.key}, paths on the controller"
    if not check.mapping("gateway", "tls", raw["tls"], fix):
        return {}
    tls = raw["tls"]
    check.unknown_fields("gateway.tls", tls, TLS_FIELDS)
    found = {}
    for name in TLS_FIELDS:
        if name not in tls:
            if name in TLS_REQUIRED:
                check.add("gateway.tls", name, "is missing", f"give the controller path of the gateway's {name} (PEM)")
            continue
        path_fix = f"give the absolute controller path of the PEM file, such as /etc/llm-stack/gateway-{name}.pem"
        path = check.string("gateway.tls", name, tls[name], path_fix)
        if path is not None and not posixpath.isabs(path):
            check.add("gateway.tls", name, f"{path!r} is not an absolute path", path_fix)
        elif path is not None:
            found[name] = path
    return found if all(name in found for name in TLS_REQUIRED) else {}


def _redis_host(check: Checker, raw: Mapping, play_hosts: list[str] | None) -> str | None:
    """The host that runs the Redis every gateway shares (cache, cooldowns, usage)."""
    if "redis_host" not in raw:
        return None
    fix = "name the inventory host that runs Redis for every gateway, or leave redis_host out"
    host = check.string("gateway", "redis_host", raw["redis_host"], fix)
    if host is not None and play_hosts is not None and host not in play_hosts:
        check.add("gateway", "redis_host", f"{host!r} is not among the play's hosts ({', '.join(play_hosts)})", fix)
        return None
    return host


def _listener(check: Checker, where: str, raw: Mapping, default: Listener) -> Listener:
    """The 'bind' field of a catalog entry, or the default it inherits."""
    if "bind" not in raw:
        return default
    for _, what in ip_address(raw["bind"]):
        check.add(where, "bind", what, BIND_FIX)
        return Listener(default.bind, f"{where}.bind", checked=False)
    return Listener(str(raw["bind"]), f"{where}.bind")


def _ready_timeout(check: Checker, where: str, raw: Mapping, default: int) -> int:
    value = raw.get("ready_timeout", default)
    if is_int(value) and value > 0:
        return int(value)
    check.add(where, "ready_timeout", f"{show(value)} is not a positive integer", TIMEOUT_FIX)
    return default


def backends(check: Checker, catalog: Mapping) -> dict[str, BackendEntry]:
    entries = {
        name: BackendEntry(
            port=backend.default_port,
            listener=Listener(DEFAULT_BIND, f"backends.{name}.bind"),
            ready_timeout=backend.ready_timeout,
        )
        for name, backend in BACKENDS.items()
    }
    raw = catalog.get("backends", {})
    if not check.mapping(CATALOG, "backends", raw, "write backends as a mapping, such as {vllm: {}}"):
        return entries
    check.unknown_fields("backends", raw, tuple(BACKENDS))
    for name in BACKENDS:
        if name in raw:
            _backend(check, name, raw[name], entries[name])
    return entries


def _backend(check: Checker, name: str, raw: object, entry: BackendEntry) -> None:
    if not check.mapping("backends", name, raw, f"write {name} as a mapping, such as {{enabled: true}}"):
        entry.listener = Listener(DEFAULT_BIND, f"backends.{name}.bind", checked=False)
        return
    where = f"backends.{name}"
    shared_port = BACKENDS[name].default_port is not None
    keyless = not BACKENDS[name].key_variable
    fields = ("bind", "enabled", "ready_timeout") + (("port",) if shared_port else ())
    fields += ("trusted_network",) if keyless else ()
    check.unknown_fields(where, raw, fields)
    entry.enabled = _flag(check, where, raw, "enabled", True)
    if keyless:
        entry.trusted_network = _flag(check, where, raw, "trusted_network", False)
    if "port" in raw and shared_port:
        entry.port = check.port(where, "port", raw["port"])
    entry.listener = _listener(check, where, raw, entry.listener)
    entry.ready_timeout = _ready_timeout(check, where, raw, entry.ready_timeout)


def _flag(check: Checker, where: str, raw: Mapping, name: str, default: bool) -> bool:
    value = raw.get(name, default)
    if isinstance(value, bool):
        return value
    check.add(where, name, f"{show(value)} is not a boolean", "use true or false")
    return default


def models(
    check: Checker, catalog: Mapping, backends: dict[str, BackendEntry], play_hosts: list[str] | None
) -> list[ModelEntry]:
    if "models" not in catalog:
        check.add(CATALOG, "models", "required", "list at least one model under models")
        return []
    raw = catalog["models"]
    if not is_list(raw):
        check.add(CATALOG, "models", f"expected a list, got {kind(raw)}", "write models as a list")
        return []
    if not raw:
        check.add(CATALOG, "models", "the list is empty", "list at least one model under models")
    models = [_model(check, index, entry, backends, play_hosts) for index, entry in enumerate(raw)]
    return [model for model in models if model is not None]


def _model(
    check: Checker, index: int, raw: object, backends: dict[str, BackendEntry], play_hosts: list[str] | None
) -> ModelEntry | None:
    if not check.mapping(f"models[{index}]", "", raw, "write each model as a mapping with name and backend"):
        return None
    model = ModelEntry(index=index, where=_model_where(index, raw.get("name")))
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


def _model_name(check: Checker, model: ModelEntry, raw: Mapping) -> None:
    fix = "give the model a public name such as qwen-coder"
    if "name" not in raw:
        check.add(model.where, "name", "required", fix)
        return
    name = raw["name"]
    if not isinstance(name, str):
        check.add(model.where, "name", f"expected a string, got {kind(name)}", fix)
        return
    if name:
        model.name = str(name)
    problem = name_problem(name)
    if problem:
        check.add(model.where, "name", *problem)
    else:
        model.name_ok = True


def _model_backend(check: Checker, model: ModelEntry, raw: Mapping, backends: dict[str, BackendEntry]) -> None:
    if "backend" not in raw:
        check.add(model.where, "backend", "required", ALL_BACKENDS_FIX)
        return
    backend = raw["backend"]
    if not isinstance(backend, str):
        check.add(model.where, "backend", f"expected a string, got {kind(backend)}", ALL_BACKENDS_FIX)
    elif backend not in BACKENDS:
        check.add(model.where, "backend", f"unknown backend {backend!r}", ALL_BACKENDS_FIX)
    else:
        model.backend = str(backend)
        if not backends[backend].enabled:
            what = f"backend {backend!r} is disabled (backends.{backend}.enabled: false)"
            what += " but this model needs it"
            check.add(model.where, "backend", what, "enable the backend or remove the model")


def _model_source(check: Checker, model: ModelEntry, raw: Mapping) -> None:
    """model (vllm, ollama) or model_file (llamacpp): required by its backend, refused by the others."""
    backend = BACKENDS.get(model.backend or "")
    wanted = backend.source_field if backend else None
    for field_name in ("model", "model_file"):
        if field_name not in raw:
            if backend and field_name == wanted:
                check.add(model.where, field_name, f"required for backend {model.backend}", backend.source_fix)
            continue
        if wanted and field_name != wanted:
            what = f"not used by backend {model.backend}"
            check.add(model.where, field_name, what, f"remove it and set {wanted} instead")
            continue
        fix = backend.source_fix if backend else "set the model to serve"
        value = check.string(model.where, field_name, raw[field_name], fix)
        if field_name == "model_file" and value is not None and not posixpath.isabs(value):
            check.add(model.where, field_name, f"{value!r} is not an absolute path", fix)
            value = None
        setattr(model, field_name, value)


def _model_port(check: Checker, model: ModelEntry, raw: Mapping) -> None:
    """A per-model backend's model needs its own port and may bind its own address; a shared server's
    models (Ollama) take both from backends.<name>."""
    backend = BACKENDS.get(model.backend or "")
    if backend and not backend.per_model:
        for field_name in ("port", "bind"):
            if field_name in raw:
                what = f"not used by backend {backend.name} (its models share backends.{backend.name}.{field_name})"
                check.add(model.where, field_name, what, f"remove it, or set backends.{backend.name}.{field_name}")
        return
    if "port" in raw:
        model.port = check.port(model.where, "port", raw["port"])
    elif model.backend:
        what = f"required for backend {model.backend}"
        check.add(model.where, "port", what, "give the model its own free TCP port, such as 8001")
    if "bind" in raw:
        problems = ip_address(raw["bind"])
        for _, what in problems:
            check.add(model.where, "bind", what, BIND_FIX)
        model.bind = None if problems else str(raw["bind"])
        model.bind_refused = bool(problems)


def _model_references(check: Checker, model: ModelEntry, raw: Mapping) -> None:
    """aliases and the fallback lists: lists of public names (resolved once every model is read)."""
    fix = "write aliases as a list of extra public names, such as [qwen-math]"
    for index, alias in check.strings(model.where, "aliases", raw.get("aliases", []), fix):
        problem = name_problem(alias)
        if problem:
            check.add(model.where, f"aliases[{index}]", *problem)
        else:
            model.aliases.append((index, alias))
    for field_name in FALLBACK_FIELDS:
        fix = f"write {field_name} as a list of public names, such as [qwen-coder-ollama]"
        model.fallbacks[field_name] = check.strings(model.where, field_name, raw.get(field_name, []), fix)


def _model_settings(check: Checker, model: ModelEntry, raw: Mapping) -> None:
    """The settings block named after the model's backend; a block for another backend is refused."""
    for block, backend in BACKENDS.items():
        if block not in raw:
            continue
        if model.backend and block != model.backend:
            what = f"settings for backend {block}, but this model uses backend {model.backend}"
            check.add(model.where, block, what, f"rename the block to {model.backend} or remove it")
            continue
        found = len(check.problems)
        settings = check.settings(model.where, block, raw[block], backend.settings)
        if len(check.problems) == found:
            for field_name, what, fix in backend.cross_check(settings):
                check.add(model.where, f"{block}.{field_name}", what, fix)
        if block == model.backend:
            model.settings = settings
            _extra_args(check, model, backend, raw[block])
    if model.backend and model.backend not in raw:
        model.settings = check.settings(model.where, model.backend, {}, BACKENDS[model.backend].settings)
    if model.settings.get("model_url") and not model.settings.get("model_checksum"):
        what = "a model downloaded without a checksum could be anything"
        check.add(model.where, f"{model.backend}.model_checksum", what, "set 'sha256:' and the file's 64 hex digits")
    _model_directory(check, model)
    _model_revision(check, model)


def _model_revision(check: Checker, model: ModelEntry) -> None:
    """vllm.revision pins what vLLM fetches from the Hugging Face Hub: a local directory has no revision."""
    if model.backend != "vllm" or not model.settings.get("revision") or not model.model:
        return
    if posixpath.isabs(model.model):
        what = (
            f"{model.model!r} is a local directory, and a revision only pins a model vLLM fetches from the "
            "Hugging Face Hub"
        )
        fix = "remove vllm.revision, or set model to the Hugging Face id, such as Qwen/Qwen2.5-Coder-7B-Instruct-AWQ"
        check.add(model.where, "vllm.revision", what, fix)


def _extra_args(check: Checker, model: ModelEntry, backend: Backend, block: object) -> None:
    """extra_args go after the flags the role sets, and the server takes the last of two: none may repeat one.
    Every string is looked at, also when others in the list were refused."""
    arguments = block.get("extra_args") if is_mapping(block) else None
    if not is_list(arguments):
        return
    strings = [argument if isinstance(argument, str) else "" for argument in arguments]
    for index, what, fix in own_flag_problems(strings, backend.own_flags(model.settings)):
        check.add(model.where, f"{backend.name}.extra_args[{index}]", what, fix)


def _model_directory(check: Checker, model: ModelEntry) -> None:
    """A directory the deploy puts a model in must be the model's own, not / or a top-level one like /srv."""
    copied = model.settings.get("model_src") or model.settings.get("model_url")
    if model.model_file and copied:
        field_name, directory = "model_file", posixpath.dirname(model.model_file)
        fix = "put the GGUF file in a directory of its own, such as /srv/models/qwen.gguf"
    elif model.backend == "vllm" and copied and model.model:
        field_name, directory = "model", model.model
        fix = "copy the model into a directory of its own, such as /srv/models/qwen"
        if not posixpath.isabs(directory):
            what = f"{directory!r} is not an absolute path, but vllm.model_src copies the model there"
            check.add(model.where, field_name, what, fix)
            return
    else:
        return
    if not below_top_level(directory):
        what = f"the model would go in {directory}, a top-level directory the deploy would take over"
        check.add(model.where, field_name, what, fix)
