#!/usr/bin/env bash
# The whole test suite: prepares this controller (podman, images, virtualenv, the lab's artifacts) and
# runs, through pytest, the linters, the unit tests, the collection build and every molecule scenario.
#
#   scripts/test.sh [pytest options, e.g. -k 'not molecule' or tests/unit]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

bash scripts/setup-controller.sh
mkdir -p .cache/logs
# The lab's artifacts (mostly a 7-minute compile) are made in the background while the images build and
# the first tests run; the scenarios that install from them wait for them (tests/molecule/conftest.py).
export LAB_ARTIFACTS_STATUS="$top/.cache/artifacts.status" LAB_ARTIFACTS_LOG="$top/.cache/logs/artifacts.log"
rm -f "$LAB_ARTIFACTS_STATUS"
(bash scripts/prepare-lab-artifacts.sh >"$LAB_ARTIFACTS_LOG" 2>&1; echo $? >"$LAB_ARTIFACTS_STATUS") &
# The three lab platforms build in parallel (mostly network time); an image of the same recipe is kept.
pids=()
for platform in debian12 debian13 ubuntu2404; do
  bash scripts/build-lab-image.sh "$platform" & pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done

# shellcheck disable=SC1091
source .venv/bin/activate
if [ $# -eq 0 ]; then
  set -- tests/static tests/unit tests/preflight tests/collection tests/molecule
fi
status=0
python -m pytest -p no:cacheprovider --durations=10 "$@" || status=$?
wait
exit "$status"
