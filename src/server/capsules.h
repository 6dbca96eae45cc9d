// server/capsules.h — every run executes from a verified capsule (capsule/store.h).
//
// A run's capsule holds what the worker executes: the code (after import rewriting, or esbuild's
// output for the transpiled retry, which is a capsule of its own), the npm dependency layer when
// the call has npm dependencies, the entry (args, env, cwd), the runtime and the effective policy.
// stdin is input, not part of the capsule. get() returns what the run executes from the capsule
// verified — by the store when it was read from disk (id, signature, every layer's SHA-256), or as
// just stored from the given bytes — and the run uses only its bytes.
//
// Per-run cost stays small: the caller passes a dependency layer's SHA-256 computed once per
// dependency set, and verified capsules are kept in memory (an LRU bounded by bytes), so a run
// identical to a recent one hashes only its code and the manifest and touches the directory's
// mtime (its last use, for gc). A capsule that gc or another process removed meanwhile is stored
// again; one that fails verification on disk is logged by the store and replaced (the server
// holds the key); bytes that failed verification never run.
//
// Memory: an entry keeps only what a run executes (RunCapsule: no manifest JSON, policy or
// signature), and memory_bytes bounds what the entries really hold: every heap block (strings,
// nodes, the LRU's own) with malloc's per-block overhead. A layer several capsules share (a
// dependency bundle) is held and counted once — and not copied at all when the caller hands over
// its own buffer.
//
// Retention: a background thread owned by this object runs the store's gc at start, every
// gc_interval, and soon after the capsules stored since the last gc may have pushed the cache
// past max_total_bytes; options.also_gc after the first pass and once per gc_interval. It stops
// when the object is destroyed.
//
// A full disk: when a put fails with ENOSPC or EDQUOT, get() asks the gc thread for a pass at once
// that also removes the least recently used half of the capsules (never one in use), and stores
// again once if that pass removed anything. Such passes are at most one per
// full_disk_gc_interval (concurrent gets share one); a get in between fails without one. Nothing
// is remembered about the failure: every get tries the disk again.
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
  uint64_t memory_bytes = 64u << 20;  // what the capsules kept in memory hold; 0: none
  uint64_t max_total_bytes = 1u << 30;
  std::chrono::milliseconds max_age{std::chrono::hours(24 * 7)};
  std::chrono::milliseconds gc_interval{std::chrono::minutes(10)};
  // Runs on the gc thread after the pass over the capsules at start, then after one pass per
  // gc_interval (the dependency caches' gc).
  std::function<void()> also_gc;
  // At most one gc pass per this interval for a full disk.
  std::chrono::milliseconds full_disk_gc_interval{std::chrono::seconds(1)};
};

// What a run executes, from a verified capsule.
struct RunCapsule {
  struct Layer {
    std::string name, sha256;
    capsule::LayerBytes bytes;  // verified, never null
  };
  std::string hash;      // the capsule id
  capsule::Entry entry;  // argv, env, cwd
  std::vector<Layer> layers;

  // The bytes of the layer named `name`, or nullptr.
  const std::string* layer(std::string_view name) const;
};

class Capsules {
 public:
  using Shared = std::shared_ptr<const RunCapsule>;

  // `store` must be able to put (hold the signing key) and outlive this object.
  Capsules(capsule::CapsuleStore& store, CapsulesOptions options);
  ~Capsules();
  Capsules(const Capsules&) = delete;
  Capsules& operator=(const Capsules&) = delete;

  // What a run executes from the verified capsule of `m` (complete but for createdAt, the
  // signature, each layer's size, and the sha256 of layers whose hash the caller does not know)
  // with layer_bytes[i] the content of m.layers[i]. owners[i], when given, holds exactly the
  // bytes of layer_bytes[i] (a buffer the caller keeps anyway, e.g. the npm cache's bundle):
  // memory keeps it, not a copy. A failure of the cache's disk carries its errno in
  // Error::os_error.
  Result<Shared> get(capsule::Manifest m, const std::vector<std::string_view>& layer_bytes,
                     const std::vector<capsule::LayerBytes>& owners = {});

  // get() in two steps, so that a run can build its sandbox while its capsule is stored:
  // prepare() hashes the capsule in memory (no disk access), Pending::store() then does the
  // rest of get() and returns what get() would. capsule() is what the run executes: exactly
  // the bytes its id covers, the same get() returns. Its code must not start before store()
  // succeeded.
  class Pending {
   public:
    const RunCapsule& capsule() const { return *capsule_; }
    Result<Shared> store();

   private:
    friend class Capsules;
    Capsules* owner_ = nullptr;
    capsule::Manifest manifest_;
    std::vector<capsule::LayerBytes> bytes_;  // to store (empty for one found in memory)
    Shared capsule_;
    bool in_memory_ = false;  // found among the capsules kept in memory
  };
  Result<Pending> prepare(capsule::Manifest m, const std::vector<std::string_view>& layer_bytes,
                          const std::vector<capsule::LayerBytes>& owners = {});

  // Forgets the capsules kept in memory: the next get of each reads and verifies it again.
  void clear_memory();

  // Bytes the capsules kept in memory hold (counted as described above); at most memory_bytes.
  uint64_t memory_used() const;
  size_t memory_entries() const;

  uint64_t gc_runs() const;  // completed gc passes
  // Bytes of the capsules on disk: counted at the last gc pass, plus what was stored since
  // (what another process stored or removed meanwhile is not seen before the next pass).
  uint64_t stored_bytes() const;
  capsule::CapsuleStore& store() { return store_; }

 private:
  struct Entry {
    Shared capsule;
    uint64_t bytes;  // its own memory, shared layers apart
  };
  struct PooledLayer {
    capsule::LayerBytes bytes;
    size_t users;  // entries in the LRU holding it
  };
  // Each layer's bytes: the pooled ones when an entry in memory holds the same, else the
  // caller's owner, else a copy.
  std::vector<capsule::LayerBytes> share_layers(const capsule::Manifest& m,
                                                const std::vector<std::string_view>& bytes,
                                                const std::vector<capsule::LayerBytes>& owners);
  Shared remember(capsule::Capsule c);
  Result<Shared> store(Pending& p);
  void evict_last();  // mu_ held
  void stored(uint64_t bytes);
  // Asks for a full-disk gc pass (or joins one asked for), waits for it and says whether it
  // removed anything; false at once when the last one is less than full_disk_gc_interval old.
  bool make_room();
  void gc_loop();

  capsule::CapsuleStore& store_;
  const CapsulesOptions options_;

  mutable std::mutex mu_;  // guards the LRU and the layer pool
  std::list<Entry> lru_;   // most recently used first
  // Keys view the hash of their entry's capsule.
  std::unordered_map<std::string_view, decltype(lru_)::iterator> by_id_;
  std::unordered_map<std::string, PooledLayer> layers_;  // by SHA-256
  uint64_t lru_bytes_ = 0;                               // entries and pooled layers

  mutable std::mutex gc_mu_;  // guards everything below
  std::condition_variable gc_cv_;
  bool stop_ = false;
  bool gc_wanted_ = false;
  uint64_t estimated_bytes_ = 0;  // kept at the last gc plus stored since
  uint64_t gc_runs_ = 0;
  // Full-disk passes asked for and done (a pass does all asked for before it started).
  uint64_t room_asked_ = 0, room_done_ = 0;
  bool room_freed_ = false;  // whether the last one removed anything
  std::chrono::steady_clock::time_point room_asked_at_;
  std::thread gc_thread_;  // last: started once everything above exists
};

}  // namespace onemcp::server
