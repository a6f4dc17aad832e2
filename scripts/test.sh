#!/usr/bin/env bash
# README command 2 (and CI): set everything up, then run the whole test suite (lit +
# FileCheck and GoogleTest, all through ctest, which prints the summary).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${KILN_BUILD_DIR:-$ROOT/build}"
"$ROOT/scripts/setup.sh"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)"
