// base/json_depth.h — refuses deeply nested JSON before it is parsed: nesting costs stack in
// every recursive walk (copy, dump, compare), so untrusted text is checked first.
// Thread-safety: pure function.
#pragma once

#include <cstddef>
#include <string_view>

namespace onemcp {

inline constexpr size_t kMaxJsonDepth = 64;

// True when no array/object in `text` nests deeper than `max_depth` (strings are skipped; the
// text need not be valid JSON).
bool json_depth_within(std::string_view text, size_t max_depth = kMaxJsonDepth);

}  // namespace onemcp
