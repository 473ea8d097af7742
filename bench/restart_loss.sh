#!/usr/bin/env bash
# Restart loss on the fleet, side by side in one run: steady load through the gateway (bench/restart_loss.py,
# 4 requests a second, plain and streamed in turn) while site.yml applies a change that restarts every
# backend, once rolling (the default) and once on every host at once (llm_stack_rolling_restart: false).
#
#   bench/restart_loss.sh      (after: ansible-playbook -i inventories/fleet lab/up.yml site.yml)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
# shellcheck disable=SC1091
source .venv/bin/activate
export LLM_STACK_REPORT_DIR="${LLM_STACK_REPORT_DIR:-$(mktemp -d)}" LAB_INVENTORY=inventories/fleet
for rolling in true false; do
  label=$([ "$rolling" = true ] && echo "rolling, one node at a time" || echo "every node at once")
  # Its own stdio: ssh sets the handles it shares non-blocking, which ansible-playbook refuses.
  LAB_HOST=llm-fleet-gw bash bench/on-lab-host.sh restart_loss.py --model fleet-cpp --rate 4 --seconds 120 \
    --label "$label" </dev/null >"$LLM_STACK_REPORT_DIR/load.out" 2>&1 & load=$!
  sleep 5
  started=$SECONDS
  change="{\"llamacpp_extra_env\": {\"LLM_STACK_BENCH\": \"$(date +%s%N)\"}, \"llm_stack_rolling_restart\": $rolling}"
  ansible-playbook -i inventories/fleet site.yml -e "$change" </dev/null >/dev/null 2>&1 || echo "site.yml failed ($label)"
  echo "site.yml with the restart ($label): $((SECONDS - started)) s"
  wait "$load" || true
  cat "$LLM_STACK_REPORT_DIR/load.out"
done
