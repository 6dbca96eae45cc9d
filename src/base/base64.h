// base/base64.h — standard base64 (RFC 4648, with padding), for bytes inside JSON.
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace onemcp {

std::string base64_encode(std::string_view in);
// nullopt on characters outside the alphabet or bad padding.
std::optional<std::string> base64_decode(std::string_view in);

}  // namespace onemcp
