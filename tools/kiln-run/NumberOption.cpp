// Parsing integer option values, shared by kiln-run and the conformance runner.
#include "NumberOption.h"

#include <cerrno>
#include <cstdlib>
#include <limits>

namespace kiln::tools {

Expected<int> parseCount(const std::string &option, const std::string &value, int minimum) {
  char *end = nullptr;
  errno = 0;
  long number = std::strtol(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || errno != 0 || number < minimum ||
      number > std::numeric_limits<int>::max())
    return Error{option + " expects an integer >= " + std::to_string(minimum) + ", got '" +
                 value + "'"};
  return static_cast<int>(number);
}

} // namespace kiln::tools
