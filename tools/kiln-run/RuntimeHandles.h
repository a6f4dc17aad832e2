// Owning C++ handles for the runtime's C objects, and kiln_status turned into an Error:
// the host tools' side of the C API boundary.
#ifndef KILN_TOOLS_RUNTIMEHANDLES_H
#define KILN_TOOLS_RUNTIMEHANDLES_H

#include "Expected.h"
#include "kiln/runtime.h"

#include <memory>
#include <string>

namespace kiln::tools {

using RuntimeHandle = std::unique_ptr<kiln_runtime, decltype(&kiln_runtime_release)>;
using ModuleHandle = std::unique_ptr<kiln_module, decltype(&kiln_module_release)>;
using SessionHandle = std::unique_ptr<kiln_session, decltype(&kiln_session_release)>;

// A failed status as an Error ("CONTEXT: MESSAGE"), freeing the status; nullopt for
// success.
inline MaybeError statusError(kiln_status status, const std::string &context) {
  if (!status)
    return std::nullopt;
  Error error{context + ": " + kiln_status_message(status)};
  kiln_status_free(status);
  return error;
}

// A runtime of `numThreads` kernel threads (0: one per CPU) on `device` ("cpu", "cuda").
inline Expected<RuntimeHandle> createRuntime(int numThreads, const std::string &device = "cpu") {
  kiln_runtime_options options;
  kiln_runtime_options_init(&options);
  options.num_threads = numThreads;
  options.device = device.c_str();
  kiln_runtime *runtime = nullptr;
  if (MaybeError error =
          statusError(kiln_runtime_create(&options, &runtime), "cannot create the runtime"))
    return *error;
  return RuntimeHandle(runtime, kiln_runtime_release);
}

inline Expected<ModuleHandle> loadModule(kiln_runtime *runtime, const std::string &path) {
  kiln_module *module = nullptr;
  if (MaybeError error = statusError(kiln_module_load_file(runtime, path.c_str(), &module),
                                     "cannot load the artifact"))
    return *error;
  return ModuleHandle(module, kiln_module_release);
}

inline Expected<SessionHandle> createSession(kiln_module *module, size_t entryPoint) {
  kiln_session *session = nullptr;
  if (MaybeError error = statusError(kiln_session_create(module, entryPoint, &session),
                                     "cannot create a session"))
    return *error;
  return SessionHandle(session, kiln_session_release);
}

} // namespace kiln::tools

#endif // KILN_TOOLS_RUNTIMEHANDLES_H
