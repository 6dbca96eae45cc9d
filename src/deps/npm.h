// deps/npm.h — npm dependencies of run_js: one "dependency layer" script per dependency set,
// built once (npm install, then an esbuild bundle) and reused from a cache directory.
//
// Cache layout under `cache_dir`:
//   <key>/deps.js        the layer: a script for QuickJS that sets globalThis.__onemcp_modules
//                        (specifier → ES module namespace) and globalThis.__onemcp_commonjs
//                        (specifiers whose package is CommonJS: require() returns its default)
//   <key>/manifest.json  {"modules": [...], "versions": {name: installed version}}
//   <key>/package.json, <key>/package-lock.json   what npm installed, for the record
//   <key>.lock           flock: one build per set across processes (deps/retention.h)
//   .npm-cache/          npm's own download cache
// Retention (deps/retention.h): a hit records the set's last use in its mtime; gc removes sets
// and wipes .npm-cache. A layer kept in memory is returned only while its directory exists.
// <key> is the SHA-256 of the set (sorted dependencies, lockfile, registry, npm and esbuild
// versions). A set is built in a temporary directory beside it and renamed into place, so a
// directory <key> is always complete; a failed build leaves nothing behind.
//
// Untrusted input: the dependency names and version ranges come from callers. They are checked
// before npm runs (registry packages and semver ranges or tags only: no URL, git, file, link or
// alias specs); install scripts never run; a tree npm resolved outside the registry (a package
// depending on "file:..." or a git URL) is refused; and the bundle may contain only files from
// the set's own node_modules (esbuild's metafile is checked), so no host file reaches a run.
//
// Thread-safety: NpmCache is safe to use from many threads; concurrent requests for one set
// build it once and all get its result.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "deps/progress.h"
#include "deps/retention.h"

namespace onemcp::deps {

using Dependencies = std::map<std::string, std::string>;  // package name → version range

inline constexpr size_t kMaxDependencies = 64;

// npm package names: optionally "@scope/", then lower- or upper-case letters, digits and
// "-._~", not starting with "." or "_", at most 214 characters.
bool valid_package_name(std::string_view name);
// Semver ranges ("^1.2.0", ">=1 <2 || 3.x", "*", "") and dist-tags ("latest"): letters, digits,
// spaces and ".-+^~<>=*|" only, not starting with ".", not a tarball name (".tgz", ".tar").
bool valid_version_range(std::string_view range);
// Checks every entry; the error names the offending one (for an isError result).
Status validate_dependencies(const Dependencies& deps);

// The config's set plus a call's: a package in both takes the call's range.
Dependencies merge_dependencies(const Dependencies& config, const Dependencies& call);

struct NpmOptions {
  std::string cache_dir;               // absolute: <config cacheDir>/npm
  std::string npm;                     // npm executable
  std::string esbuild;                 // esbuild executable
  std::string registry;                // registry URL; empty: npm's default (or its own config)
  std::string lockfile;                // contents of a package-lock.json; empty: none
  Dependencies locked;                 // the set the lockfile pins: installed with `npm ci`
  std::vector<std::string> extra_env;  // passed to npm as is, e.g. HTTPS_PROXY=...
  int install_timeout_ms = 300000;
  int bundle_timeout_ms = 120000;
  size_t max_layer_bytes = 16u << 20;  // a run request carries it (at most 64 MiB, escaped)
  // A layer kept in memory is checked to still exist on disk (and its last use recorded) at
  // most this often.
  std::chrono::milliseconds touch_interval = kTouchInterval;
};

struct Layer {
  std::string key;
  std::string code;                             // deps.js
  std::string sha256;                           // of `code`, lowercase hex (computed once)
  std::set<std::string> modules;                // importable specifiers
  std::map<std::string, std::string> versions;  // installed version of each dependency
};

class NpmCache {
 public:
  explicit NpmCache(NpmOptions options);
  NpmCache(const NpmCache&) = delete;
  NpmCache& operator=(const NpmCache&) = delete;

  // The layer of `deps` (validated, non-empty): from memory, from the cache directory, or built
  // now. Errors are meant for the caller: "npm install failed: ...", "bundling ... failed: ...".
  // `progress` hears about a build (nothing when the set is already loaded); a call that waits
  // for another call's build of the same set hears that it waits, then "ready".
  [[nodiscard]] Result<std::shared_ptr<const Layer>> layer(const Dependencies& deps,
                                                           const BuildProgress& progress = {});

  // The cache key of `deps` (runs `npm --version` once per NpmCache).
  [[nodiscard]] Result<std::string> key(const Dependencies& deps);

  // npm installs started by this instance (cache misses that got as far as npm).
  uint64_t installs() const { return installs_.load(); }

  const NpmOptions& options() const { return opt_; }

 private:
  using Shared = std::shared_ptr<const Layer>;
  Result<Shared> load_or_build(const std::string& key, const Dependencies& deps,
                               const BuildProgress& progress);
  Result<Shared> build(const std::string& key, const Dependencies& deps,
                       const BuildProgress& progress);
  Result<std::string> tool_versions();

  NpmOptions opt_;
  std::atomic<uint64_t> installs_{0};
  std::atomic<uint64_t> tmp_counter_{0};
  std::mutex mu_;
  std::string versions_;                  // "npm X, esbuild Y", found once
  std::map<std::string, Shared> loaded_;  // recently used layers (a few)
  LastUse last_use_;
  std::map<std::string, std::shared_future<Result<Shared>>> building_;
};

}  // namespace onemcp::deps
