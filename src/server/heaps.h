// server/heaps.h — heap snapshots of npm dependency layers (runtimes/js/arena.h).
//
// The first run_js call with a layer costs one extra run that evaluates the layer into a memfd;
// the memfd is then sealed (no process can change it any more) and every later run with the same
// layer, argv, env and cwd maps it copy-on-write instead of parsing and evaluating the layer
// again. A layer that cannot be snapshotted (it prints, schedules work, throws while loading) is
// remembered and loaded by each run, as without snapshots. Least recently used heaps are dropped
// beyond a byte budget.
// Thread-safety: all members are safe to call from any thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "sandbox/executor.h"

namespace onemcp::server {

class JsHeaps {
 public:
  explicit JsHeaps(uint64_t max_bytes) : max_bytes_(max_bytes) {}

  // The key of a heap: the worker it was made by (sandbox::Zygote::generation), the layer's
  // SHA-256 and what the run's setup saw when it loaded.
  static std::string key(uint64_t worker, const std::string& layer_sha256,
                         const std::vector<std::string>& argv,
                         const std::map<std::string, std::string>& env, const std::string& cwd);

  // Runs a HeapMode::make request with the given memfd (its code never runs).
  using Make = std::function<Result<sandbox::RunOutput>(int memfd)>;

  // The sealed heap of `key`, made now by `make` (in a memfd of `capacity` bytes) if there is
  // none yet; callers that ask meanwhile wait for that run. Null when there is no heap: the run
  // then loads its layer itself.
  std::shared_ptr<const UniqueFd> get(const std::string& key, uint64_t capacity, const Make& make);

  // Bytes held by heaps (tests, logs).
  uint64_t bytes() const;

 private:
  struct Entry {
    std::shared_ptr<const UniqueFd> fd;  // null while it is made, or when it cannot be
    uint64_t bytes = 0;
    bool making = false;
    bool refused = false;  // the layer does not load at rest: never try again
    uint64_t last_use = 0;
  };
  void evict_locked();
  static constexpr size_t kMaxEntries = 1024;

  const uint64_t max_bytes_;
  mutable std::mutex mu_;
  std::condition_variable made_;
  std::map<std::string, Entry> entries_;
  uint64_t bytes_ = 0;
  uint64_t clock_ = 0;
};

}  // namespace onemcp::server
