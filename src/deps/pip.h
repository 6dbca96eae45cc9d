// deps/pip.h — pip dependencies of run_py: one site directory per dependency set, installed once
// with the host's pip (wheels only) and reused from a cache directory.
//
// Cache layout under `cache_dir`:
//   <key>/site/          what `pip install --target` wrote: the set's packages, read-only for runs
//   <key>/manifest.json  {"requirements": [...], "wheelUrls": [...], "installed": [...]}
//   <key>.lock           flock: one build per set across processes; held shared by each user
//   .cache/              pip's own download cache
// Retention (deps/retention.h): prepare() records the set's last use in its mtime and returns a
// lease (the set's lock, shared) that keeps gc from removing the set while a run mounts it.
// <key> is the SHA-256 (lowercase hex) of the set (sorted requirements, wheel URLs, index URL,
// pip and Python versions). A set is built in a temporary directory beside it and renamed into
// place, so a directory <key> is always complete; a failed build leaves nothing behind.
//
// Untrusted input: requirements and wheel URLs come from callers. Requirements are checked
// before pip runs (a project name, optional extras and version clauses: no URL, path, option,
// environment marker or file reference); wheel URLs are fetched by the caller-supplied
// WheelFetch (the server's egress broker, under the run's network policy), never by pip; pip
// installs binary wheels only (--only-binary=:all:), so no package code runs on the host.
//
// Thread-safety: PipCache is safe to use from many threads; concurrent requests for one set
// build it once and all get its result.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "deps/progress.h"
#include "deps/retention.h"

namespace onemcp::deps {

struct PipSet {
  std::vector<std::string> requirements;  // e.g. "requests==2.32.3", "pkg[extra]>=1,<2"
  std::vector<std::string> wheel_urls;    // http(s) URLs of .whl files
  bool empty() const { return requirements.empty() && wheel_urls.empty(); }
  bool operator==(const PipSet&) const = default;
};

inline constexpr size_t kMaxPipRequirements = 64;
inline constexpr size_t kMaxWheelUrls = 16;
inline constexpr size_t kMaxWheelBytes = 64u << 20;

// A requirement pip can only resolve from the index: a project name, optional extras
// ("name[a,b]") and optional comma-separated version clauses (==, !=, <=, >=, <, >, ~=, ===), with
// spaces between parts; at most 256 bytes. No "@ url", ";" markers, paths, options or "-r".
bool valid_requirement(std::string_view requirement);
// An http(s) URL (no spaces, quotes or control characters) whose path ends in a wheel file
// name: "<name>-<version>[-<build>]-<python>-<abi>-<platform>.whl".
bool valid_wheel_url(std::string_view url);
// The wheel's file name: the last path segment, without query or fragment.
std::string wheel_file_name(std::string_view url);
// Checks counts and every entry; the error names the offending one (for an isError result).
// `where` prefixes messages ("pip" for a call, "pip" in the config too).
Status validate_pip(const PipSet& set);

// The config's set plus a call's: union, sorted, duplicates removed.
PipSet merge_pip(const PipSet& config, const PipSet& call);

// Downloads one wheel URL (already checked with valid_wheel_url); the bytes, or an error naming
// why (e.g. the network policy's rule).
using WheelFetch = std::function<Result<std::string>(const std::string& url)>;

struct PipOptions {
  std::string cache_dir;               // absolute: <config cacheDir>/pip
  std::string python;                  // the interpreter runs use (its pip installs the set)
  std::string index_url;               // empty: pip's default (https://pypi.org/simple)
  std::vector<std::string> extra_env;  // passed to pip as is, e.g. HTTPS_PROXY=...
  int install_timeout_ms = 300000;
};

// A prepared set: gc never removes it while the lease is held (a run holds it until it ends).
struct PipLease {
  std::string key;
  UniqueFd lock;  // <key>.lock, shared
};

class PipCache {
 public:
  explicit PipCache(PipOptions options);
  PipCache(const PipCache&) = delete;
  PipCache& operator=(const PipCache&) = delete;

  // The key of `set` (validated, non-empty) once its site directory exists: found in the cache,
  // or installed now (wheel URLs through `fetch`), with a lease on it. Errors are meant for the
  // caller: "pip install failed (exit code 1): ...". `progress` hears about an install
  // ("downloading 1 wheel(s)", "installing 2 requirement(s)", "ready"; nothing for a cache hit);
  // a call that waits for another call's install of the same set hears that it waits.
  [[nodiscard]] Result<PipLease> prepare(const PipSet& set, const WheelFetch& fetch,
                                         const BuildProgress& progress = {});

  // The cache key of `set` (asks pip and Python for their versions once per PipCache).
  [[nodiscard]] Result<std::string> key(const PipSet& set);

  // Where the set of `key` is installed.
  std::string site_dir(const std::string& key) const;

  // pip installs started by this instance (cache misses that got as far as pip).
  uint64_t installs() const { return installs_.load(); }

  const PipOptions& options() const { return opt_; }

 private:
  // The set's lock, shared, if the set exists (empty fd: it does not).
  Result<UniqueFd> use(const std::string& key);
  Result<std::string> install_once(const std::string& key, const PipSet& set,
                                   const WheelFetch& fetch, const BuildProgress& progress);
  Result<std::string> load_or_build(const std::string& key, const PipSet& set,
                                    const WheelFetch& fetch, const BuildProgress& progress);
  Status build(const std::string& key, const PipSet& set, const WheelFetch& fetch,
               const BuildProgress& progress);
  Result<std::string> tool_versions();

  PipOptions opt_;
  std::atomic<uint64_t> installs_{0};
  std::atomic<uint64_t> tmp_counter_{0};
  std::mutex mu_;
  std::string versions_;  // "pip X, python Y", found once
  std::map<std::string, std::shared_future<Result<std::string>>> building_;
  LastUse last_use_;
};

}  // namespace onemcp::deps
