// What the C API's source files share at the boundary: the status object, the guard that
// turns a body's Error (or a C++ exception) into a kiln_status, and the handles that more
// than one file reaches into (the tokenizer, used by the embedder).
#ifndef KILN_RUNTIME_APIBOUNDARY_H
#define KILN_RUNTIME_APIBOUNDARY_H

#include "RuntimeError.h"
#include "Tokenizer.h"
#include "kiln/runtime.h"

#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

struct kiln_status_object {
  kiln_error code;
  const char *message; // points just past the object, or at a literal for kOutOfMemory
};

struct kiln_tokenizer {
  std::unique_ptr<kiln::llm::Tokenizer> tokenizer;
};

namespace kiln::runtime {

// Returned when even a status cannot be allocated; kiln_status_free skips it.
inline kiln_status_object kOutOfMemory = {KILN_ERROR_OUT_OF_MEMORY, "out of memory"};

inline kiln_status makeStatus(const Error &err) {
  size_t length = err.message.size();
  auto *status =
      static_cast<kiln_status_object *>(std::malloc(sizeof(kiln_status_object) + length + 1));
  if (!status)
    return &kOutOfMemory;
  char *text = reinterpret_cast<char *>(status + 1);
  std::memcpy(text, err.message.c_str(), length + 1);
  status->code = err.code;
  status->message = text;
  return status;
}

// A status from one of the API's own calls as an Error, `context` first (frees the
// status); no error for success.
inline Error takeStatus(kiln_status status, std::string_view context) {
  if (!status)
    return {};
  Error err{status->code, cat(context, ": ", status->message)};
  if (status != &kOutOfMemory)
    std::free(status);
  return err;
}

// Runs an API call's body; C++ exceptions (allocation failure) become statuses.
template <typename Body> kiln_status guarded(Body &&body) noexcept {
  try {
    Error err = body();
    return err ? makeStatus(err) : nullptr;
  } catch (const std::bad_alloc &) {
    return &kOutOfMemory;
  } catch (...) {
    return makeStatus(Error{KILN_ERROR_INTERNAL, "unexpected C++ exception in kiln"});
  }
}

inline Error nullArgument(const char *name) {
  return error(KILN_ERROR_INVALID_ARGUMENT, name, " is NULL");
}

} // namespace kiln::runtime

#endif // KILN_RUNTIME_APIBOUNDARY_H
