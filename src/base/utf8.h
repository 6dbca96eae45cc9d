// base/utf8.h — makes arbitrary bytes valid UTF-8 (invalid sequences become U+FFFD).
// Thread-safety: pure function.
#pragma once

#include <string>
#include <string_view>

namespace onemcp {

std::string sanitize_utf8(std::string_view in);
bool is_valid_utf8(std::string_view in);

}  // namespace onemcp
