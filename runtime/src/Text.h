// Building error messages without iostreams: cat("buffer ", 3, " is ", name).
#ifndef KILN_RUNTIME_TEXT_H
#define KILN_RUNTIME_TEXT_H

#include <cstdint>
#include <cstdio>
#include <string>
#include <type_traits>

namespace kiln {

template <typename... Parts> std::string cat(const Parts &...parts) {
  std::string text;
  auto append = [&text](const auto &part) {
    if constexpr (std::is_integral_v<std::decay_t<decltype(part)>>)
      text += std::to_string(part);
    else
      text += part;
  };
  (append(parts), ...);
  return text;
}

inline std::string hex(uint64_t value) {
  char text[19];
  std::snprintf(text, sizeof text, "0x%016llx", static_cast<unsigned long long>(value));
  return text;
}

} // namespace kiln

#endif // KILN_RUNTIME_TEXT_H
