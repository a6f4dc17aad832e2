// Writes the runtime tests' add artifact (TestArtifacts.h) to a file, for the embed
// example's test and the fuzzer's seed corpus:
//   kiln-make-test-artifact CODE_OBJECT.so OUT.kiln
#include "TestArtifacts.h"

#include <cstdio>

int main(int argc, char **argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s CODE_OBJECT.so OUT.kiln\n", argv[0]);
    return 2;
  }
  std::vector<uint8_t> code = kiln::test::readFile(argv[1]);
  if (code.empty()) {
    std::fprintf(stderr, "%s: cannot read %s\n", argv[0], argv[1]);
    return 1;
  }
  if (kiln::artifact::ArtifactError err = kiln::test::makeAddArtifact(code).writeFile(argv[2])) {
    std::fprintf(stderr, "%s: %s\n", argv[0], err.message.c_str());
    return 1;
  }
  return 0;
}
