#!/usr/bin/env bash
# Prints the path of a real model installed by scripts/setup.sh, for scripts and ctest:
#   scripts/model-path.sh gemma    # the Gemma 3 270M Q4_K_M GGUF file
#   scripts/model-path.sh minilm   # the all-MiniLM-L6-v2 Hugging Face directory
# Exits 1 with a message naming the missing path when the model is not installed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if (($# != 1)); then
  echo "usage: scripts/model-path.sh {gemma,minilm}" >&2
  exit 2
fi
venv="$(bash "$ROOT/scripts/setup.sh" --print-venv)"
if [[ ! -x "$venv/bin/python" ]]; then
  echo "model-path.sh: no test venv at $venv; run \`bash scripts/setup.sh\`" >&2
  exit 1
fi
exec "$venv/bin/python" "$ROOT/test/models/kiln_models.py" path "$1"
