#!/usr/bin/env bash
# README command 1: set everything up (packages, build, the test venv with the real
# models), then compile Gemma 3 270M ahead of time and stream a completion of a prompt
# with tokens/s. `scripts/demo.sh --onnx` instead compiles and runs the bundled ONNX MLP
# (no model download involved); `scripts/demo.sh "your prompt"` changes the prompt.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${KILN_BUILD_DIR:-$ROOT/build}"
"$ROOT/scripts/setup.sh"

if [[ "${1:-}" == "--onnx" ]]; then
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
  exit 0
fi

PROMPT="${1:-The three most important inventions of the last century are}"
GEMMA="$("$ROOT/scripts/model-path.sh" gemma)"
echo
echo "Gemma 3 270M is provided under the Gemma Terms of Use (https://ai.google.dev/gemma/terms)."
echo "\$ kiln-generate $GEMMA -p \"$PROMPT\" -n 64"
echo "  (the first run compiles the model into ~/.cache/kiln/models: a few minutes on 2 cores)"
"$BUILD_DIR/bin/kiln-generate" "$GEMMA" -p "$PROMPT" -n 64 --temp 0.7 --seed 42
