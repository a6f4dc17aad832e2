// Parsing integer option values, shared by kiln-run and the conformance runner.
#ifndef KILN_TOOLS_NUMBEROPTION_H
#define KILN_TOOLS_NUMBEROPTION_H

#include "Expected.h"

#include <string>

namespace kiln::tools {

// `value` as an int >= `minimum`; the error names `option` and the bad value.
Expected<int> parseCount(const std::string &option, const std::string &value, int minimum);

} // namespace kiln::tools

#endif // KILN_TOOLS_NUMBEROPTION_H
