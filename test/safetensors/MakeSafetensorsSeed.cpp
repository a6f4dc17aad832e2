// Writes the safetensors fuzzer's seed: the reader tests' small valid file.
#include "SafetensorsTestWriter.h"

#include <cstdio>

int main(int argc, char **argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: kiln-make-safetensors-seed OUT.safetensors\n");
    return 2;
  }
  std::vector<uint8_t> bytes = kiln::safetensors::test::safetensorsBytes(
      kiln::safetensors::test::smallHeader(), kiln::safetensors::test::smallData());
  std::FILE *file = std::fopen(argv[1], "wb");
  if (!file || std::fwrite(bytes.data(), 1, bytes.size(), file) != bytes.size() ||
      std::fclose(file) != 0) {
    std::perror(argv[1]);
    return 1;
  }
  return 0;
}
