#!/usr/bin/env bash
# Run a bench/ script on a lab host, reached over SSH as the operator (labops) reaches it, as the stack's
# service account (LAB_SERVICE_ACCOUNT, default llm-stack), whose deployment record and env files the
# scripts read. The bench/ scripts are copied to a temporary directory there and removed afterwards.
#
#   bench/on-lab-host.sh SCRIPT [script options]
#   (LAB_INVENTORY: default inventories/lab; LAB_HOST: default its first host)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
script=$1; shift
inventory="$top/${LAB_INVENTORY:-inventories/lab}"
# shellcheck disable=SC1091
source "$top/.venv/bin/activate"
host=${LAB_HOST:-$(ansible-inventory -i "$inventory" --list | python3 -c 'import json,sys; print(json.load(sys.stdin)["llm_hosts"]["hosts"][0])')}
port=$(ansible-inventory -i "$inventory" --host "$host" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ansible_port"])')
ssh_dir="$top/.cache/lab/ssh"
ssh_opts=(-i "$ssh_dir/id_ed25519" -o UserKnownHostsFile="$ssh_dir/known_hosts" -o StrictHostKeyChecking=yes
          -o IdentitiesOnly=yes -o BatchMode=yes)
remote=$(ssh "${ssh_opts[@]}" -p "$port" labops@127.0.0.1 mktemp -d)
trap 'ssh "${ssh_opts[@]}" -p "$port" labops@127.0.0.1 rm -rf "$remote"' EXIT
scp -q "${ssh_opts[@]}" -P "$port" "$top"/bench/*.py "labops@127.0.0.1:$remote/"
ssh "${ssh_opts[@]}" -p "$port" labops@127.0.0.1 chmod -R a+rX "$remote"
# ssh hands the remote shell one command line: quote each argument for it.
ssh "${ssh_opts[@]}" -p "$port" labops@127.0.0.1 sudo -u "${LAB_SERVICE_ACCOUNT:-llm-stack}" -H \
  python3 "$remote/$script" "$(printf '%q ' "$@")"
