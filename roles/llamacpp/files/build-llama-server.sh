#!/bin/sh
# Build llama-server from a llama.cpp source archive into BUILD_DIR (built aside, moved into place
# only when complete, so an interrupted build is never taken for a finished one).
#   build-llama-server.sh BUILD_DIR ARCHIVE SUBDIR JOBS [CMAKE_ARG ...]
set -eu
build=$1 archive=$2 subdir=$3 jobs=$4
shift 4
work="$build.partial"
rm -rf "$work"
mkdir -p "$work/src"
tar -xzf "$archive" -C "$work/src"
if [ -n "$subdir" ]; then
  src="$work/src/$subdir"
else
  src=$(find "$work/src" -mindepth 1 -maxdepth 1 -type d | head -n 1)
fi
[ -f "$src/CMakeLists.txt" ] || { echo "no CMakeLists.txt in $src: check llamacpp_native_source_subdir" >&2; exit 1; }
# The prebuilt web UI would be downloaded at configure time: not on an air-gapped host.
cmake -S "$src" -B "$work/cmake" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_CURL=OFF "$@" >"$work/cmake.log" 2>&1 \
  || { tail -n 40 "$work/cmake.log" >&2; exit 1; }
cmake --build "$work/cmake" --config Release --target llama-server -j "$jobs" >"$work/build.log" 2>&1 \
  || { tail -n 40 "$work/build.log" >&2; exit 1; }
install -m 0755 "$work/cmake/bin/llama-server" "$work/llama-server"
rm -rf "$work/src" "$work/cmake"
mv "$work" "$build"
