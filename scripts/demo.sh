#!/usr/bin/env bash
# README command 1: set everything up, then compile the bundled default model and print
# its kiln IR after the default pipeline.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${KILN_BUILD_DIR:-$ROOT/build}"
"$ROOT/scripts/setup.sh"
MODEL="$ROOT/examples/models/tiny-decoder.mlir"
echo "kiln: compiling $MODEL" >&2
"$BUILD_DIR/bin/kiln-compile" "$MODEL" --target=host --emit=mlir
