#!/usr/bin/env bash
# The gateway's worker count, measured side by side in one run: the lab host's gateway deployed with one
# worker, then with the role's default (one per CPU core), and bench/gateway_overhead.py against each.
# Leaves the lab host as the inventory deploys it.
#
#   bench/gateway_workers.sh [gateway_overhead.py options]     (after scripts/lab-site.sh)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
# shellcheck disable=SC1091
source .venv/bin/activate
export LLM_STACK_REPORT_DIR="${LLM_STACK_REPORT_DIR:-$(mktemp -d)}"
for workers in 1 0; do
  label=$([ "$workers" = 0 ] && echo "one worker per core (the default)" || echo "$workers worker")
  ansible-playbook -i inventories/lab playbooks/deploy.yml -e litellm_num_workers="$workers" >/dev/null
  ansible-playbook -i inventories/lab playbooks/restart.yml -e litellm_num_workers="$workers" >/dev/null
  bash bench/on-lab-host.sh gateway_overhead.py "$@" | sed "s/^/[$label] /"
done
