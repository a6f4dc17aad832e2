"""RWKV's "world" tokenizer (tokenizer.ggml.model = rwkv): kiln's ids must equal
llama.cpp's for every string, and decoding must give the text back.

The vocabulary is written here as llama.cpp's converter writes the world vocabulary
(convert_hf_to_gguf's _set_vocab_rwkv_world): token 0 is the control token <s>, then
each token's bytes as Python's repr without the b'' (so \\xNN, \\n, \\t, \\\\, \\'
escapes); its tokens are every single byte, words with and without a leading space,
runs of spaces, newlines and tabs, UTF-8 words, quotes and backslashes, and prefixes of
one another (the trie's longest match must win over shorter ones). It is a vocabulary
of the real format, not the real one (which is not installed here). The reference is
llama-cpp-python (Llama(vocab_only=True).tokenize) on the same file, with and without
parse_special (with add_special: the world vocabulary adds no BOS); decoding
(kiln-tokenize --decode) must give back each string without control-token text.

usage: rwkv_vs_llamacpp.py KILN_TOKENIZE WORK_DIR
"""
import os
import subprocess
import sys

SKIP = 77

WORDS = ["the", "Hello", "hello", "world", "World", "ing", "tion", "er", "th", "he", "in",
         "ell", "Hell", "wor", "wo", "don't", "can't", 'say "hi"', "'\"", "a\\b", "\\",
         "\\n", "élèves", "école", "é", "東京", "東", "日本", "🙂", "🚀", "中文", "Привет",
         "def", "return", "int", "++", "==", "->", "://", "com", "https", "1234", "12", "3.14",
         "Les", "<", ">", "</", "div", "span"]
RUNS = ["  ", "   ", "    ", "\n", "\n\n", "\n\n\n", "\t", "\t\t", " \n", "\r\n"]

STRINGS = [
    "", " ", "Hello world", " Hello world", "Hello World!", "hello, world. How are you?",
    "I'm sure they've said we'll go, don't you? can't", 'she said "hi" and \'bye\'',
    "Les élèves étudient à l'école", "東京は日本の首都。中文，标点。", "Привет мир",
    "emoji 🙂🚀👍🏽 and 👨‍👩‍👧", "def f(x):\n    return x ** 2  # square\n",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}", "a\\b \\n \\\\ backslashes",
    "line one\r\nline two\n\n\nend", "\n\n\n\n", "\t\t\t", "https://example.com/path?x=1",
    "<div><span>text</span></div>", "1234567890 3.14159", "\x01\x02 control bytes \x7f",
    "trailing spaces    ", "the<s>start", "Hellooo Helloworld wor wo w",
]


def escaped(token: bytes) -> str:
    return repr(token)[2:-1]


def write_vocab(path):
    import gguf
    tokens = ["<s>"] + [escaped(bytes([b])) for b in range(256)]
    seen = set(tokens)
    for word in WORDS + RUNS:
        for text in (word, " " + word):
            token = escaped(text.encode())
            if token not in seen:
                seen.add(token)
                tokens.append(token)
    w = gguf.GGUFWriter(path, "rwkv6")
    w.add_context_length(1 << 20)
    w.add_embedding_length(64)
    w.add_block_count(1)
    w.add_feed_forward_length(96)
    w.add_head_count(0)
    w.add_wkv_head_size(16)
    w.add_time_mix_extra_dim(8)
    w.add_time_decay_extra_dim(16)
    w.add_rescale_every_n_layers(0)
    w.add_token_shift_count(2)
    w.add_layer_norm_eps(1e-5)
    w.add_tokenizer_model("rwkv")
    w.add_token_list(tokens)
    w.add_token_types([gguf.TokenType.CONTROL] + [gguf.TokenType.NORMAL] * (len(tokens) - 1))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return len(tokens)


def kiln(tokenize, *args):
    ran = subprocess.run([tokenize, *args], capture_output=True)
    if ran.returncode != 0:
        raise RuntimeError(ran.stderr.decode(errors="replace"))
    return ran.stdout


def main():
    tokenize, work = sys.argv[1], sys.argv[2]
    try:
        from llama_cpp import Llama
    except ImportError:
        print("SKIP: llama_cpp is not installed")
        return SKIP
    os.makedirs(work, exist_ok=True)
    path = os.path.join(work, "rwkv-world-vocab.gguf")
    count = write_vocab(path)
    llm = Llama(model_path=path, vocab_only=True, verbose=False)
    failures = 0
    for text in STRINGS:
        for special in (False, True):
            flags = ["--special"] + (["--parse-special"] if special else [])
            got = [int(t) for t in kiln(tokenize, *flags, path, "--", text).split()]
            want = llm.tokenize(text.encode(), add_bos=True, special=special)
            if got != want:
                failures += 1
                print(f"FAIL {text!r} (parse_special={special}): kiln {got}, llama.cpp {want}")
        # Control tokens decode to nothing; "<s>" in the text is matched by the trie
        # even without parse_special (as llama.cpp does), so such text does not round-trip.
        ids = llm.tokenize(text.encode(), add_bos=False, special=False)
        if ids and "<s>" not in text:
            back = kiln(tokenize, path, "--decode", *map(str, ids))
            if back != text.encode() + b"\n":
                failures += 1
                print(f"FAIL decoding {ids}: {back!r}, expected {text!r}")
    print(f"{'PASS' if not failures else 'FAIL'}: {len(STRINGS)} strings, encoded with and "
          f"without parse_special and decoded ({count} tokens): {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
