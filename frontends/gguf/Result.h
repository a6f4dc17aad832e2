// Result<T>: a value or an error message, the error-as-value type of kiln's plain C++
// libraries (the GGUF reader, the tokenizers) that link no LLVM.
#ifndef KILN_FRONTENDS_GGUF_RESULT_H
#define KILN_FRONTENDS_GGUF_RESULT_H

#include <string>
#include <utility>
#include <variant>

namespace kiln {

// The error alternative of a Result; constructing one from a message is explicit so a
// std::string value cannot silently become an error.
struct Error {
  std::string message;
};

template <typename T> class Result {
public:
  Result(T value) : state(std::in_place_index<0>, std::move(value)) {}
  Result(Error error) : state(std::in_place_index<1>, std::move(error)) {}

  explicit operator bool() const { return state.index() == 0; }
  T &operator*() { return std::get<0>(state); }
  const T &operator*() const { return std::get<0>(state); }
  T *operator->() { return &std::get<0>(state); }
  const T *operator->() const { return &std::get<0>(state); }
  const std::string &error() const { return std::get<1>(state).message; }
  // Moves the error out, to pass it up with a different value type.
  Error takeError() { return std::move(std::get<1>(state)); }

private:
  std::variant<T, Error> state;
};

} // namespace kiln

#endif // KILN_FRONTENDS_GGUF_RESULT_H
