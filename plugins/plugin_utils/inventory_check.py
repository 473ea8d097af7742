# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Phase 1's check of one host's inventory variables, on the controller, before any host is contacted.

``inventory_problems(variables, hosts, roles_dir, host)`` returns every problem it finds, one line each,
``<variable or location>: <what is wrong>; <how to fix it>``, as the catalog's messages read:

- the model catalog (``llm_stack_catalog``), through ``build_plan``;
- the secrets (``llm_stack_litellm_master_key`` and friends), whose values no message ever shows;
- the files the roles copy from the controller (``vllm.model_src``, ``llamacpp.model_src``) and the
  checksums of the archives the roles install from;
- every role setting (``<role>_*``) against the role's ``meta/argument_specs.yml`` and the checks the
  roles' own asserts make;
- variables the playbooks set themselves, and settings that moved into the catalog.

Only the inventory's own names are looked at (:func:`relevant_names`): Ansible's variables, the roles'
internal ``_<role>_*`` names and the facts the roles set are not.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible_collections.labai.llm_stack.plugins.plugin_utils._lock_files import lock_file_problems
from ansible_collections.labai.llm_stack.plugins.plugin_utils._tls_files import tls_file_problems
from ansible_collections.labai.llm_stack.plugins.plugin_utils._values import CONTROL as _CONTROL
from ansible_collections.labai.llm_stack.plugins.plugin_utils._values import is_int as _is_int
from ansible_collections.labai.llm_stack.plugins.plugin_utils._values import kind as _kind
from ansible_collections.labai.llm_stack.plugins.plugin_utils._values import show as _show
from ansible_collections.labai.llm_stack.plugins.plugin_utils.backends import GATEWAY
from ansible_collections.labai.llm_stack.plugins.plugin_utils.plan import CatalogError, build_plan

CATALOG = "llm_stack_catalog"
MASTER_KEY = "llm_stack_litellm_master_key"
REDIS_PASSWORD = "llm_stack_redis_password"
# The keys every server of a backend requires, with the backend's name for messages.
BACKEND_KEYS = {"llm_stack_vllm_api_key": "vLLM", "llm_stack_llamacpp_api_key": "llama.cpp"}
BACKEND_KEY_FIX = (
    "set the key in an ansible-vault file, the same for the servers and the gateways "
    """(generate one with: python3 -c "import secrets; print(secrets.token_urlsafe(32))")"""
)
# The secrets that may be left out, with how to go without one.
OPTIONAL_SECRETS = {
    "llm_stack_hf_token": "remove it to use no Hugging Face token, or set the token",
}
SECRETS = (MASTER_KEY, REDIS_PASSWORD, *BACKEND_KEYS, *OPTIONAL_SECRETS)
MASTER_KEY_MIN = 32
MASTER_KEY_CHARACTERS = re.compile(r"[A-Za-z0-9_-]*")
MASTER_KEY_FIX = (
    f"set the gateway's master key in an ansible-vault file: 'sk-' followed by at least {MASTER_KEY_MIN} "
    "characters of A-Z, a-z, 0-9, '_' and '-' "
    """(generate one with: python3 -c "import secrets; print('sk-' + secrets.token_urlsafe(32))")"""
)
REDIS_PASSWORD_MIN = 16
REDIS_PASSWORD_FIX = f"set a Redis password of {REDIS_PASSWORD_MIN} characters or more in an ansible-vault file"
WHITESPACE_FIX = "remove it (a vault block scalar keeps its last line break: write |- or a quoted string)"
CONTROL_FIX = "remove it (the value is written into a unit, env or config file)"

# Settings that moved into the catalog: the inventory variable, and where it is set now. Reported as moved
# whether or not a role still lists the name.
MOVED = {
    "llm_stack_ready_timeout": (
        "set llm_stack_catalog.backends.<backend>.ready_timeout (gateway.ready_timeout for the gateway)"
    ),
    "vllm_bind_address": "set llm_stack_catalog.backends.vllm.bind (or bind on a model)",
    "llamacpp_bind_address": "set llm_stack_catalog.backends.llamacpp.bind (or bind on a model)",
    "ollama_bind_address": "set llm_stack_catalog.backends.ollama.bind (or bind on a model)",
    "litellm_bind_address": "set llm_stack_catalog.gateway.bind",
    "vllm_ready_timeout": "set llm_stack_catalog.backends.vllm.ready_timeout",
    "llamacpp_ready_timeout": "set llm_stack_catalog.backends.llamacpp.ready_timeout",
    "ollama_ready_timeout": "set llm_stack_catalog.backends.ollama.ready_timeout",
    "litellm_ready_timeout": "set llm_stack_catalog.gateway.ready_timeout",
}

# Role variables the playbooks set from the llm_stack_* ones (an inventory value would be silently
# overridden), with what to set instead. Every <role>_defer_restart is the playbooks' too.
FROM_CATALOG = "remove it; the playbooks compute it from llm_stack_catalog"
PLAYBOOK_SET = {
    "vllm_instances": FROM_CATALOG,
    "vllm_api_key": "remove it and set llm_stack_vllm_api_key instead",
    "vllm_hf_token": "remove it and set llm_stack_hf_token instead",
    "llamacpp_instances": FROM_CATALOG,
    "llamacpp_api_key": "remove it and set llm_stack_llamacpp_api_key instead",
    "ollama_instances": FROM_CATALOG,
    "redis_password": "remove it and set llm_stack_redis_password instead",
    "redis_gateway_namespace": "remove it and set litellm_cache_namespace instead",
    "litellm_plan": FROM_CATALOG,
    "litellm_instances": FROM_CATALOG,
    "litellm_master_key": "remove it and set llm_stack_litellm_master_key instead",
    "litellm_cache_redis_password": "remove it and set llm_stack_redis_password instead",
    "litellm_cache_redis_username": "remove it and set redis_gateway_user instead",
    "litellm_cache_redis_host": "remove it and set llm_stack_catalog.gateway.redis_host instead",
    "litellm_router_shared_state": "remove it; phase 2 shares the router's state when the plan has several gateways",
    "redis_bind_address": "remove it; phase 2 binds the addresses the plan's gateways reach Redis at",
    "litellm_backend_api_keys": "remove it and set llm_stack_vllm_api_key and llm_stack_llamacpp_api_key instead",
    "nvidia_driver_required_by": FROM_CATALOG,
}
DEFER_RESTART_SUFFIX = "_defer_restart"
DEFER_RESTART_FIX = "remove it; phase 2 defers every restart to phase 3 itself"

# Facts the roles set while they run: role-prefixed, but never the inventory's.
ROLE_FACTS = frozenset({"service_account_info", "openai_ready_results", "nvidia_driver_status"})
# Settings of the phases that take one of a few words.
PHASE_CHOICES = {
    "llm_stack_prove_fallbacks": ("changed", "always", "never"),
    "llm_stack_rolling_restart": (True, False),
    "llm_stack_manage_nvidia_driver": (True, False),
}
# Settings of the phases that are a whole number of seconds, 0 or more.
PHASE_SECONDS = ("llm_stack_run_lock_wait",)
# The llm_stack_* inventory variables this check reads.
STACK_VARIABLES = (
    CATALOG,
    *SECRETS,
    *PHASE_CHOICES,
    *PHASE_SECONDS,
    *(name for name in MOVED if name.startswith("llm_stack_")),
)

CHECKSUM_PATTERN = re.compile(r"sha256:[0-9a-fA-F]{64}")
CHECKSUM_FIX = "set 'sha256:' followed by the 64 hex digits of"
SECRET_WORDS = re.compile(r"key|password|token|secret", re.IGNORECASE)
UNDEFINED_PATTERN = re.compile(r"'[A-Za-z_][A-Za-z0-9_]*' is undefined")
VAULT_ERROR = re.compile(r"^(Error rendering template: )?Attempt to use undecryptable variable: [^'\"]*$")

Problem = tuple[str, str]  # (what is wrong, how to fix it)


# ---------------------------------------------------------------------------------------------------------
# Describing values (never a secret's)


def _line(name: str, problem: Problem) -> str:
    what, fix = problem
    return f"{name}: {what}; {fix}"


# ---------------------------------------------------------------------------------------------------------
# The roles and the names that matter


def role_specs(roles_dir: Path) -> dict[str, dict[str, dict]]:
    """The options of each role's ``main`` entry point, by role, for roles with meta/argument_specs.yml."""
    specs: dict[str, dict[str, dict]] = {}
    for spec_file in sorted(Path(roles_dir).glob("*/meta/argument_specs.yml")):
        data = yaml.safe_load(spec_file.read_text(encoding="utf-8")) or {}
        options = ((data.get("argument_specs") or {}).get("main") or {}).get("options") or {}
        specs[spec_file.parent.parent.name] = dict(options)
    return specs


def _role_of(name: str, roles: Iterable[str]) -> str | None:
    """The role whose prefix the name carries (the longest one), or None."""
    matches = [role for role in roles if name.startswith(role + "_")]
    return max(matches, key=len) if matches else None


def relevant_names(names: Iterable[str], roles_dir: Path) -> list[str]:
    """The names among ``names`` this check reads: role settings and the llm_stack_* names it knows."""
    roles = list(role_specs(roles_dir))
    return sorted(
        name
        for name in names
        if isinstance(name, str) and (name in STACK_VARIABLES or (_role_of(name, roles) and name not in ROLE_FACTS))
    )


def is_secret(name: str, spec: Mapping | None = None) -> bool:
    """Whether a variable's value must never appear in a message."""
    return name in SECRETS or bool(spec and spec.get("no_log")) or bool(SECRET_WORDS.search(name))


def _unresolved_line(name: str, error: str, secret: bool) -> str:
    """The line for a variable whose template failed. For a secret, only an undefined name or a vault error
    is shown: other errors may quote the template, and with it the secret."""
    detail = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
    vault = VAULT_ERROR.match(detail)
    if vault:
        detail = detail.removeprefix(vault.group(1) or "")
        fix = "give ansible-playbook the vault password (--ask-vault-pass or --vault-password-file)"
    else:
        fix = "define what it uses or correct the expression"
    if secret and not vault:
        undefined = UNDEFINED_PATTERN.search(detail)
        detail = f"{undefined.group(0)}; the rest is not shown for a secret" if undefined else "not shown for a secret"
    detail = f" ({detail})" if detail else ""
    return f"{name}: the value cannot be templated{detail}; {fix}"


# ---------------------------------------------------------------------------------------------------------
# The catalog and the files it names on the controller


def _plan(
    variables: Mapping, hosts: list[str], host: str, problems: list[str], addresses: Mapping | None = None
) -> dict | None:
    if CATALOG not in variables:
        problems.append(
            f"{CATALOG}: not defined; declare the model catalog in the inventory's group_vars "
            "(see inventories/example/group_vars/all/catalog.yml)"
        )
        return None
    try:
        plan = build_plan(variables[CATALOG], list(hosts), addresses)
    except CatalogError as error:
        problems.extend(str(line) for line in error.problems)
        return None
    except Exception as error:  # a bug in the planner must not hide the other problems
        problems.append(
            f"{CATALOG}: the catalog could not be checked ({type(error).__name__}: {error}); "
            "report this as a bug of labai.llm_stack, with the catalog"
        )
        return None
    if host not in (plan.get("hosts") or {}):
        problems.append(
            f"{host}: not in the group llm_hosts the catalog is planned for; run the play on llm_hosts only"
        )
    return plan


def _model_src_problem(backend: str, source: str, model: Mapping) -> Problem | None:
    path = Path(source)
    if backend == "vllm":
        fix = (
            "point it at the model's Hugging Face directory on the controller, "
            f"or remove model_src to let vLLM load {model.get('model')!r} itself"
        )
        if not path.exists():
            return f"{source!r} does not exist on the controller", fix
        if not path.is_dir():
            return f"{source!r} is not a directory on the controller", fix
    else:
        fix = (
            "point it at the GGUF file on the controller, or set llamacpp.model_url with llamacpp.model_checksum, "
            "or remove model_src to use model_file on the host"
        )
        if not path.exists():
            return f"{source!r} does not exist on the controller", fix
        if path.is_dir():
            return f"{source!r} is a directory, not a file", fix
        if not path.is_file():
            return f"{source!r} is not a regular file", fix
    if not os.access(path, os.R_OK | (os.X_OK if path.is_dir() else 0)):
        return f"{source!r} cannot be read by the user running Ansible", "make it readable by that user"
    return None


def _controller_files(plan: Mapping) -> list[str]:
    problems = []
    for index, model in enumerate(plan.get("models") or []):
        backend = model.get("backend")
        source = (model.get("settings") or {}).get("model_src")
        if backend not in ("vllm", "llamacpp") or not source:
            continue
        problem = _model_src_problem(backend, str(source), model)
        if problem:
            problems.append(_line(f"models[{index}] ({model.get('name')}).{backend}.model_src", problem))
    return problems


def _checksum(variables: Mapping, name: str, needed_by: str, archive: str) -> str | None:
    fix = f"{CHECKSUM_FIX} {archive}"
    if name not in variables:
        return _line(name, (f"not set, and {needed_by}", fix))
    value = variables[name]
    if not isinstance(value, str):
        return None  # the argument spec reports the type
    if not value:
        return _line(name, (f"empty, and {needed_by}", fix))
    if not CHECKSUM_PATTERN.fullmatch(value):
        return _line(name, (f"{value!r} is not 'sha256:' followed by 64 hex digits", fix))
    return None


def _checksums(variables: Mapping, plan: Mapping, skip: Iterable[str], host: str) -> list[str]:
    """The archives this host installs from must come with their checksums."""
    here = {model for record in _records(plan, host) for model in record.get("models") or []}
    models = [model for model in plan.get("models") or [] if model.get("name") in here]
    problems = []
    if "ollama_archive_checksum" not in skip and any(model.get("backend") == "ollama" for model in models):
        needed_by = "the catalog has Ollama models (Ollama is only installed from a verified archive)"
        archive = "the archive at ollama_archive_url (the line for it in the release's sha256sum.txt)"
        problems.append(_checksum(variables, "ollama_archive_checksum", needed_by, archive))
    index_of = {model.get("name"): index for index, model in enumerate(plan.get("models") or [])}
    native = [
        f"models[{index_of[model.get('name')]}] ({model.get('name')})"
        for model in models
        if model.get("backend") == "llamacpp" and (model.get("settings") or {}).get("flavor") == "native"
    ]
    if native and "llamacpp_native_source_checksum" not in skip:
        needed_by = f"{native[0]} uses the native flavor (llama-server is only built from a verified archive)"
        archive = "the archive at llamacpp_native_source_url (sha256sum <archive>)"
        problems.append(_checksum(variables, "llamacpp_native_source_checksum", needed_by, archive))
    return [problem for problem in problems if problem]


# ---------------------------------------------------------------------------------------------------------
# Secrets: what is wrong is said, the value never


def _secret_shape(value: object, empty: str) -> Problem | None:
    if value is None or value == "":
        return empty, ""
    if not isinstance(value, str):
        return f"expected a string, got {_kind(value)}", ""
    if re.search(r"\s", value):
        return "contains whitespace or a line break", WHITESPACE_FIX
    if _CONTROL.search(value):
        return "contains a control character", CONTROL_FIX
    return None


def _master_key(variables: Mapping) -> str | None:
    if MASTER_KEY not in variables:
        return _line(MASTER_KEY, ("not set", MASTER_KEY_FIX))
    value = variables[MASTER_KEY]
    shape = _secret_shape(value, "empty")
    if shape:
        return _line(MASTER_KEY, (shape[0], shape[1] or MASTER_KEY_FIX))
    if not value.startswith("sk-"):
        return _line(MASTER_KEY, ("does not start with 'sk-' (LiteLLM wants it)", MASTER_KEY_FIX))
    if not MASTER_KEY_CHARACTERS.fullmatch(value[3:]):
        return _line(MASTER_KEY, ("holds a character other than A-Z, a-z, 0-9, '_' and '-'", MASTER_KEY_FIX))
    if len(value) - 3 < MASTER_KEY_MIN:
        return _line(MASTER_KEY, (f"fewer than {MASTER_KEY_MIN} characters after 'sk-'", MASTER_KEY_FIX))
    return None


def _cache_on(variables: Mapping) -> bool:
    return variables.get("litellm_cache", True) is not False


def _shared_redis(plan: Mapping | None) -> Mapping | None:
    """The plan's Redis when several gateways share it (their router state always lives there)."""
    redis = (plan or {}).get("redis") or {}
    return redis if len(redis.get("gateways", [])) > 1 else None


def _redis_password(variables: Mapping, shared: Mapping | None) -> str | None:
    needed = _cache_on(variables) or shared is not None
    if shared is not None:
        cache = (
            f"the gateways on {', '.join(shared['gateways'])} share their cooldowns through Redis on {shared['host']}"
        )
        fix = REDIS_PASSWORD_FIX
    else:
        cache = "the gateway's cache needs it (litellm_cache, default true)"
        fix = f"{REDIS_PASSWORD_FIX}, or set litellm_cache: false"
    if REDIS_PASSWORD not in variables:
        return _line(REDIS_PASSWORD, (f"not set, and {cache}", fix)) if needed else None
    value = variables[REDIS_PASSWORD]
    shape = _secret_shape(value, f"empty, and {cache}" if needed else "set but empty")
    if shape:
        default_fix = fix if needed else "remove it, or " + REDIS_PASSWORD_FIX
        return _line(REDIS_PASSWORD, (shape[0], shape[1] or default_fix))
    if len(value) < REDIS_PASSWORD_MIN:
        return _line(REDIS_PASSWORD, (f"shorter than {REDIS_PASSWORD_MIN} characters", REDIS_PASSWORD_FIX))
    return None


def _optional_secret(variables: Mapping, name: str) -> str | None:
    if name not in variables:
        return None
    shape = _secret_shape(variables[name], "set but empty")
    if shape:
        return _line(name, (shape[0], shape[1] or OPTIONAL_SECRETS[name]))
    return None


def _records(plan: Mapping, host: str) -> list[Mapping]:
    return list((plan.get("hosts") or {}).get(host, {}).get("services") or [])


def _backend_keys(plan: Mapping | None, host: str) -> dict[str, str]:
    """The backend keys this host needs: key variable -> why. Every vLLM and llama.cpp server requires its
    key, so the host that runs one needs it, and so does a gateway host, which sends it to every server."""
    hosts = (plan or {}).get("hosts") or {}
    gateway_here = any(record.get("backend") == GATEWAY.name for record in _records(plan or {}, host))
    # This host's own servers first: the reason given is the closest one.
    order = [host, *(other for other in hosts if other != host)]
    needed: dict[str, str] = {}
    for server_host in order:
        for record in _records(plan or {}, server_host):
            name = record.get("key_variable")
            if name not in BACKEND_KEYS:
                continue
            if server_host == host:
                backend = BACKEND_KEYS[name]
                why = f"the plan places {record['unit']} on {host}, and every {backend} server requires its key"
            elif gateway_here:
                why = f"the gateway on {host} sends it to {record['unit']} on {server_host}"
            else:
                continue
            needed.setdefault(name, why)
    return needed


def _backend_key(variables: Mapping, name: str, why: str | None) -> str | None:
    """A key this host needs (why says what needs it), or one it does not need, which may be left out."""
    if name not in variables:
        return _line(name, (f"not set, but {why}", BACKEND_KEY_FIX)) if why else None
    shape = _secret_shape(variables[name], f"empty, but {why}" if why else "set but empty")
    if shape is None:
        return None
    fix = BACKEND_KEY_FIX if why else f"{BACKEND_KEY_FIX}, or remove it"
    return _line(name, (shape[0], shape[1] or fix))


def _secrets(variables: Mapping, skip: Iterable[str], gateway_here: bool, plan: Mapping | None, host: str) -> list[str]:
    """The gateway's secrets where it runs (or wherever it may run, when the catalog gave no plan), and the
    backend keys of the servers on this host and of those its gateway sends requests to."""
    skip = set(skip)
    problems = []
    if MASTER_KEY not in skip and gateway_here:
        problems.append(_master_key(variables))
    shared = _shared_redis(plan)
    if REDIS_PASSWORD not in skip and (gateway_here or (shared is not None and shared["host"] == host)):
        problems.append(_redis_password(variables, shared))
    needed = _backend_keys(plan, host)
    problems.extend(_backend_key(variables, name, needed.get(name)) for name in BACKEND_KEYS if name not in skip)
    problems.extend(_optional_secret(variables, name) for name in OPTIONAL_SECRETS if name not in skip)
    return [problem for problem in problems if problem]


# ---------------------------------------------------------------------------------------------------------
# Role settings: the argument spec, then what the roles' asserts check


TYPE_WORDS = {
    "str": "a string",
    "path": "a path",
    "bool": "a boolean",
    "int": "an integer",
    "float": "a number",
    "list": "a list",
    "dict": "a mapping",
}
ELEMENT_WORDS = {
    "str": "strings",
    "path": "paths",
    "bool": "booleans",
    "int": "integers",
    "float": "numbers",
    "list": "lists",
    "dict": "mappings",
}


def _elements(spec: Mapping) -> str:
    """' of strings' for a list of strings; '' when the elements are not specified."""
    elements = spec.get("elements")
    return f" of {ELEMENT_WORDS.get(elements, elements)}" if elements else ""


def _expected(spec: Mapping) -> str:
    kind = spec.get("type", "str")
    words = TYPE_WORDS.get(kind, f"a {kind}")
    return words + _elements(spec) if kind == "list" else words


def _type_fix(spec: Mapping, value: object, secret: bool) -> str:
    kind = spec.get("type", "str")
    if spec.get("choices"):
        return "use one of " + ", ".join(str(choice) for choice in spec["choices"])
    if kind == "bool":
        return "use true or false, without quotes"
    if kind in ("int", "float"):
        default = spec.get("default")
        example = f" such as {default}" if _is_int(default) and default else ""
        return f"use a {'whole ' if kind == 'int' else ''}number{example}, without quotes"
    if kind == "list":
        if isinstance(value, str) and value.split() and not secret:
            items = ", ".join(repr(item) for item in value.split())
            return f"write it as a YAML list, such as [{items}]"
        return "write it as a YAML list" + _elements(spec)
    if kind == "dict":
        return "write it as a YAML mapping of names to values"
    return f"set {_expected(spec)}"


def _element_ok(kind: str | None, item: object) -> bool:
    if kind in ("str", "path"):
        return isinstance(item, (str, int, float)) and not isinstance(item, bool)
    if kind == "dict":
        return isinstance(item, Mapping)
    if kind == "int":
        return _is_int(item)
    if kind == "bool":
        return isinstance(item, bool)
    return True


def _strict_kind(spec: Mapping, value: object) -> bool:
    """Whether the value is what the role can use as is. Ansible's own conversions (a string split at
    commas into a list, 'yes' into true) give the roles' templates something else than was meant."""
    kind = spec.get("type", "str")
    if kind in ("str", "path"):
        return isinstance(value, (str, int, float)) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return _is_int(value)
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "list":
        return isinstance(value, (list, tuple)) and all(_element_ok(spec.get("elements"), item) for item in value)
    if kind == "dict":
        return isinstance(value, Mapping)
    return True


def _spec_problem(name: str, spec: Mapping, value: object) -> Problem | None:
    """The value against the option's spec: the kind first, then ArgumentSpecValidator (choices and the rest)."""
    secret = is_secret(name, spec)
    fix = _type_fix(spec, value, secret)
    if not _strict_kind(spec, value):
        if spec.get("type") == "list" and isinstance(value, (list, tuple)):
            wrong = next(index for index, item in enumerate(value) if not _element_ok(spec.get("elements"), item))
            return f"item {wrong} is {_kind(value[wrong])}, but {_expected(spec)} is expected", fix
        return f"expected {_expected(spec)}, got {_kind(value)}", fix
    option = {key: item for key, item in spec.items() if key != "default"}
    result = ArgumentSpecValidator({name: option}).validate({name: value})
    if not result.error_messages:
        return None
    if spec.get("choices"):
        shown = "the value" if secret else _show(value)
        return f"{shown} is not one of its choices", fix
    return f"does not pass the role's argument spec (expected {_expected(spec)})", fix


def _port(value: object) -> Problem | None:
    if 1 <= value <= 65535:
        return None
    return f"{value} is outside 1-65535", "use a TCP port between 1 and 65535"


def _at_least(minimum: float, meaning: str = "") -> Callable[[object], Problem | None]:
    def check(value: object) -> Problem | None:
        if value >= minimum:
            return None
        return f"{value} is less than {minimum}", f"use {minimum} or more{meaning}"

    return check


def _absolute_or_empty(value: object) -> Problem | None:
    if not value or str(value).startswith("/"):
        return None
    return f"{_show(value)} is not an absolute path", "use an absolute path on the host, or '' for the default"


def _url(value: object) -> Problem | None:
    if re.match(r"(https?|file)://\S+$", str(value)):
        return None
    return f"{_show(value)} is not an http(s):// or file:// URL", "use the archive's http(s):// or file:// URL"


def _user_name(value: object) -> Problem | None:
    if not value or re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", str(value)):
        return None
    return (
        f"{_show(value)} is not a valid Linux user name",
        "use lowercase letters, digits, '_' and '-', starting with a letter or '_', at most 32 characters",
    )


def _redis_name(value: object) -> Problem | None:
    """A Redis user or key namespace goes into an ACL rule: a glob character there would widen it."""
    if value == "default":
        return "'default' is Redis's own user, which the redis role turns off", "name another user"
    if re.fullmatch(r"[A-Za-z0-9_.-]+", str(value)):
        return None
    return f"{_show(value)} is not a Redis ACL name", "use only A-Z, a-z, 0-9, '_', '-' and '.'"


PIP_OPTIONS = {"index_url": "str", "find_links": "list", "no_index": "bool", "cert": "str"}
EXTRA_INDEX_REFUSED = (
    "refused: with a second index, pip takes a same-named package from whichever index has the higher "
    "version (dependency confusion)",
    "mirror everything on one index_url, or install torch from its own index with vllm_torch_index_url",
)


def _pip_options(value: Mapping) -> list[tuple[str, Problem]]:
    problems = []
    for key, item in value.items():
        if key == "extra_index_urls":
            problems.append((f".{key}", EXTRA_INDEX_REFUSED))
            continue
        if key not in PIP_OPTIONS:
            close = difflib.get_close_matches(str(key), PIP_OPTIONS, n=1)
            fix = f"did you mean {close[0]!r}?" if close else "use only " + ", ".join(PIP_OPTIONS)
            problems.append((f".{key}", ("not a pip option the python_venv role knows", fix)))
            continue
        spec = {"type": PIP_OPTIONS[key], "elements": "str"}
        if not _strict_kind(spec, item):
            what = f"expected {_expected(spec)}, got {_kind(item)}"
            problems.append((f".{key}", (what, _type_fix(spec, item, False))))
    return problems


ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _extra_env(value: Mapping) -> list[tuple[str, Problem]]:
    """Each line of an env file: a variable name, and a one-line value (never shown: it may be a secret)."""
    problems = []
    for key, item in value.items():
        if not isinstance(key, str) or not ENV_NAME.fullmatch(key):
            fix = "use letters, digits and '_', not starting with a digit"
            problems.append(("", (f"{_show(key)} is not an environment variable name", fix)))
        elif isinstance(item, (Mapping, list, tuple)) or item is None:
            problems.append((f".{key}", (f"expected a string or number, got {_kind(item)}", "set a one-line value")))
        elif "\n" in str(item):
            problems.append((f".{key}", ("the value has a line break", "set a one-line value")))
    return problems


# One rule per setting, on top of its spec: checks the roles' asserts and templates rely on.
VALUE_RULES: dict[str, Callable[[object], Problem | None]] = {
    "service_account_user": _user_name,
    "service_account_home": _absolute_or_empty,
    "service_account_wait_timeout": _at_least(1),
    "redis_port": _port,
    "redis_gateway_user": _redis_name,
    "litellm_cache_namespace": _redis_name,
    "litellm_cache_redis_port": _port,
    "litellm_request_timeout": _at_least(1),
    "litellm_graceful_shutdown_timeout": _at_least(0),
    "litellm_worker_healthcheck_timeout": _at_least(1),
    "litellm_upstream_keepalive_timeout": _at_least(1),
    "vllm_shutdown_timeout": _at_least(0),
    "litellm_cache_ttl": _at_least(1),
    "litellm_cache_redis_timeout": _at_least(0.1),
    "litellm_cache_redis_retry_after": _at_least(1),
    "litellm_health_check_interval": _at_least(1),
    "litellm_config_backups": _at_least(0),
    "vllm_hf_home": _absolute_or_empty,
    "vllm_cpu_kvcache_space": _at_least(1),
    "llamacpp_native_source_url": _url,
    "llamacpp_native_build_jobs": _at_least(0, " (0: one job per processor)"),
    "llamacpp_native_keep_previous": _at_least(0, " (0: only the builds the units name)"),
    "python_venv_keep_previous": _at_least(0, " (0: only the virtualenvs the units name)"),
    "ollama_keep_previous": _at_least(0, " (0: only the releases the unit names)"),
    "ollama_archive_url": _url,
    "ollama_models_dir": _absolute_or_empty,
    "ollama_num_parallel": _at_least(0, " (0: Ollama's default)"),
    "ollama_max_loaded_models": _at_least(0, " (0: Ollama's default)"),
    "ollama_context_length": _at_least(0, " (0: Ollama's default)"),
    "ollama_pull_timeout": _at_least(1),
}
# Rules by the end of the name, for the settings every role of a kind has.
SUFFIX_RULES: dict[str, Callable[[Mapping], list[tuple[str, Problem]]]] = {
    "_pip_options": _pip_options,
    "_extra_env": _extra_env,
}


def _value_rules(name: str, value: object) -> list[str]:
    rule = VALUE_RULES.get(name)
    if rule:
        problem = rule(value)
        return [_line(name, problem)] if problem else []
    for suffix, suffix_rule in SUFFIX_RULES.items():
        if name.endswith(suffix) and isinstance(value, Mapping):
            return [_line(name + where, problem) for where, problem in suffix_rule(value)]
    return []


def _closest(name: str, role: str, options: Iterable[str]) -> list[str]:
    """The setting a misspelt name most likely means, compared without the role's prefix they share."""
    prefix = len(role) + 1
    by_rest = {option[prefix:]: option for option in options}
    close = difflib.get_close_matches(name[prefix:], list(by_rest), n=1)
    return [by_rest[rest] for rest in close]


def _name_problem(name: str, specs: Mapping[str, Mapping]) -> str | None:
    """What is wrong with the name alone: set by the playbooks, moved into the catalog, or unknown to its role."""
    if name in MOVED:
        return _line(name, ("moved into the model catalog", MOVED[name]))
    role = _role_of(name, specs)
    if role is None:
        return None
    if name in PLAYBOOK_SET or name.endswith(DEFER_RESTART_SUFFIX):
        fix = PLAYBOOK_SET.get(name, DEFER_RESTART_FIX)
        return _line(name, ("set by the playbooks, so an inventory value would be silently overridden", fix))
    if name not in specs[role]:
        close = _closest(name, role, specs[role])
        fix = f"did you mean {close[0]}?" if close else f"remove it (see the {role} role's argument spec)"
        return _line(name, (f"not a setting of the {role} role", fix))
    return None


def _control_characters(name: str, value: object, secret: bool) -> list[str]:
    """A setting's strings, in lists and mappings too, hold no control character: the roles write them into
    unit, env and config files. A secret's value, or an environment's, is not shown."""
    if isinstance(value, str):
        found = _CONTROL.search(value)
        if found is None:
            return []
        shown = "" if secret else f"{value!r} "
        return [_line(name, (f"{shown}contains a control character (U+{ord(found.group()):04X})", CONTROL_FIX))]
    if isinstance(value, Mapping):
        environment = name.endswith(("_env", "_environment"))
        problems = []
        for key, item in value.items():
            if isinstance(key, str) and _CONTROL.search(key):
                found = _CONTROL.search(key)
                what = f"the key {key!r} contains a control character (U+{ord(found.group()):04X})"
                problems.append(_line(name, (what, CONTROL_FIX)))
            else:
                hidden = secret or environment or is_secret(str(key))
                problems.extend(_control_characters(f"{name}.{key}", item, hidden))
        return problems
    if isinstance(value, (list, tuple)):
        return [
            line for index, item in enumerate(value) for line in _control_characters(f"{name}[{index}]", item, secret)
        ]
    return []


def _setting(name: str, value: object, spec: Mapping) -> list[str]:
    problem = _spec_problem(name, spec, value)
    if problem:
        return [_line(name, problem)]
    problems = _value_rules(name, value)
    reported = {problem.split(": ", 1)[0] for problem in problems}
    controls = _control_characters(name, value, is_secret(name, spec))
    return problems + [problem for problem in controls if problem.split(": ", 1)[0] not in reported]


def _settings(variables: Mapping, specs: Mapping[str, Mapping], skip: Iterable[str]) -> list[str]:
    skip = set(skip)
    problems = []
    for name in sorted(variables):
        if name in skip or name in ROLE_FACTS or name.startswith("_"):
            continue
        problem = _name_problem(name, specs)
        role = _role_of(name, specs)
        if problem:
            problems.append(problem)
        elif role:
            problems.extend(_setting(name, variables[name], specs[role][name]))
    if "service_account_create" not in skip and variables.get("service_account_create") is True:
        user = variables.get("service_account_user", "llm-stack")
        if "service_account_user" not in skip and not (isinstance(user, str) and user.strip()):
            what = "true, but service_account_user is empty"
            fix = "name the dedicated account to create in service_account_user (the default is llm-stack)"
            problems.append(_line("service_account_create", (what, fix)))
    return problems + _service_account(variables, skip)


def _service_account(variables: Mapping, skip: set) -> list[str]:
    """The account the stack would run as, where the inventory alone shows it is root or the operator's own.

    Phase 1 checks the rest on the host (uid 0, sudo, the administrators' groups).
    """
    names = {"service_account_user", "service_account_create", "service_account_allow_privileged", "ansible_user"}
    if names & skip or variables.get("service_account_allow_privileged") is True:
        return []
    user = variables.get("service_account_user", "llm-stack")
    connecting = variables.get("ansible_user")
    if not isinstance(user, str):
        return []
    if not user.strip():
        if variables.get("service_account_create") is True:
            return []  # refused above, with the fix for a created account
        what = "is empty, which means the user Ansible connects as"
    elif user == "root":
        what = "'root' would run every service as root"
    elif user == connecting:
        what = f"'{user}' is the user Ansible connects as (ansible_user), whose ~/.ssh and sudo a service would own"
    else:
        return []
    fix = (
        "name a dedicated account without sudo (the default, llm-stack, is created for you), "
        "or set service_account_allow_privileged: true to accept it"
    )
    return [_line("service_account_user", (what, fix))]


def _words(choices: tuple) -> str:
    return ", ".join(str(choice).lower() if isinstance(choice, bool) else str(choice) for choice in choices)


def _phase_choices(variables: Mapping, skip: Iterable[str]) -> list[str]:
    return [
        _line(name, (f"{_show(variables[name])} is not one of its choices", "use one of " + _words(choices)))
        for name, choices in PHASE_CHOICES.items()
        if name in variables and name not in skip and variables[name] not in choices
    ]


def _phase_seconds(variables: Mapping, skip: Iterable[str]) -> list[str]:
    def seconds(value: object) -> bool:
        if isinstance(value, bool):
            return False
        if isinstance(value, str) and value.strip().isdigit():
            return True
        return isinstance(value, int) and value >= 0

    return [
        _line(name, (f"{_show(variables[name])} is not a number of seconds", "use a whole number, 0 or more"))
        for name in PHASE_SECONDS
        if name in variables and name not in skip and not seconds(variables[name])
    ]


# ---------------------------------------------------------------------------------------------------------
# The check


def _setting_or_default(variables: Mapping, specs: Mapping[str, Mapping]) -> Callable[[str], object]:
    """A role setting's value: the inventory's, or else its role's default."""

    def value(name: str) -> object:
        if name in variables:
            return variables[name]
        role = _role_of(name, specs)
        return specs[role][name].get("default") if role and name in specs[role] else None

    return value


def check_inventory(
    variables: Mapping,
    hosts: list[str],
    roles_dir: Path,
    host: str,
    unresolved: Mapping[str, str] | None = None,
    *,
    addresses: Mapping | None = None,
) -> tuple[list[str], dict | None]:
    """Every problem of the host's inventory variables, and the plan (None when the catalog is unusable).

    ``unresolved`` maps the names whose templates failed to the error: each is one problem (the name's own
    problem when it is set by the playbooks, moved or unknown), and the other checks leave that name alone.
    """
    unresolved = dict(unresolved or {})
    specs = role_specs(roles_dir)
    problems = []
    for name in sorted(unresolved):
        role = _role_of(name, specs)
        spec = specs.get(role, {}).get(name) if role else None
        # A name that must go anyway says so, whatever its template.
        problem = _name_problem(name, specs) or _unresolved_line(name, unresolved[name], is_secret(name, spec))
        problems.append(problem)
    plan = None
    if CATALOG not in unresolved:
        plan = _plan(variables, hosts, host, problems, addresses)
    gateway_here = plan is None or any(record.get("backend") == "litellm" for record in _records(plan, host))
    problems.extend(_secrets(variables, unresolved, gateway_here, plan, host))
    if plan is not None:
        problems.extend(_controller_files(plan))
        problems.extend(_line(name, problem) for name, problem in tls_file_problems(_records(plan, host)))
        problems.extend(_checksums(variables, plan, unresolved, host))
    settings = _settings(variables, specs, unresolved)
    problems.extend(settings)
    if plan is not None:
        locks_dir = Path(roles_dir) / "python_venv" / "files" / "locks"
        wrong = set(unresolved) | {problem.split(":", 1)[0].split(".")[0].split("[")[0] for problem in settings}
        problems.extend(
            _line(name, problem)
            for name, problem in lock_file_problems(
                _records(plan, host), _setting_or_default(variables, specs), locks_dir, wrong
            )
        )
    problems.extend(_phase_choices(variables, unresolved))
    problems.extend(_phase_seconds(variables, unresolved))
    return problems, plan


def inventory_problems(
    variables: Mapping,
    hosts: list[str],
    roles_dir: Path,
    host: str,
    unresolved: Mapping[str, str] | None = None,
    *,
    addresses: Mapping | None = None,
) -> list[str]:
    """Every problem of the host's (templated) inventory variables, one line each; empty when none."""
    return check_inventory(variables, hosts, roles_dir, host, unresolved, addresses=addresses)[0]
