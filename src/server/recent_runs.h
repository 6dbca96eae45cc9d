// server/recent_runs.h — the recent run_js / run_py calls of each authenticated principal, kept
// in memory for GET /runs (the web page's history): the arguments to run each again, with the
// values of `env` and the session handle left out, and its outcome, exit code, duration and the
// beginning of its output. Bounded per principal in count and bytes, and in principals.
// Thread-safety: RecentRuns may be used from any thread; recent_run_entry() is pure.
#pragma once

#include <cstddef>
#include <deque>
#include <list>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>

namespace onemcp::server {

struct RecentRunsLimits {
  size_t runs = 20;                   // per principal, the oldest forgotten first
  size_t bytes = 256u << 10;          // per principal (serialized entries)
  size_t principals = 64;             // beyond: the least recently active one is forgotten
  size_t output_bytes = 4u << 10;     // of stdout, stderr and value each
  size_t argument_bytes = 64u << 10;  // code and stdin; a longer one is left out
};

// The entry of one call of `tool` with `arguments` (as the client sent them) whose result had
// `structured` (its structuredContent). `at`: milliseconds since the epoch.
nlohmann::json recent_run_entry(const std::string& tool, const nlohmann::json& arguments,
                                const nlohmann::json& structured, int64_t at,
                                const RecentRunsLimits& limits = {});

class RecentRuns {
 public:
  explicit RecentRuns(RecentRunsLimits limits = {}) : limits_(limits) {}
  const RecentRunsLimits& limits() const { return limits_; }

  void add(const std::string& principal, nlohmann::json entry);
  // `principal`'s runs, the newest first (an empty array for a principal with none).
  nlohmann::json list(const std::string& principal) const;

 private:
  struct Kept {
    std::deque<std::pair<nlohmann::json, size_t>> runs;  // newest first, with their sizes
    size_t bytes = 0;
    std::list<std::string>::iterator recent;
  };
  const RecentRunsLimits limits_;
  mutable std::mutex mu_;          // guards what follows
  std::list<std::string> recent_;  // principals, the most recently active first
  std::unordered_map<std::string, Kept> by_principal_;
};

}  // namespace onemcp::server
