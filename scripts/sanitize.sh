#!/usr/bin/env bash
# `scripts/test.sh --sanitize` (and CI after the main suite): the runtime side of kiln
# under sanitizers, in build trees of their own beside the ordinary one:
#   build-sanitize  ASan + UBSan: the runtime, readers, tokenizers and the tools that link
#                   only those (kiln-run, kiln-generate, kiln-embed, kiln-tokenize), their
#                   unit tests, the fuzzers from their seed corpora, e2e tests on small
#                   models;
#   build-tsan      TSan: the runtime and its thread tests.
# Every report is fatal. Models are compiled by the ordinary build's (unsanitized)
# kiln-compile, which scripts/setup.sh has built. Prints one ctest summary per build.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${KILN_BUILD_DIR:-$ROOT/build}"
VENV="$("$ROOT/scripts/setup.sh" --print-venv)"
JOBS="$(nproc)"
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}" CCACHE_BASEDIR="$ROOT" CCACHE_NOHASHDIR=1
[[ -x $BUILD_DIR/bin/kiln-compile ]] ||
  { echo "kiln sanitize: $BUILD_DIR/bin/kiln-compile is missing; run scripts/setup.sh" >&2; exit 1; }

# sanitized_build DIR SANITIZERS TARGET...: configures DIR with KILN_SANITIZE and builds
# only TARGETs (the compiler itself is never built sanitized); DIR/bin/kiln-compile is the
# ordinary build's.
sanitized_build() {
  local dir=$1 sanitizers=$2
  shift 2
  echo "kiln sanitize: building $dir (-fsanitize=$sanitizers)"
  cmake -S "$ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang-22 -DCMAKE_CXX_COMPILER=clang++-22 \
    -DKILN_TEST_PYTHON="$VENV/bin/python" -DKILN_SANITIZE="$sanitizers" >/dev/null
  mkdir -p "$dir/bin"
  ln -sfn "$BUILD_DIR/bin/kiln-compile" "$dir/bin/kiln-compile"
  ninja -C "$dir" -j "$JOBS" --quiet "$@"
}

ASAN_DIR="${KILN_SANITIZE_BUILD_DIR:-$ROOT/build-sanitize}"
TSAN_DIR="${KILN_TSAN_BUILD_DIR:-$ROOT/build-tsan}"
sanitized_build "$ASAN_DIR" address,undefined \
  kiln_runtime kiln_test_kernels kiln-run kiln-generate kiln-embed kiln-tokenize \
  kiln-runtime-tests kiln-make-test-artifact kiln-llm-c-api-test kiln-embedder-c-api-test \
  kiln-gguf-tests kiln-safetensors-tests kiln-tokenizer-tests kiln-llm-tests \
  kiln-tokenizer-c-api-test kiln-persistent-state-test kiln-concurrent-sessions-test \
  kiln-artifact-bitflip-test kiln-kernel-heap-tests kiln-device-tests \
  kiln-fuzz-loader kiln-fuzz-gguf kiln-fuzz-tokenizer-json kiln-fuzz-safetensors \
  kiln-fuzz-onnx-wire-format kiln-fuzz-seeds kiln-fuzz-gguf-seeds kiln-fuzz-safetensors-seeds
sanitized_build "$TSAN_DIR" thread \
  kiln_runtime kiln_test_kernels kiln-runtime-tests kiln-concurrent-sessions-test \
  kiln-kernel-heap-tests

failed=0
# Not here: the runtime library's dependency check (a sanitized library depends on the
# sanitizer runtime by design), the tests that load the library into Python, which is
# not sanitized, and the check of the cuBLAS declarations against CUDA's headers (it
# runs when it compiles; nothing to sanitize).
echo "kiln sanitize: ASan + UBSan"
ASAN_OPTIONS=halt_on_error=1:detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  ctest --test-dir "$ASAN_DIR" --output-on-failure -j "$JOBS" \
  -R '^(runtime|gguf|safetensors|tokenizers|llm|fuzz)\.|^e2e\.(persistent_state|concurrent_sessions|onnx_vs_onnxruntime|onnx_new_ir_version|kiln_ops_vs_numpy|generate_vs_numpy|generate_hf_vs_numpy|minilm_vs_numpy|thread_count_determinism)' \
  -E 'shared_library_needs_only_system_libraries|pretokenizers_vs_llamacpp|cublas_declarations_match_cuda_headers' || failed=1
echo "kiln sanitize: TSan"
TSAN_OPTIONS="halt_on_error=1:suppressions=$ROOT/test/runtime/tsan.supp" \
  ctest --test-dir "$TSAN_DIR" --output-on-failure -j "$JOBS" \
  -R 'RuntimeApi\.(sessions_of_one_module_run_concurrently|reports_.*_from_two_threads_at_once)|KernelHeap\.|^e2e\.concurrent_sessions' \
  || failed=1
exit $failed
