#!/usr/bin/env bash
# Installs everything kiln needs on Debian 12, then configures and builds it.
# Idempotent: packages already present are skipped, the build is incremental and
# compiler output is cached by ccache outside the clone (~/.cache/ccache).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${KILN_BUILD_DIR:-$ROOT/build}"

PACKAGES=(
  # toolchain
  cmake ninja-build ccache g++ clang-22 lld-22 libclang-rt-22-dev python3 python3-venv
  # MLIR / LLVM 22 and its test tools (lit, FileCheck, not)
  llvm-22-dev libmlir-22-dev mlir-22-tools llvm-22-tools
  # kernel generation
  libhalide14-0-dev
  # ONNX import and its conformance data
  libonnx-dev libprotobuf-dev protobuf-compiler libonnx-testdata
  # serialization, JSON, tuning database, unit tests
  libflatbuffers-dev flatbuffers-compiler nlohmann-json3-dev libsqlite3-dev libxxhash-dev
  libgtest-dev libgmock-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "kiln setup: installing ${missing[*]}"
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "kiln setup: all Debian packages present"
fi

export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
# Paths relative to the clone, so a fresh clone elsewhere still hits the cache.
export CCACHE_BASEDIR="$ROOT" CCACHE_NOHASHDIR=1
mkdir -p "$CCACHE_DIR"
ccache --max-size=5G >/dev/null

# The test oracles (numpy, onnx, onnxruntime) live in a venv outside the clone, keyed
# by the requirements' hash, so a fresh clone reuses it and a change rebuilds it.
REQUIREMENTS="$ROOT/test/requirements.txt"
VENV_KEY="$(sha256sum "$REQUIREMENTS" | cut -c1-16)"
KILN_VENV="${KILN_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/kiln/venv-$VENV_KEY}"
if [[ ! -x "$KILN_VENV/bin/python" ]]; then
  echo "kiln setup: creating the test venv $KILN_VENV"
  rm -rf "$KILN_VENV.partial"
  /usr/bin/python3 -m venv "$KILN_VENV.partial"
  "$KILN_VENV.partial/bin/pip" install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
  mv "$KILN_VENV.partial" "$KILN_VENV"
fi

cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang-22 -DCMAKE_CXX_COMPILER=clang++-22 \
  -DKILN_TEST_PYTHON="$KILN_VENV/bin/python" >/dev/null
cmake --build "$BUILD_DIR"
