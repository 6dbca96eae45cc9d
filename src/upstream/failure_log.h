// upstream/failure_log.h — which of an upstream's consecutive failures reach the log. One that
// stays down is retried every 30 s at most for as long as the server runs; a warning per attempt
// would bury everything else. So the first failure is logged, then the 2nd, 4th, 8th, ... (the
// intervals between lines grow with the backoff, then double), each saying how many times it
// failed since when; coming back after more than one failure is logged once.
// Thread-safety: none; one per upstream, used by its connection thread only. No I/O, no clock:
// the caller passes the time.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace onemcp::upstream {

class FailureLog {
 public:
  // Failure `error` at `when`, retried in `retry_in`: the warning to log, or nullopt.
  std::optional<std::string> failed(const std::string& error, std::chrono::milliseconds retry_in,
                                    std::chrono::system_clock::time_point when);
  // It is up again: a line to log when it had failed more than once, else nullopt. Resets.
  std::optional<std::string> recovered();
  uint64_t failures() const { return failures_; }

 private:
  uint64_t failures_ = 0;
  std::chrono::system_clock::time_point since_;
};

}  // namespace onemcp::upstream
