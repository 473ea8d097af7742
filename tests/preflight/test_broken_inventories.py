# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Phase 1 refuses every inventory of tests/inventories/broken on the controller, before any host is contacted.

Each case is an inventory (hosts.yml, group_vars/all/) with one thing wrong, and expect.txt, the lines the
refusal must show. Its one host is a podman container that does not exist; on top of that, every run puts a
podman spy first on PATH that records each call before handing it to the real podman. A case passes when
ansible-playbook playbooks/preflight.yml fails with every expected line, the report is written, no secret
shows, and podman was never called. A valid inventory is the control: it passes the check and its host is
then contacted (and found unreachable), so the spy would see a contact.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

TOP = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CORPUS = TOP / "tests" / "inventories" / "broken"
CASES = sorted(path.name for path in CORPUS.iterdir() if (path / "expect.txt").is_file())
HOST = "preflight01"
NEVER_CONTACTED = "llm-preflight-never-contacted"
CHECK_TASK = "Check the inventory before any host is contacted"
FORBIDDEN = ("UNREACHABLE", "Finalization of task args", "Traceback")
SECRETS = (
    "llm_stack_litellm_master_key",
    "llm_stack_redis_password",
    "llm_stack_vllm_api_key",
    "llm_stack_llamacpp_api_key",
    "llm_stack_hf_token",
    "vllm_api_key",
)
# The control: a case whose one mistake is a line of settings.yml, taken out.
CONTROL_CASE, CONTROL_LINE = "vllm-flavour-unknown", "vllm_flavour: cpu"
PODMAN_SPY = """#!/bin/sh
# Records every podman call of the run, then hands it to the real podman (or fails as it would).
printf '%s\\n' "$*" >> "$PODMAN_SPY_LOG"
if [ -n "$REAL_PODMAN" ]; then exec "$REAL_PODMAN" "$@"; fi
echo "Error: no container with name or ID found: no such container" >&2
exit 125
"""


@dataclass
class Run:
    returncode: int
    output: str
    podman_calls: list[str]
    reports: list[Path]


def run_preflight(inventory: Path, work: Path, spy_dir: Path, real_podman: str | None) -> Run:
    work.mkdir(parents=True)
    spy_log = work / "podman-calls.log"
    # Only the repository's ansible.cfg configures the run: no vault password, no other callback.
    env = {name: value for name, value in os.environ.items() if not name.startswith("ANSIBLE_")}
    env |= {
        "ANSIBLE_CONFIG": str(TOP / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "LLM_STACK_REPORT_DIR": str(work / "reports"),
        "PATH": f"{spy_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PODMAN_SPY_LOG": str(spy_log),
        "REAL_PODMAN": real_podman or "",
    }
    result = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(inventory), "playbooks/preflight.yml"],
        cwd=TOP,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    calls = spy_log.read_text().splitlines() if spy_log.exists() else []
    reports = sorted((work / "reports").glob("site-*.md"))
    return Run(result.returncode, result.stdout + result.stderr, calls, reports)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """Every case, and the control, run two at a time (one ansible-playbook takes a few seconds)."""
    top = tmp_path_factory.mktemp("preflight")
    spy_dir = top / "bin"
    spy_dir.mkdir()
    spy = spy_dir / "podman"
    spy.write_text(PODMAN_SPY)
    spy.chmod(0o755)
    real_podman = shutil.which("podman")

    control = top / "control-inventory"
    shutil.copytree(CORPUS / CONTROL_CASE, control)
    settings = control / "group_vars" / "all" / "settings.yml"
    lines = settings.read_text().splitlines()
    assert CONTROL_LINE in lines, f"{CONTROL_CASE} no longer has the line the control takes out"
    settings.write_text("".join(f"{line}\n" for line in lines if line != CONTROL_LINE))

    inventories = {case: CORPUS / case for case in CASES} | {"(control)": control}
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {
            name: pool.submit(run_preflight, inventory, top / "runs" / name, spy_dir, real_podman)
            for name, inventory in inventories.items()
        }
        return {name: future.result() for name, future in futures.items()}


def expected_lines(case: str) -> list[str]:
    return [line for line in (CORPUS / case / "expect.txt").read_text().splitlines() if line.strip()]


class VaultLoader(yaml.SafeLoader):
    """Reads group_vars as YAML; a !vault value is left out (it shows nothing anyway)."""


VaultLoader.add_constructor("!vault", lambda loader, node: None)


def secret_values(case: str) -> list[str]:
    """The plain values of the case's secrets: none may appear in the output."""
    values = []
    for path in (CORPUS / case / "group_vars").rglob("*.yml"):
        data = yaml.load(path.read_text(), Loader=VaultLoader) or {}
        values += [str(data[name]) for name in SECRETS if name in data and data[name] and "{{" not in str(data[name])]
    return values


def test_the_corpus_has_enough_cases() -> None:
    assert len(CASES) >= 20, CASES


@pytest.mark.parametrize("case", CASES)
def test_case_is_one_host_that_cannot_be_contacted(case: str) -> None:
    hosts = yaml.safe_load((CORPUS / case / "hosts.yml").read_text())
    assert list(hosts) == ["llm_hosts"]
    assert hosts["llm_hosts"]["hosts"] == {
        HOST: {"ansible_connection": "containers.podman.podman", "ansible_host": NEVER_CONTACTED}
    }
    assert expected_lines(case), f"{case}/expect.txt lists no line"


@pytest.mark.parametrize("case", CASES)
def test_phase_1_refuses_the_inventory_before_contacting_the_host(runs: dict[str, Run], case: str) -> None:
    run = runs[case]
    assert run.returncode != 0, run.output
    missing = [line for line in expected_lines(case) if line not in run.output]
    assert not missing, f"missing from the refusal: {missing}\n{run.output}"
    found = [text for text in FORBIDDEN if text in run.output]
    assert not found, f"{found} in the output:\n{run.output}"
    assert run.podman_calls == [], f"the host was contacted: podman {run.podman_calls}"
    assert NEVER_CONTACTED not in run.output
    assert "Nothing was changed. Report: " in run.output
    assert len(run.reports) == 1, run.output
    # Reports may carry journal lines and addresses: the operator's only.
    report = run.reports[0]
    modes = {
        path.name: oct(path.stat().st_mode & 0o777) for path in (report.parent, report, report.with_suffix(".json"))
    }
    assert modes == {"reports": "0o700", report.name: "0o600", report.with_suffix(".json").name: "0o600"}
    shown = [value for value in secret_values(case) if value in run.output]
    assert not shown, f"a secret's value is in the output:\n{run.output}"


def test_control_passes_the_check_and_only_then_contacts_the_host(runs: dict[str, Run]) -> None:
    """Without its one mistake the case passes the inventory check; the next task contacts the host, and the
    spy and the output both show it: a broken case that touched the host could not go unnoticed."""
    run = runs["(control)"]
    check_passed = rf"TASK \[{re.escape(CHECK_TASK)}\][^\n]*\nok: \[{HOST}\]"
    assert re.search(check_passed, run.output), run.output
    assert "problem(s) in the inventory" not in run.output
    assert "UNREACHABLE" in run.output, run.output
    assert any(NEVER_CONTACTED in call for call in run.podman_calls), run.podman_calls
