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
# The lab's artifacts (mostly a compile) are made in the background while the images build and
# the first tests run; the scenarios that install from them wait for them (tests/molecule/conftest.py).
export LAB_ARTIFACTS_STATUS="$top/.cache/artifacts.status" LAB_ARTIFACTS_LOG="$top/.cache/logs/artifacts.log"
rm -f "$LAB_ARTIFACTS_STATUS"
(bash scripts/prepare-lab-artifacts.sh >"$LAB_ARTIFACTS_LOG" 2>&1; echo $? >"$LAB_ARTIFACTS_STATUS") &
# The three lab platforms build in parallel (mostly network time), also in the background while the tests
# that need no lab host run; the scenarios wait for them (tests/molecule/conftest.py). An image of the same
# recipe is kept.
export LAB_IMAGES_STATUS="$top/.cache/images.status" LAB_IMAGES_LOG="$top/.cache/logs/images.log"
rm -f "$LAB_IMAGES_STATUS"
(
  status=0 pids=()
  for platform in debian12 debian13 ubuntu2404; do
    bash scripts/build-lab-image.sh "$platform" & pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || status=1; done
  echo "$status" >"$LAB_IMAGES_STATUS"
) >"$LAB_IMAGES_LOG" 2>&1 &

# shellcheck disable=SC1091
source .venv/bin/activate
if [ $# -eq 0 ]; then
  set -- tests/static tests/unit tests/preflight tests/collection tests/molecule
fi
status=0
python -m pytest -p no:cacheprovider --durations=10 "$@" || status=$?
wait
exit "$status"
