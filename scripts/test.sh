#!/usr/bin/env bash
# README command 2 (and CI): set everything up, then run the whole test suite (lit +
# FileCheck and GoogleTest, all through ctest, which prints the summary). With CI=true,
# the sanitizer suite (scripts/sanitize.sh) follows; `test.sh --sanitize` runs only that.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${KILN_BUILD_DIR:-$ROOT/build}"
"$ROOT/scripts/setup.sh"
# The suite compiles with default schedules, never the user's tuned ones
# (~/.cache/kiln/tuning.sqlite): a database file that does not exist is read as empty.
export KILN_TUNING_DB="$BUILD_DIR/test/no-tuning-database.sqlite"
if [[ ${1:-} == --sanitize ]]; then
  exec bash "$ROOT/scripts/sanitize.sh"
fi
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)"
if [[ ${CI:-} == true ]]; then
  bash "$ROOT/scripts/sanitize.sh"
fi
