// Owning wrappers of the runtime API's handles for the C++ tests, so a failed
// assertion leaks nothing, and EXPECT_OK for calls that must succeed.
#ifndef KILN_TEST_RUNTIME_APIHANDLES_H
#define KILN_TEST_RUNTIME_APIHANDLES_H

#include <kiln/runtime.h>

#include <gtest/gtest.h>
#include <memory>
#include <string>

namespace kiln::test {

struct StatusFree {
  void operator()(kiln_status_object *s) const { kiln_status_free(s); }
};
using Status = std::unique_ptr<kiln_status_object, StatusFree>;
struct RuntimeRelease {
  void operator()(kiln_runtime *r) const { kiln_runtime_release(r); }
};
struct ModuleRelease {
  void operator()(kiln_module *m) const { kiln_module_release(m); }
};
struct SessionRelease {
  void operator()(kiln_session *s) const { kiln_session_release(s); }
};
using Runtime = std::unique_ptr<kiln_runtime, RuntimeRelease>;
using Module = std::unique_ptr<kiln_module, ModuleRelease>;
using Session = std::unique_ptr<kiln_session, SessionRelease>;

inline std::string message(const Status &status) { return kiln_status_message(status.get()); }

} // namespace kiln::test

#define EXPECT_OK(call)                                                                   \
  do {                                                                                    \
    ::kiln::test::Status status_(call);                                                   \
    ASSERT_EQ(status_, nullptr) << kiln_status_message(status_.get());                    \
  } while (0)

#endif // KILN_TEST_RUNTIME_APIHANDLES_H
