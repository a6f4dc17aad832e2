// Running a compiled ONNX test model on each of its data sets and comparing the outputs
// with the expected ones.
#ifndef KILN_CONFORMANCE_DATASETCHECK_H
#define KILN_CONFORMANCE_DATASETCHECK_H

#include "TestResult.h"

#include <string>

namespace kiln::conformance {

// Loads `artifactPath`, feeds every test_data_set_* of `testDirectory` to its first
// entry point (inputs by position) and compares every output. Pass, or fail with the
// first problem found. A kernel that crashes takes the calling process with it, so the
// runner calls this in a child process.
TestResult checkDataSets(const std::string &artifactPath, const std::string &testDirectory,
                         int numThreads);

} // namespace kiln::conformance

#endif // KILN_CONFORMANCE_DATASETCHECK_H
