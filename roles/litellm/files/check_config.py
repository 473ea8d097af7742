"""Check, without starting a server, that the LiteLLM proxy loads a config and that it is consistent.

    <litellm venv>/bin/python check_config.py CONFIG [ENV_FILE]   (exit 0: it loads; 1: the problems are printed)

`litellm --validate_config` passes a config whose deployments the router silently drops (an unknown
provider prefix) or whose fallbacks name a group that does not exist: this check catches those too.
ENV_FILE is the unit's env file (NAME=VALUE lines): it is read here, so the secrets the os.environ/NAME
references need never travel on a command line or through the caller's environment.
"""

from __future__ import annotations

import asyncio
import fnmatch
import inspect
import os
import sys

import yaml

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def load_env_file(path: str) -> None:
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            name, sep, value = line.rstrip("\n").partition("=")
            if sep and name.strip() and not name.lstrip().startswith("#"):
                os.environ[name.strip()] = value


def unresolved_env(value: object) -> list[str]:
    if isinstance(value, dict):
        return [name for item in value.values() for name in unresolved_env(item)]
    if isinstance(value, list):
        return [name for item in value for name in unresolved_env(item)]
    if isinstance(value, str) and value.startswith("os.environ/") and value[11:] not in os.environ:
        return [value[11:]]
    return []


def load_router(path: str):
    from litellm.proxy.proxy_server import ProxyConfig  # noqa: PLC0415 - slow import, after the cheap checks

    router, _, _ = asyncio.run(ProxyConfig().load_config(router=None, config_file_path=path))
    return router


def router_problems(raw: dict, router) -> list[str]:
    from litellm import Router  # noqa: PLC0415

    problems = []
    wanted = raw.get("model_list") or []
    loaded = {deployment["litellm_params"]["model"] for deployment in router.model_list}
    if len(router.model_list) != len(wanted):
        dropped = [entry.get("litellm_params", {}).get("model") for entry in wanted]
        dropped = [model for model in dropped if model not in loaded]
        count = len(wanted) - len(router.model_list)
        problems.append(f"the router dropped {count} model_list entries: {dropped}")
    groups = set(router.get_model_names())

    def known(name: str) -> bool:
        return name == "*" or name in groups or any("*" in g and fnmatch.fnmatchcase(name, g) for g in groups)

    settings = raw.get("router_settings") or {}
    for key in ("fallbacks", "context_window_fallbacks"):
        for chain in settings.get(key) or []:
            for source, targets in chain.items():
                problems += [
                    f"router_settings.{key}: '{n}' is not a model group" for n in [source, *targets] if not known(n)
                ]
    arguments = set(inspect.signature(Router.__init__).parameters)
    problems += [f"router_settings.{key} is not a router setting" for key in settings if key not in arguments]
    problems += [
        f"router_settings.{key} must be a whole number"
        for key in ("num_retries", "allowed_fails")
        if key in settings and not isinstance(settings[key], int)
    ]
    problems += [
        f"router_settings.{key} must be a number"
        for key in ("timeout", "cooldown_time")
        if key in settings and not isinstance(settings[key], (int, float))
    ]
    return problems


def main() -> int:
    path = sys.argv[1]
    if len(sys.argv) > 2:
        try:
            load_env_file(sys.argv[2])
        except OSError as error:
            print(f"PROBLEM: the env file {sys.argv[2]} is not readable: {error}")
            return 1
    try:
        with open(path, encoding="utf-8") as handle:
            raw = yaml.safe_load(handle) or {}
    except (OSError, yaml.YAMLError) as error:
        print(f"{path} is not readable YAML: {error}")
        return 1
    problems = [f"environment variable {name} is not set" for name in sorted(set(unresolved_env(raw)))]
    if not problems:
        try:
            problems = router_problems(raw, load_router(path))
        except Exception as error:  # whatever stops the proxy loading it is the answer
            problems = [f"the proxy cannot load it: {type(error).__name__}: {error}"]
    for problem in problems:
        print(f"PROBLEM: {problem}")
    if not problems:
        print(f"OK: {path} loads")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
