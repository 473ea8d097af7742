# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The vLLM env file keeps a server's internal communication on loopback (security issue #13).

roles/vllm/templates/vllm.env.j2 is rendered with jinja2 as the template module renders it (trim_blocks),
from the role's defaults, and read back as systemd reads an EnvironmentFile: the last assignment wins.
"""

from __future__ import annotations

import re
from pathlib import Path

import jinja2
import pytest
import yaml
from ansible.plugins.filter.core import comment

ROLE = Path(__file__).resolve().parents[2] / "roles" / "vllm"
SERVICE = {"unit": "llm-vllm-tiny.service", "settings": {"gpus": None}}
ACCOUNT = {"home": "/home/llm-stack"}
INTERNAL = {"VLLM_HOST_IP", "GLOO_SOCKET_IFNAME", "NCCL_SOCKET_IFNAME"}


def _defaults() -> dict:
    return yaml.safe_load((ROLE / "defaults" / "main.yml").read_text(encoding="utf-8"))


def render(**settings: object) -> str:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(ROLE / "templates"),
        trim_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["comment"] = comment
    variables = {**_defaults(), **settings}
    return environment.get_template("vllm.env.j2").render(
        ansible_managed="Ansible managed", item=SERVICE, service_account_info=ACCOUNT, **variables
    )


def read_env(text: str) -> dict[str, str]:
    """The environment systemd makes of the file: KEY=VALUE lines, comments skipped, the last one winning."""
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            name, value = line.split("=", 1)
            env[name] = value
    return env


@pytest.mark.parametrize("flavor", ["cpu", "cuda"])
def test_internal_communication_is_loopback_by_default(flavor: str) -> None:
    env = read_env(render(vllm_flavor=flavor))
    assert env["VLLM_HOST_IP"] == "127.0.0.1"
    assert env["GLOO_SOCKET_IFNAME"] == "lo"
    if flavor == "cuda":
        # '=lo': the interface named lo exactly, not every one whose name starts with 'lo'.
        assert env["NCCL_SOCKET_IFNAME"] == "=lo"
    else:
        # The CPU build of torch has no NCCL: nothing would read it.
        assert "NCCL_SOCKET_IFNAME" not in env


def test_every_line_is_an_assignment_systemd_reads() -> None:
    text = render(vllm_flavor="cuda", vllm_api_key="k", vllm_hf_offline=True)
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert all(re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", line) for line in lines), lines


def test_a_model_spanning_nodes_gets_the_private_address_and_its_interface() -> None:
    env = read_env(render(vllm_flavor="cuda", vllm_internal_address="10.0.0.5", vllm_internal_interface="eth1"))
    assert (env["VLLM_HOST_IP"], env["GLOO_SOCKET_IFNAME"], env["NCCL_SOCKET_IFNAME"]) == ("10.0.0.5", "eth1", "=eth1")


def test_extra_env_cannot_move_the_internal_sockets_off_loopback() -> None:
    """Preflight refuses these names in vllm_extra_env; were one to slip through, the role's line comes later."""
    extra = {
        "VLLM_HOST_IP": "0.0.0.0",
        "GLOO_SOCKET_IFNAME": "eth0",
        "NCCL_SOCKET_IFNAME": "eth0",
        "OMP_NUM_THREADS": 4,
    }
    env = read_env(render(vllm_flavor="cuda", vllm_extra_env=extra))
    assert (env["VLLM_HOST_IP"], env["GLOO_SOCKET_IFNAME"], env["NCCL_SOCKET_IFNAME"]) == ("127.0.0.1", "lo", "=lo")
    assert env["OMP_NUM_THREADS"] == "4"


def test_preflight_refuses_in_extra_env_exactly_what_the_template_sets() -> None:
    role_vars = yaml.safe_load((ROLE / "vars" / "main.yml").read_text(encoding="utf-8"))
    assert set(role_vars["_vllm_internal_env"]) == INTERNAL
    assert INTERNAL <= set(read_env(render(vllm_flavor="cuda")))


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.1.1", True),
        ("::1", True),
        ("10.0.0.5", False),
        ("192.168.1.127", False),
        ("::10", False),
        ("fd00::1", False),
    ],
)
def test_the_loopback_pattern_preflight_pairs_with_lo(address: str, loopback: bool) -> None:
    """Preflight: a loopback vllm_internal_address goes with vllm_internal_interface lo, and only one does
    (Ansible's match test is re.match)."""
    pattern = yaml.safe_load((ROLE / "vars" / "main.yml").read_text(encoding="utf-8"))["_vllm_loopback_pattern"]
    assert bool(re.match(pattern, address)) is loopback
