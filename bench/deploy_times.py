#!/usr/bin/env python3
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deploy times on the lab, side by side in one run: one line per case, with the tasks changed and seconds.

  first converge      site.yml on a fresh lab host (the host is removed and started again first)
  no-change re-run    site.yml again, nothing to change
  failed validation   a change that breaks validation (Ollama told to listen on an address the host does not
                      have): the run fails and the automatic rollback serves again; seconds to the end of it
  add a model         a second llama.cpp model added to the catalog, deployed and validated

    bench/deploy_times.py [--inventory inventories/lab] [--keep-host]

Runs on the controller after scripts/setup-controller.sh and with the lab images and artifacts present
(scripts/lab-site.sh does both). It leaves the lab host running with the added model.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

TOP = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RECAP = re.compile(r"^\S+\s+: ok=\d+\s+changed=(\d+)", re.MULTILINE)


def playbook(inventory: str, playbook_path: str, *extra: str, env: dict) -> tuple[int, int, float]:
    """(return code, tasks changed on every host, seconds) of one ansible-playbook run."""
    started = time.monotonic()
    run = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", inventory, playbook_path, *extra],
        cwd=TOP,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.monotonic() - started
    changed = sum(int(n) for n in RECAP.findall(run.stdout))
    return run.returncode, changed, seconds


def line(case: str, result: tuple[int, int, float], expect_ok: bool = True) -> None:
    rc, changed, seconds = result
    status = "ok" if (rc == 0) == expect_ok else f"UNEXPECTED rc {rc}"
    print(f"{case:<20} {changed:>4} changed {seconds:7.1f} s  ({status})", flush=True)


def with_extra_model(inventory: Path, directory: Path) -> str:
    """An extra-vars file: the inventory's catalog with a second llama.cpp model beside the first."""
    catalog = yaml.safe_load((inventory / "group_vars" / "all" / "catalog.yml").read_text())["llm_stack_catalog"]
    first = next(model for model in catalog["models"] if model["backend"] == "llamacpp")
    extra = {**first, "name": first["name"] + "-2", "port": first["port"] + 2}
    extra.pop("aliases", None)
    extra.pop("fallbacks", None)
    catalog["models"].append(extra)
    path = directory / "catalog-with-extra-model.json"
    path.write_text(json.dumps({"llm_stack_catalog": catalog}))
    return f"@{path}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inventory", default="inventories/lab")
    parser.add_argument("--keep-host", action="store_true", help="start from the running lab host, not a fresh one")
    args = parser.parse_args()
    reports = tempfile.mkdtemp(prefix="deploy-times-")
    env = {**os.environ, "LLM_STACK_REPORT_DIR": reports, "ANSIBLE_NOCOLOR": "1"}
    inventory = args.inventory

    if not args.keep_host:
        for step in ("lab/down.yml", "lab/up.yml"):
            rc, _, _ = playbook(inventory, step, env=env)
            if rc:
                print(f"{step} failed")
                return 1
    print(f"deploy times on {inventory} (reports in {reports})")
    line("first converge", playbook(inventory, "site.yml", env=env))
    line("no-change re-run", playbook(inventory, "site.yml", env=env))
    broken = json.dumps({"ollama_extra_env": {"OLLAMA_HOST": "192.0.2.1:11434"}})
    line("failed validation", playbook(inventory, "site.yml", "-e", broken, env=env), expect_ok=False)
    added = with_extra_model(TOP / inventory, Path(reports))
    line("add a model", playbook(inventory, "site.yml", "-e", added, env=env))
    return 0


if __name__ == "__main__":
    sys.exit(main())
