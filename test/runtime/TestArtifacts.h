// Small artifacts for the runtime's tests, the embed example's test and the fuzzer's
// seeds, built with the writer around the TestKernels.c code object.
#ifndef KILN_TEST_RUNTIME_TESTARTIFACTS_H
#define KILN_TEST_RUNTIME_TESTARTIFACTS_H

#include "ArtifactWriter.h"

#include <string>
#include <vector>

namespace kiln::test {

std::vector<uint8_t> readFile(const std::string &path);

// "main": sum = a + b + bias, all f32[2x3]; outputs sum (arena), sum_flat (an f32[6]
// alias of sum) and bias (a weight, bias[k] = 100 + k). Kernels: add, scale2.
artifact::ArtifactWriter makeAddArtifact(const std::vector<uint8_t> &code);

// "main": one dispatch of `kernel` over fresh Input buffers of `inputs` followed by
// Arena buffers of `outputs`, which are the entry point's outputs.
artifact::ArtifactWriter makeSingleKernelArtifact(const std::vector<uint8_t> &code,
                                                  const std::string &kernel,
                                                  const std::vector<artifact::TensorDesc> &inputs,
                                                  const std::vector<artifact::TensorDesc> &outputs);

// Recomputes the checksum of every section inside the file and the header checksum,
// so tests can reach the checks behind the checksums.
void reseal(std::vector<uint8_t> &file);

} // namespace kiln::test

#endif // KILN_TEST_RUNTIME_TESTARTIFACTS_H
