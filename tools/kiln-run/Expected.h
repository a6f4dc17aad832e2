// Expected<T>: a value or an error message, the error-as-value type of kiln's host tools.
#ifndef KILN_TOOLS_EXPECTED_H
#define KILN_TOOLS_EXPECTED_H

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace kiln::tools {

struct Error {
  std::string message;
};

// An operation that produces nothing reports only its error; std::nullopt is success.
using MaybeError = std::optional<Error>;

template <typename T> class Expected {
public:
  Expected(T value) : storage(std::move(value)) {}
  Expected(Error error) : storage(std::move(error)) {}

  explicit operator bool() const { return std::holds_alternative<T>(storage); }
  T &operator*() { return std::get<T>(storage); }
  const T &operator*() const { return std::get<T>(storage); }
  T *operator->() { return &std::get<T>(storage); }
  const T *operator->() const { return &std::get<T>(storage); }
  const Error &error() const { return std::get<Error>(storage); }

private:
  std::variant<T, Error> storage;
};

} // namespace kiln::tools

#endif // KILN_TOOLS_EXPECTED_H
