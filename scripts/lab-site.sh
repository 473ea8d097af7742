#!/usr/bin/env bash
# The main job against the built-in lab: prepare this controller, build the lab image when missing,
# start the lab host (a systemd container), and run site.yml against it.
#
#   scripts/lab-site.sh [ansible-playbook options, e.g. --check or --tags preflight]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

bash scripts/setup-controller.sh
bash scripts/build-lab-image.sh debian12 & image=$!
bash scripts/prepare-lab-artifacts.sh
wait "$image"
# shellcheck disable=SC1091
source .venv/bin/activate
ansible-playbook -i inventories/lab lab/up.yml
export LLM_STACK_REPORT_DIR="${LLM_STACK_REPORT_DIR:-$top/reports}"
status=0
ansible-playbook -i inventories/lab site.yml "$@" || status=$?
report=$(ls -t "$LLM_STACK_REPORT_DIR"/site-*.md 2>/dev/null | head -n 1 || true)

cat <<MSG

Deployment report: ${report:-none was written (see the output above)}
MSG
[ "$status" -eq 0 ] || exit "$status"

cat <<MSG

The lab host llm-lab-debian12 is up. Log in as the operator does, over SSH, e.g. to ask the gateway:
  ssh -i .cache/lab/ssh/id_ed25519 -p 2201 -o UserKnownHostsFile=.cache/lab/ssh/known_hosts labops@127.0.0.1 \
    "python3 -c 'import urllib.request as u; print(u.urlopen(u.Request(\"http://127.0.0.1:4000/v1/models\", headers={\"Authorization\": \"Bearer sk-lab-master-key-0123456789abcdefghijklmnop\"})).read().decode())'"
Remove it with: .venv/bin/ansible-playbook -i inventories/lab lab/down.yml
MSG
