#!/usr/bin/env bash
# Prepare this machine as the lab's controller: podman (runc) and debootstrap from the distribution,
# the podman settings the lab needs, and a virtualenv with the pinned tools and collections.
# Idempotent: every step checks first and says what it did.
#
#   scripts/setup-controller.sh          (as root; VENV=path to choose the virtualenv, default .venv)
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
venv="${VENV:-$top/.venv}"
collections="$top/.collections/ansible_collections"
log() { printf '[%s] setup: %s\n' "$(date +%H:%M:%S)" "$*"; }

packages=(podman runc debootstrap curl)
missing=()
for p in "${packages[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" uidmap slirp4netns >/dev/null
else
  log "podman, runc and debootstrap present"
fi

dropin=/etc/containers/containers.conf.d/50-labai-llm-stack-lab.conf
if ! cmp -s "$top/lab/containers.conf" "$dropin"; then
  log "writing $dropin (runc, lowered ulimits)"
  install -D -m 0644 "$top/lab/containers.conf" "$dropin"
fi

if [ ! -x "$venv/bin/python" ]; then
  log "creating virtualenv $venv"
  python3 -m venv "$venv"
fi
if ! cmp -s "$top/requirements-dev.txt" "$venv/.requirements-dev.txt"; then
  log "installing pinned tools from requirements-dev.txt"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$top/requirements-dev.txt" 2>&1 | grep -v '^WARNING: Location' || true
  "$venv/bin/ansible-galaxy" --version >/dev/null
  cp "$top/requirements-dev.txt" "$venv/.requirements-dev.txt"
fi

# Ansible Galaxy is out of reach: the collections we use come out of the pinned PyPI 'ansible' wheel.
"$venv/bin/python" "$top/scripts/collections_from_wheel.py" "$top/requirements-collections.txt" "$collections"

# This checkout is the labai.llm_stack collection: make it importable under its FQCN.
mkdir -p "$collections/labai"
if [ "$(readlink "$collections/labai/llm_stack" 2>/dev/null)" != "../../.." ]; then
  ln -sfn ../../.. "$collections/labai/llm_stack"
  log "linked this checkout as labai.llm_stack"
fi
log "ready: source $venv/bin/activate"
