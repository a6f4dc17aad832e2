"""Every byte-level BPE pre-tokenizer kiln supports (tokenizer.ggml.pre), against llama.cpp.

kiln's table of pre-tokenizer names (runtime/llm/ByteLevelPreTokenizers.cpp) is learned
from kiln itself: a vocabulary naming an unknown pre-tokenizer must fail to load with an
error that names the value and lists the supported names. For each name, the test writes
a copy of GPT-2's vocabulary (llama.cpp's ggml-vocab-gpt-2.gguf) with tokenizer.ggml.pre
set to it, and kiln's ids (libkiln_runtime's kiln_tokenizer_encode_with_options, through
ctypes) must equal llama.cpp's (llama-cpp-python's Llama(vocab_only=True).tokenize) for
every string below: the text alone, and with special tokens added and parsed. Copies
without BOS/EOS ids or with add_bos_token false check the flags that differ by name, and
the names llama.cpp knows that kiln does not support must be rejected naming the value.

Skipped (exit 77) with the reason when llama_cpp or gguf is not importable.

usage: pretokenizers_vs_llamacpp.py LIBKILN_RUNTIME GPT2_VOCAB.gguf WORK_DIR
"""
import ctypes
import os
import sys

SKIP = 77

# Names llama.cpp's loader knows that kiln rejects: they are not byte-level (the words
# are raw UTF-8 with spaces as U+2581, or only split at whitespace) and need a tokenizer
# model kiln does not have.
UNSUPPORTED = ["gemma4", "granite-embed-multi-311m", "sarvam-moe", "whitespace"]

STRINGS = [
    "",
    " ",
    "Hello world",
    " Hello world",
    "Hello World! HELLO WORLD hello world HeLLo wORLD",
    "I'm sure they've said we'll go, don't you? It's John's; THEY'RE 'QUOTED' 'S 'T 'Re 'Ll",
    "McDonald's iPhone XMLHttpRequest camelCaseWord snake_case_word",
    "1 12 123 1234 12345 123456 1234567 12345678 123456789 1234567890",
    "3.14159 2,718 1e-10 -42 +7 $100 50% 1,000,000 10:30",
    "a1b22c333d4444e55555",
    "punctuation!!! ??? ... --- ;;; \"quotes\" (parens) [brackets] {braces} <angles>",
    "~tilde `backtick` ^caret |pipe| @at #hash &amp *star =eq +plus \\back/slash",
    "Les \u00e9l\u00e8ves \u00e9tudient \u00e0 l'\u00e9cole; \u00dcber die Br\u00fccke, na\u00efve caf\u00e9",
    "combining e\u0301 a\u0300 n\u0303 o\u0308 marks",
    "\u0395\u039b\u039b\u0397\u039d\u0399\u039a\u0391 \u03b5\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac \u0420\u0443\u0441\u0441\u043a\u0438\u0439 \u0422\u0415\u041a\u0421\u0422",
    "\u4e1c\u4eac\u662f\u65e5\u672c\u7684\u9996\u90fd\u3002\u5317\u4eac\u6b22\u8fce\u4f60\uff01\u4e2d\u6587\uff0c\u6807\u70b9\u3002",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3067\u3059\u3001\u30ab\u30bf\u30ab\u30ca\u3068\u3072\u3089\u304c\u306a",
    "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8 \u3131\u3134\u3137 \u3105\u3106\u3107",
    "\u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22 \u0939\u093f\u0928\u094d\u0926\u0940 \u092a\u093e\u0920\u0964 \u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645\u060c \u0627\u0631\u062f\u0648\u06d4",
    "Mixed \u4e2d\u6587 and English with numbers 123 and \u65e5\u672c 45",
    "fullwidth \uff01\uff1f\uff08\uff09 \uff21\uff22\uff23 \uff11\uff12\uff13 \u2018curly\u2019 \u201cdouble\u201d \u2026 \u2014",
    "emoji \U0001F642\U0001F680\U0001F44D\U0001F3FD and \U0001F468\u200d\U0001F469\u200d\U0001F467 \u2764\ufe0f",
    "symbols \u00a9\u00ae\u2122 \u2260 \u2264 \u2265 \u2211 \u221e \u2192 \u2190 \u00b2\u00b3 \u00bd \u2160\u2161",
    "def f(x):\n    return x ** 2  # square\n",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}\n",
    "<div class=\"x\"><span>text</span></div>\n<ul><li>item</li></ul>",
    "https://example.com/path/to?query=1&b=2#frag user@example.org",
    "a\tb\t\tc\t\t\td",
    "line one\nline two\n\nline three\n\n\n\nend\r\nwindows\r\n\r\n",
    "\n",
    "\n\n\n",
    " \n \n  \n",
    "\t\t\t\t",
    "trailing spaces   ",
    "   leading spaces",
    "multiple    internal     spaces      and\t \ttabs",
    "\u00a0non-breaking\u00a0space\u3000ideographic\u2003em\u2028line",
    "zero\u200bwidth\u200djoiner\ufeffbom",
    "control\x01chars\x7f here\x1f",
    "x" * 300,
    " " * 20 + "twenty spaces then " + " " * 600 + "six hundred",
    "The quick brown fox jumps over the lazy dog. " * 20,
    "<sentinel:12> IMGIMGABZ IMGIMGAAAAAZ IMGIMGJZ",
    "T\u00fcrkiye'nin ba\u015fkenti Ankara'd\u0131r.",
    "<|endoftext|> text <|endoftext|>more",
    "\U00020000\U0002A700 \u3400 \uf900 \u9fa6\u9fff",
    # Edges of the regexes: case and marks, numbers that are not ASCII digits, whitespace
    # before other scripts, contractions without a word, long runs.
    "\u00c9COLE \u00e9cole \u00c9cOLE \u01c5ungla \u02b0aspirated \u0301\u0302 x\u0301",
    "\u0663\u0664\u0665\u0666 \u2460\u2461\u2462 \u216b abc1234567def " + "7" * 50,
    "'s's 'S ' s ''ll 'LL 're're x'y don't",
    "end   \u4e2d   \u4e2d\n\n  \r \r\n\t\n  ",
    "Hello world foo bar a b c d e \u00e9 \u00e8 done",
    ".\n\n!!!???...\n;\n\n\n:",
    "IMGIMGABCDEZ <sentinel:> <sentinel:007>",
    # Spaces that llama.cpp's literal ranges do not take (U+2028 and U+3000 lie inside
    # DeepSeek's U+0800-U+4E00).
    "a  \u2028\u0663 -] \u3000\u3001 \u2028 \u3000",
]


class Kiln:
    def __init__(self, library):
        lib = ctypes.CDLL(library)
        p, size = ctypes.c_void_p, ctypes.c_size_t
        lib.kiln_status_message.restype = ctypes.c_char_p
        lib.kiln_status_message.argtypes = [p]
        lib.kiln_status_free.argtypes = [p]
        lib.kiln_tokenizer_load.restype = p
        lib.kiln_tokenizer_load.argtypes = [ctypes.c_char_p, ctypes.POINTER(p)]
        lib.kiln_tokenizer_release.argtypes = [p]

        class Options(ctypes.Structure):
            _fields_ = [("add_special_tokens", ctypes.c_int), ("parse_special", ctypes.c_int),
                        ("truncate", ctypes.c_int), ("max_length", size)]

        lib.kiln_tokenizer_encode_options_init.argtypes = [ctypes.POINTER(Options)]
        lib.kiln_tokenizer_encode_with_options.restype = p
        lib.kiln_tokenizer_encode_with_options.argtypes = [
            p, ctypes.c_char_p, size, ctypes.POINTER(Options), ctypes.POINTER(ctypes.c_int32),
            size, ctypes.POINTER(size)]
        self.lib, self.Options = lib, Options

    def load(self, path):
        """The tokenizer handle, or the error message."""
        handle = ctypes.c_void_p()
        status = self.lib.kiln_tokenizer_load(path.encode(), ctypes.byref(handle))
        if status:
            message = self.lib.kiln_status_message(status).decode()
            self.lib.kiln_status_free(status)
            return None, message
        return handle, None

    def encode(self, handle, text, special):
        options = self.Options()
        self.lib.kiln_tokenizer_encode_options_init(ctypes.byref(options))
        options.add_special_tokens = options.parse_special = int(special)
        data = text.encode()
        count = ctypes.c_size_t()
        capacity = 4 * len(data) + 8
        ids = (ctypes.c_int32 * capacity)()
        status = self.lib.kiln_tokenizer_encode_with_options(
            handle, data, len(data), ctypes.byref(options), ids, capacity, ctypes.byref(count))
        if status:
            message = self.lib.kiln_status_message(status).decode()
            self.lib.kiln_status_free(status)
            raise RuntimeError(message)
        return list(ids[:count.value])

    def release(self, handle):
        self.lib.kiln_tokenizer_release(handle)


class VocabCopies:
    """Writes copies of a GGUF vocabulary with some keys changed or removed."""

    def __init__(self, gguf, source, directory):
        self.gguf, self.directory = gguf, directory
        reader = gguf.GGUFReader(source)
        self.fields = []
        for name, field in reader.fields.items():
            if name.startswith("GGUF.") or name == "general.architecture":
                continue
            vtype = field.types[0]
            sub = field.types[1] if vtype == gguf.GGUFValueType.ARRAY else None
            self.fields.append((name, field.contents(), vtype, sub))
        self.architecture = reader.fields["general.architecture"].contents()

    def write(self, label, changes):
        """changes: key -> (value, GGUFValueType) or None to drop the key."""
        path = os.path.join(self.directory, f"vocab-{label}.gguf")
        writer = self.gguf.GGUFWriter(path, arch=self.architecture)
        for name, value, vtype, sub in self.fields:
            if name in changes:
                if changes[name] is None:
                    continue
                value, vtype = changes[name]
                sub = None
            writer.add_key_value(name, value, vtype, sub_type=sub)
        for name, change in changes.items():
            if change is not None and all(name != field[0] for field in self.fields):
                writer.add_key_value(name, change[0], change[1])
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        return path

    def with_pre(self, pre, changes=None):
        label = pre + "".join("-" + key.rsplit(".", 1)[-1] for key in changes or {})
        changes = {**(changes or {}), "tokenizer.ggml.pre": (pre, self.gguf.GGUFValueType.STRING)}
        return self.write(label, changes)


def compare(kiln, Llama, path, label, strings):
    """Returns (matched, total, failure lines) for the strings, plain and with special tokens."""
    handle, error = kiln.load(path)
    if handle is None:
        return 0, 2 * len(strings), [f"  kiln cannot load it: {error}"]
    reference = Llama(model_path=path, vocab_only=True, verbose=False)
    failures, total = [], 0
    try:
        for text in strings:
            for special in (False, True):
                total += 1
                expected = reference.tokenize(text.encode(), add_bos=special, special=special)
                got = kiln.encode(handle, text, special)
                if expected != got:
                    failures.append(f"  special={special} {text[:50]!r}\n    llama.cpp {expected[:24]}\n"
                                    f"    kiln      {got[:24]}")
    finally:
        kiln.release(handle)
    return total - len(failures), total, failures


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    library, vocab, directory = sys.argv[1:]
    try:
        from llama_cpp import Llama
        import gguf
    except ImportError as error:
        print(f"SKIP: {error}; scripts/setup.sh installs llama-cpp-python and gguf into the test venv")
        return SKIP
    os.makedirs(directory, exist_ok=True)
    kiln = Kiln(library)
    copies = VocabCopies(gguf, vocab, directory)
    ok = True

    # The supported names, from the error for one kiln does not know.
    unknown = "no-such-pre-tokenizer"
    path = copies.with_pre(unknown)
    handle, error = kiln.load(path)
    os.remove(path)
    marker = "is not supported; supported: "
    if handle is not None or f"'{unknown}'" not in error or marker not in error:
        print(f"FAIL: an unknown pre-tokenizer must be an error naming it and listing the "
              f"supported ones; got {error!r}")
        return 1
    names = error.split(marker, 1)[1].split(", ")
    print(f"kiln supports {len(names)} pre-tokenizer names")

    for name in UNSUPPORTED:
        path = copies.with_pre(name)
        handle, error = kiln.load(path)
        if handle is not None or f"'{name}'" not in error:
            print(f"FAIL: {name}: kiln must reject it naming the value; got {error!r}")
            ok = False
        Llama(model_path=path, vocab_only=True, verbose=False)  # llama.cpp knows it
        os.remove(path)

    cases = [(name, {}) for name in names]
    # BOS by name: llama3 and tekken add one by default, unless the file says not to; with
    # no BOS id in the file, byte-level BPE's is token 11, except for the GLM names.
    add_bos = "tokenizer.ggml.add_bos_token"
    no_ids = {"tokenizer.ggml.bos_token_id": None, "tokenizer.ggml.eos_token_id": None}
    cases += [("llama3", {add_bos: (False, gguf.GGUFValueType.BOOL)}),
              ("llama3", no_ids), ("tekken", no_ids), ("chatglm-bpe", no_ids), ("glm4", no_ids),
              ("gpt-2", {add_bos: (True, gguf.GGUFValueType.BOOL), **no_ids})]
    failed = []
    for name, changes in cases:
        path = copies.with_pre(name, changes)
        label = name + "".join(f" {key.rsplit('.', 1)[-1]}={'absent' if v is None else v[0]}"
                               for key, v in changes.items())
        try:
            matched, total, failures = compare(kiln, Llama, path, label, STRINGS)
        except Exception as error:  # llama.cpp refusing a name kiln claims
            matched, total, failures = 0, 2 * len(STRINGS), [f"  {error}"]
        os.remove(path)
        print(f"{label}: {matched}/{total} match llama.cpp")
        for failure in failures[:6]:
            print(failure)
        if failures:
            failed.append(label)
    if failed:
        print(f"FAIL: {len(failed)} cases differ from llama.cpp: {', '.join(failed)}")
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
