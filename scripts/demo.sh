#!/usr/bin/env bash
# README command 1: set everything up, then compile the bundled ONNX model ahead of time
# and run the artifact on its bundled input.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${KILN_BUILD_DIR:-$ROOT/build}"
"$ROOT/scripts/setup.sh"

MODELS="$ROOT/examples/models"
OUT="$BUILD_DIR/demo"
mkdir -p "$OUT"
echo
echo "\$ kiln-compile examples/models/mlp.onnx -o $OUT/mlp.kiln"
"$BUILD_DIR/bin/kiln-compile" "$MODELS/mlp.onnx" -o "$OUT/mlp.kiln"
echo
echo "\$ kiln-run $OUT/mlp.kiln --input x=examples/models/mlp-input.npy"
"$BUILD_DIR/bin/kiln-run" "$OUT/mlp.kiln" --input "x=$MODELS/mlp-input.npy" \
  --output "probs=$OUT/probs.npy"
