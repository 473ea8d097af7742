#!/usr/bin/env python3
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Scale: the same no-change site.yml against the single lab host and against the fleet, one after the other
(each is converged first, untimed, so that both runs have nothing to change).

    bench/scale.py        (both deployed first: scripts/lab-site.sh, and site.yml with inventories/fleet)

Prints one line per inventory (hosts, tasks changed, seconds) and the fleet's time over the single host's.
"""

from __future__ import annotations

import os
import sys
import tempfile

from deploy_times import TOP, playbook

INVENTORIES = ("inventories/lab", "inventories/fleet")


def main() -> int:
    env = {**os.environ, "LLM_STACK_REPORT_DIR": tempfile.mkdtemp(prefix="scale-"), "ANSIBLE_NOCOLOR": "1"}
    seconds = {}
    for inventory in INVENTORIES:
        playbook(inventory, "site.yml", env=env)
    for inventory in INVENTORIES:
        hosts = len(list((TOP / inventory / "host_vars").glob("*.yml"))) or 1
        rc, changed, seconds[inventory] = playbook(inventory, "site.yml", env=env)
        status = "ok" if rc == 0 else f"FAILED rc {rc}"
        took = seconds[inventory]
        print(f"{inventory:<18} {hosts} host(s) {changed:>3} changed {took:6.1f} s ({status})", flush=True)
    print(f"fleet / single host: {seconds[INVENTORIES[1]] / seconds[INVENTORIES[0]]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
