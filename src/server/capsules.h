// server/capsules.h — every run executes from a verified capsule (capsule/store.h).
//
// A run's capsule holds what the worker executes: the code (after import rewriting, or esbuild's
// output for the transpiled retry, which is a capsule of its own), the npm dependency layer when
// the call has npm dependencies, the entry (args, env, cwd), the runtime and the effective policy.
// stdin is input, not part of the capsule. get() returns the capsule verified — by the store
// when it was read from disk (id, signature, every layer's SHA-256), or as just stored from the
// given bytes — and the run uses only its bytes.
//
// Per-run cost stays small: the caller passes a dependency layer's SHA-256 computed once per
// dependency set, and verified capsules are kept in memory (an LRU bounded by bytes), so a run
// identical to a recent one hashes only its code and the manifest and touches the directory's
// mtime (its last use, for gc). A capsule that gc or another process removed meanwhile is stored
// again; one that fails verification on disk is logged by the store and replaced (the server
// holds the key); bytes that failed verification never run.
//
// Retention: a background thread owned by this object runs the store's gc at start, every
// gc_interval, and soon after the capsules stored since the last gc may have pushed the cache
// past max_total_bytes; options.also_gc after the first pass and once per gc_interval. It stops
// when the object is destroyed.
//
// Thread-safety: get() is safe to call concurrently; concurrent gets of one new capsule may
// both store it (the store makes that harmless).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "base/result.h"
#include "capsule/store.h"

namespace onemcp::server {

struct CapsulesOptions {
  uint64_t memory_bytes = 64u << 20;  // verified capsules kept in memory; 0: none
  uint64_t max_total_bytes = 1u << 30;
  std::chrono::milliseconds max_age{std::chrono::hours(24 * 7)};
  std::chrono::milliseconds gc_interval{std::chrono::minutes(10)};
  // Runs on the gc thread after the pass over the capsules at start, then after one pass per
  // gc_interval (the dependency caches' gc).
  std::function<void()> also_gc;
};

class Capsules {
 public:
  using Shared = std::shared_ptr<const capsule::Capsule>;

  // `store` must be able to put (hold the signing key) and outlive this object.
  Capsules(capsule::CapsuleStore& store, CapsulesOptions options);
  ~Capsules();
  Capsules(const Capsules&) = delete;
  Capsules& operator=(const Capsules&) = delete;

  // The verified capsule of `m` (complete but for createdAt, the signature, each layer's size,
  // and the sha256 of layers whose hash the caller does not know) with layer_bytes[i] the
  // content of m.layers[i].
  Result<Shared> get(capsule::Manifest m, const std::vector<std::string_view>& layer_bytes);

  // Forgets the capsules kept in memory: the next get of each reads and verifies it again.
  void clear_memory();

  uint64_t gc_runs() const;  // completed gc passes
  capsule::CapsuleStore& store() { return store_; }

 private:
  void remember(const Shared& c, uint64_t bytes);
  void stored(uint64_t bytes);
  void gc_loop();

  capsule::CapsuleStore& store_;
  const CapsulesOptions options_;

  std::mutex mu_;  // guards the LRU
  std::list<std::pair<Shared, uint64_t>> lru_;  // most recently used first; bytes of each
  std::unordered_map<std::string, decltype(lru_)::iterator> by_id_;
  uint64_t lru_bytes_ = 0;

  mutable std::mutex gc_mu_;  // guards everything below
  std::condition_variable gc_cv_;
  bool stop_ = false;
  bool gc_wanted_ = false;
  uint64_t estimated_bytes_ = 0;  // kept at the last gc plus stored since
  uint64_t gc_runs_ = 0;
  std::thread gc_thread_;  // last: started once everything above exists
};

}  // namespace onemcp::server
