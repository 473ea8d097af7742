# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""molecule/shared/tasks/sockets_accounted.yml, run by ansible-playbook on this controller against an `ss`
that prints a recorded listing and a /proc of cgroup files (sockets_proc), so each case knows its answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

TOP = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TASKS = TOP / "molecule" / "shared" / "tasks" / "sockets_accounted.yml"
USER_UNIT = "/user.slice/user-1000.slice/user@1000.service/app.slice/{}"
# pid: the cgroup path of that process.
CGROUPS = {
    101: "/system.slice/ssh.service",
    201: USER_UNIT.format("llm-vllm-tiny-vllm.service"),
    202: USER_UNIT.format("llm-vllm-tiny-vllm.service"),
    301: USER_UNIT.format("llm-litellm.service"),
    401: "/system.slice/redis-server.service",
}
SSH = [
    'LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=101,fd=3))',
    'LISTEN 0 128 [::]:22 [::]:* users:(("sshd",pid=101,fd=4))',
]
VLLM_API = 'LISTEN 0 2048 127.0.0.1:8001 0.0.0.0:* users:(("VLLM::APIServer",pid=201,fd=22))'
VLLM_WORKER = 'LISTEN 0 4096 {}:{} 0.0.0.0:* users:(("VLLM::Worker",pid=202,fd=31))'
GATEWAY = 'LISTEN 0 2048 127.0.0.1:4000 0.0.0.0:* users:(("litellm",pid=301,fd=9),("python3",pid=302,fd=9))'
REDIS = 'LISTEN 0 511 127.0.0.1:6379 0.0.0.0:* users:(("redis-server",pid=401,fd=6))'
EXPECTED = [
    {"unit": r"llm-vllm-tiny-vllm\.service", "address": "127.0.0.1", "port": 8001},
    {"unit": r"llm-vllm-tiny-vllm\.service", "address": "loopback", "port": "any"},
    {"unit": r"redis-server\.service", "address": ["127.0.0.1"], "port": 6379},
]
PLAYBOOK = f"""
- name: Run the socket check
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Check, and record the outcome
      block:
        - name: Check every listening socket
          ansible.builtin.include_tasks: {TASKS}
      rescue:
        - name: Record the failure
          ansible.builtin.copy:
            content: "{{{{ {{'failed': ansible_failed_result.msg}} | to_json }}}}"
            dest: "{{{{ outcome }}}}"
            mode: "0600"
        - name: Stop here
          ansible.builtin.meta: end_play
    - name: Record the pass
      ansible.builtin.copy:
        content: "{{{{ {{'passed': _sockets_unaccounted}} | to_json }}}}"
        dest: "{{{{ outcome }}}}"
        mode: "0600"
"""


def check(tmp_path: Path, listing: list[str], expected: list[dict]) -> dict:
    """Runs the task file against `listing`, as `ss -Hltnp` prints it; returns {'passed': []} or {'failed': msg}."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    ss = fake_bin / "ss"
    ss.write_text("#!/bin/sh\ncat <<'EOF'\n" + "".join(line + "\n" for line in listing) + "EOF\n")
    ss.chmod(0o755)
    proc = tmp_path / "proc"
    for pid, path in CGROUPS.items():
        (proc / str(pid)).mkdir(parents=True)
        (proc / str(pid) / "cgroup").write_text(f"0::{path}\n")
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    variables = {
        "sockets_expected": expected,
        "sockets_proc": str(proc),
        "outcome": str(tmp_path / "outcome.json"),
        # On this controller, as whoever runs the tests: the task file's become is for lab hosts.
        "ansible_become": False,
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
    }
    (tmp_path / "vars.yml").write_text(yaml.safe_dump(variables))
    (tmp_path / "ansible.cfg").write_text("[defaults]\n")
    env = {
        **os.environ,
        "PATH": f"{fake_bin}{os.pathsep}{os.environ['PATH']}",
        "ANSIBLE_CONFIG": str(tmp_path / "ansible.cfg"),
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"),
        "ANSIBLE_REMOTE_TEMP": str(tmp_path / "tmp"),
    }
    result = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", "localhost,", "-e", f"@{tmp_path / 'vars.yml'}", "play.yml"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads((tmp_path / "outcome.json").read_text())


def expected_in(message: str) -> list[dict]:
    """The expected entries the failure message ends with."""
    return json.loads(message.split("Expected, besides this file's SSH and resolver entries: ", 1)[1])


def test_what_the_plan_placed_and_ssh_pass(tmp_path: Path) -> None:
    listing = [
        *SSH,
        # sshd on a socket for IPv4 and IPv6 at once.
        'LISTEN 0 128 *:22 *:* users:(("sshd",pid=101,fd=5))',
        VLLM_API,
        VLLM_WORKER.format("127.0.0.1", 41234),
        VLLM_WORKER.format("[::1]", 41235),
        REDIS,
        'LISTEN 0 4096 127.0.0.53%lo:53 0.0.0.0:* users:(("systemd-resolve",pid=501,fd=14))',
    ]
    assert check(tmp_path, listing, EXPECTED) == {"passed": []}


def test_the_worker_on_the_host_address_is_named(tmp_path: Path) -> None:
    """The finding of #13: torch's gloo listeners of vLLM's worker on the host's network address."""
    listing = [*SSH, VLLM_API, VLLM_WORKER.format("10.88.0.5", 41234), VLLM_WORKER.format("10.88.0.5", 41240)]
    message = check(tmp_path, listing, EXPECTED)["failed"]
    held = "held by VLLM::Worker (pid 202, unit llm-vllm-tiny-vllm.service)"
    assert message.startswith(
        f"2 listening socket(s) that no expected service accounts for: 10.88.0.5:41234 {held}; 10.88.0.5:41240 {held}. "
    )
    assert expected_in(message) == EXPECTED


def test_every_stray_socket_fails_the_check_and_is_named(tmp_path: Path) -> None:
    strays = {
        # The API on every interface instead of loopback.
        'LISTEN 0 2048 0.0.0.0:8001 0.0.0.0:* users:(("VLLM::APIServer",pid=201,fd=22))': (
            "0.0.0.0:8001 held by VLLM::APIServer (pid 201, unit llm-vllm-tiny-vllm.service)"
        ),
        # A process of another unit on the address and port the plan gave vLLM.
        'LISTEN 0 2048 127.0.0.1:8001 0.0.0.0:* users:(("litellm",pid=301,fd=22))': (
            "127.0.0.1:8001 held by litellm (pid 301, unit llm-litellm.service)"
        ),
        # A listener the plan did not place, loopback or not; every process that holds it is named.
        GATEWAY: "127.0.0.1:4000 held by litellm (pid 301, unit llm-litellm.service), python3 (pid 302, unit unknown)",
        # IPv6's every-interface address, shown in brackets.
        'LISTEN 0 511 [::]:6379 [::]:* users:(("redis-server",pid=401,fd=7))': (
            "[::]:6379 held by redis-server (pid 401, unit redis-server.service)"
        ),
        # sshd is expected on port 22 only.
        'LISTEN 0 128 0.0.0.0:2222 0.0.0.0:* users:(("sshd",pid=101,fd=5))': (
            "0.0.0.0:2222 held by sshd (pid 101, unit ssh.service)"
        ),
        # A socket whose process ss cannot see is never accounted for.
        "LISTEN 0 128 127.0.0.1:9000 0.0.0.0:*": "127.0.0.1:9000 held by no process ss can see",
    }
    message = check(tmp_path, [*SSH, REDIS, *strays], EXPECTED)["failed"]
    assert message.startswith(
        f"{len(strays)} listening socket(s) that no expected service accounts for: {'; '.join(strays.values())}. "
    )
    assert expected_in(message) == EXPECTED
