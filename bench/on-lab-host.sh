#!/usr/bin/env bash
# Run a bench/ script on a lab host, over SSH as the operator reaches it (inventories/lab), as labops (the
# lab's service account, whose deployment record and env files the scripts read). The script is piped in:
# nothing is installed on the host.
#
#   bench/on-lab-host.sh SCRIPT [script options]     (LAB_HOST: the inventory host, default llm-lab-debian12)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
script=$1; shift
host=${LAB_HOST:-llm-lab-debian12}
# shellcheck disable=SC1091
source "$top/.venv/bin/activate"
port=$(ansible-inventory -i "$top/inventories/lab" --host "$host" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ansible_port"])')
ssh_dir="$top/.cache/lab/ssh"
exec ssh -i "$ssh_dir/id_ed25519" -p "$port" -o UserKnownHostsFile="$ssh_dir/known_hosts" \
  -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes -o BatchMode=yes labops@127.0.0.1 \
  python3 - "$@" < "$top/bench/$script"
