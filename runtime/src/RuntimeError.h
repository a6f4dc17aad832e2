// The runtime's internal error value: a kiln_error code and a message, turned into a
// kiln_status only at the C API boundary.
#ifndef KILN_RUNTIME_RUNTIMEERROR_H
#define KILN_RUNTIME_RUNTIMEERROR_H

#include "Text.h"
#include "kiln/runtime.h"

#include <string>

namespace kiln::runtime {

struct [[nodiscard]] Error {
  kiln_error code = KILN_ERROR_NONE;
  std::string message;
  explicit operator bool() const { return code != KILN_ERROR_NONE; }
};

template <typename... Parts> Error error(kiln_error code, const Parts &...parts) {
  return Error{code, cat(parts...)};
}

} // namespace kiln::runtime

#endif // KILN_RUNTIME_RUNTIMEERROR_H
