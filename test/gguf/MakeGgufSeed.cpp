// Writes a small valid GGUF file (every value type, two tensors, a tiny byte-level BPE
// vocabulary) for the GGUF reader fuzzer to start from: kiln-make-gguf-seed OUTPUT.
#include "GgufTestWriter.h"

#include <cstdio>
#include <fstream>

using namespace kiln::gguf::test;

int main(int argc, char **argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: kiln-make-gguf-seed OUTPUT\n");
    return 2;
  }
  GgufBytes nested;
  nested.put<uint32_t>(4).put<uint64_t>(1).put<uint32_t>(7);
  std::vector<uint8_t> bytes = writeGguf(
      {{"general.architecture", 8, stringPayload("llama")},
       {"general.alignment", 4, scalarPayload<uint32_t>(32)},
       {"u8", 0, scalarPayload<uint8_t>(1)},
       {"i8", 1, scalarPayload<int8_t>(-1)},
       {"u16", 2, scalarPayload<uint16_t>(2)},
       {"i16", 3, scalarPayload<int16_t>(-2)},
       {"i32", 5, scalarPayload<int32_t>(-3)},
       {"f32", 6, scalarPayload<float>(0.5f)},
       {"bool", 7, scalarPayload<uint8_t>(1)},
       {"u64", 10, scalarPayload<uint64_t>(4)},
       {"i64", 11, scalarPayload<int64_t>(-4)},
       {"f64", 12, scalarPayload<double>(0.25)},
       {"tokenizer.ggml.model", 8, stringPayload("gpt2")},
       {"tokenizer.ggml.tokens", 9, stringArrayPayload({"<unk>", "a", "b", "ab", "\xc4\xa0"})},
       {"tokenizer.ggml.merges", 9, stringArrayPayload({"a b", "\xc4\xa0 a"})},
       {"tokenizer.ggml.scores", 9, arrayPayload(6, 5, GgufBytes().put(0.f).put(-1.f).put(-1.f).put(-2.f).put(-1.f))},
       {"nested", 9, arrayPayload(9, 1, nested)}},
      {{"token_embd.weight", {32, 2}, 8, 0}, {"output_norm.weight", {4}, 0, 96}}, 96 + 16);
  std::ofstream out(argv[1], std::ios::binary);
  out.write(reinterpret_cast<const char *>(bytes.data()), std::streamsize(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "kiln-make-gguf-seed: cannot write %s\n", argv[1]);
    return 1;
  }
  return 0;
}
