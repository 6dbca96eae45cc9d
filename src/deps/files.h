// deps/files.h — small file helpers of the dependency caches (npm.cc, pip.cc).
// Thread-safety: functions are safe to call concurrently on different paths.
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace onemcp::deps {

// A directory removed with everything in it when the scope ends.
struct TempDir {
  std::filesystem::path path;
  ~TempDir() {
    std::error_code ec;
    if (!path.empty()) std::filesystem::remove_all(path, ec);
  }
};

// The whole file, or nullopt when it cannot be read or is longer than `max` bytes.
std::optional<std::string> read_file(const std::filesystem::path& p, size_t max = 256u << 20);

// Creates or truncates `p` with `data`.
Status write_file(const std::filesystem::path& p, std::string_view data);

}  // namespace onemcp::deps
