#!/usr/bin/env bash
# The whole test suite: prepares this controller (podman, images, virtualenv) and runs, through pytest,
# the linters, the unit tests, the collection build and every molecule scenario.
#
#   scripts/test.sh [pytest options, e.g. -k 'not molecule' or tests/unit]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

bash scripts/setup-controller.sh
# The three lab platforms build in parallel (mostly network time); an existing image is kept.
pids=()
for platform in debian12 debian13 ubuntu2404; do
  bash scripts/build-lab-image.sh "$platform" & pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done

# shellcheck disable=SC1091
source .venv/bin/activate
if [ $# -eq 0 ]; then
  set -- tests/static tests/unit tests/collection tests/molecule
fi
exec python -m pytest -p no:cacheprovider --durations=10 "$@"
