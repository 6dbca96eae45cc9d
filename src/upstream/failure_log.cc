#include "upstream/failure_log.h"

#include "base/log.h"

namespace onemcp::upstream {

std::optional<std::string> FailureLog::failed(const std::string& error,
                                              std::chrono::milliseconds retry_in,
                                              std::chrono::system_clock::time_point when) {
  if (failures_++ == 0) since_ = when;
  const std::string retry = "retrying in " + std::to_string(retry_in.count()) + " ms";
  if (failures_ == 1) return error + "; " + retry;
  if ((failures_ & (failures_ - 1)) != 0) return std::nullopt;  // not a power of two
  return error + "; failed " + std::to_string(failures_) + " times since " +
         log::timestamp(since_) + "; " + retry + " (next logged at failure " +
         std::to_string(failures_ * 2) + ")";
}

std::optional<std::string> FailureLog::recovered() {
  const uint64_t n = failures_;
  failures_ = 0;
  if (n < 2) return std::nullopt;
  return "up again after failing " + std::to_string(n) + " times since " + log::timestamp(since_);
}

}  // namespace onemcp::upstream
