// deps/retention.h — retention of the dependency-set caches (deps/npm.h, deps/pip.h): last use,
// the per-set lock, and gc.
//
// A set's directory <root>/<key> records its last use in its mtime: each cache touches it on a
// hit, at most once per kTouchInterval per set (hits stay cheap). <root>/<key>.lock is the set's
// flock (lock_file): a build holds it exclusively, a run that mounts the set (run_py) holds it
// shared for the run's duration, and gc removes a set only with the exclusive lock taken without
// waiting — never one being built or in use. Removal renames the set to <root>/.gc-* first, so
// another process sees the whole set or none, then deletes it.
//
// gc_dependency_sets() trims several roots (npm's and pip's) as one cache: sets unused for longer
// than max_age, then the least recently used ones until all fit max_total_bytes, never a set used
// within min_idle. Each root's download cache (npm's .npm-cache, pip's .cache) is wiped when it
// holds more than max_download_cache_bytes and no install is using it (builds hold
// <root>/.download.lock shared while npm or pip runs).
//
// Thread-safety: all functions may be called from many threads and processes at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

namespace onemcp::deps {

inline constexpr std::chrono::seconds kTouchInterval{60};
inline constexpr char kDownloadLock[] = ".download.lock";

// flock(`op`) on the file `path` (created when missing), retried until the locked file is the
// one at `path` (another holder may have unlinked it meanwhile). Invalid on failure, errno set
// (EWOULDBLOCK: LOCK_NB and someone holds it).
UniqueFd lock_file(const std::string& path, int op);

// Last uses of sets, as recorded by one cache.
class LastUse {
 public:
  explicit LastUse(std::chrono::milliseconds interval = kTouchInterval) : interval_(interval) {}
  // Sets the mtime of `dir` to now unless this object did so within the interval. False when
  // `dir` does not exist (removed by gc): the caller must not use the set.
  bool touch(const std::string& dir);
  // `dir` was just created or touched.
  void record(const std::string& dir);

 private:
  const std::chrono::milliseconds interval_;
  std::mutex mu_;
  std::map<std::string, std::chrono::steady_clock::time_point> at_;
};

struct DepsRoot {
  std::string dir;             // e.g. <cacheDir>/npm
  std::string download_cache;  // its download cache, a name inside dir (".npm-cache", ".cache")
};

struct DepsGcOptions {
  std::chrono::milliseconds max_age{std::chrono::hours(24 * 30)};
  uint64_t max_total_bytes = 4ull << 30;
  uint64_t max_download_cache_bytes = 1ull << 30;
  std::chrono::milliseconds min_idle = kTouchInterval;
};

struct DepsGcStats {
  size_t removed = 0, kept = 0;  // sets
  uint64_t bytes_kept = 0;       // the kept sets' file sizes
  uint64_t download_bytes = 0;   // in the download caches after the pass
  size_t download_caches_wiped = 0;
};

Result<DepsGcStats> gc_dependency_sets(const std::vector<DepsRoot>& roots,
                                       const DepsGcOptions& options);

}  // namespace onemcp::deps
