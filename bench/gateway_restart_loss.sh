#!/usr/bin/env bash
# What a restart of the only gateway loses, side by side in one run on the lab host: two steady loads
# through it (bench/restart_loss.py, 2 requests a second each, plain and streamed in turn), one from a
# client that does not retry and one from a client that retries a refused connection every 2 s for up to
# 60 s, while site.yml applies a change that restarts the gateway (and nothing else).
# Each prints what it sent, what failed, and for how long requests failed.
#
#   bench/gateway_restart_loss.sh      (after: scripts/lab-site.sh)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
# shellcheck disable=SC1091
source .venv/bin/activate
export LLM_STACK_REPORT_DIR="${LLM_STACK_REPORT_DIR:-$(mktemp -d)}" LAB_INVENTORY=inventories/lab
out=$LLM_STACK_REPORT_DIR
model=${BENCH_MODEL:-lab-cpp}
# Their own stdio: ssh sets the handles it shares non-blocking, which ansible-playbook refuses.
bash bench/on-lab-host.sh restart_loss.py --model "$model" --rate 2 --seconds 120 \
  --label "no retries" </dev/null >"$out/plain.out" 2>&1 & plain=$!
bash bench/on-lab-host.sh restart_loss.py --model "$model" --rate 2 --seconds 120 --retries 30 --retry-wait 2 \
  --label "retries every 2 s, up to 60 s" </dev/null >"$out/retrying.out" 2>&1 & retrying=$!
sleep 5
started=$SECONDS
# No fallback chain proven again: that would stop backends, and this measures the gateway alone.
ansible-playbook -i inventories/lab site.yml -e llm_stack_prove_fallbacks=never \
  -e "{\"litellm_health_check_interval\": $((290 + RANDOM % 9))}" \
  </dev/null >"$out/site.out" 2>&1 || echo "site.yml failed (see $out/site.out)"
echo "site.yml with the gateway's restart: $((SECONDS - started)) s"
wait "$plain" "$retrying" || true
cat "$out/plain.out" "$out/retrying.out"
