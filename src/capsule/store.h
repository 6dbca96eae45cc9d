// capsule/store.h — the content-addressed capsule cache (config "cacheDir"):
//   <dir>/<hash>/manifest.json and one file per layer; <hash> is the capsule id (manifest.h).
// A capsule is written into a temporary directory <dir>/.tmp-<random> (every file fsynced), then
// renamed into place with RENAME_NOREPLACE, so a capsule directory is always complete; when
// <hash> already exists it is verified and reused. Capsules are removed by renaming them to
// <dir>/.del-<random> first, so a reader sees a whole capsule or none.
//
// Every open verifies before it returns: the manifest's id, the Ed25519 signature with the store's
// public key, and each layer's size and SHA-256. Files are opened relative to the capsule's
// directory fd with O_NOFOLLOW, regular files only, read once; the returned Capsule holds the
// verified bytes, which are what a run must execute (nothing is read again).
//
// Retention: opening a capsule sets its directory's mtime to now (last use); gc() removes
// capsules unused for longer than max_age, then least recently used ones until the cache fits
// max_total_bytes, and temporary directories left behind by crashed writers.
//
// Thread-safety: all methods are safe to call concurrently. Within one process, gc never removes
// a capsule while a put or open of it is running (they register the id first). Across processes
// sharing a cacheDir: puts of the same capsule race harmlessly (one rename wins, the others reuse
// it); another process's gc may remove a capsule at any moment, which makes a concurrent open
// fail ("not found" or a missing file) — never return partial or unverified bytes — and put
// retries; another process's temporary directory is only removed once older than
// stale_temp_age. Use one signing key per cacheDir: a capsule signed by another key fails
// verification, and put replaces it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "capsule/crypto.h"
#include "capsule/manifest.h"

namespace onemcp::capsule {

// A layer's bytes. Shared, so capsules with the same layer (a dependency bundle used by many
// codes) hold one copy in memory.
using LayerBytes = std::shared_ptr<const std::string>;

struct Capsule {
  std::string hash;
  Manifest manifest;
  std::string manifest_json;       // manifest.json's bytes, as verified (what GET serves)
  std::vector<LayerBytes> layers;  // verified bytes of each layer (never null), in order

  // The bytes of the layer named `name`, or nullptr.
  const std::string* layer(std::string_view name) const;
};

struct StoreLimits {
  uint64_t max_capsule_bytes = 64u << 20;  // manifest.json plus every layer
  uint64_t max_manifest_bytes = 1u << 20;
};

using Clock = std::function<std::chrono::system_clock::time_point()>;

// What check_writable() writes: room for a typical capsule.
inline constexpr uint64_t kWritableProbeBytes = 64u << 10;

struct StoreOptions {
  std::string dir;  // created (0700) when missing
  StoreLimits limits;
  // gc removes other processes' .tmp-* directories only after this long without a change.
  std::chrono::seconds stale_temp_age{std::chrono::minutes(15)};
  // fsync every file and directory before a capsule appears under its id, so it survives a
  // crash whole. Without (a cache of run artifacts that are rebuilt at will), a capsule torn by a
  // crash fails verification like any damaged one, and put replaces it.
  bool sync = true;
  // createdAt, last use and gc ages; called from any thread.
  Clock now = [] { return std::chrono::system_clock::now(); };
};

struct GcStats {
  size_t removed = 0;       // capsules
  size_t kept = 0;          // capsules
  uint64_t bytes_kept = 0;  // sum of the kept capsules' file sizes
  size_t temp_removed = 0;  // stale .tmp-* and leftover .del-* directories
};

// Verifies the capsule directory `dirfd` (see above) without changing anything. `expected_hash`
// is the id the directory is known by ("" when unknown: the id is then only computed).
Result<Capsule> verify_capsule_dir(int dirfd, std::string_view expected_hash, const PublicKey& key,
                                   const StoreLimits& limits);

class CapsuleStore {
 public:
  // A store that can put (signing with `key`) and open.
  static Result<std::unique_ptr<CapsuleStore>> create(StoreOptions options, SigningKey key);
  // A store that can only open (verify) and gc, with the public key alone.
  static Result<std::unique_ptr<CapsuleStore>> create_verifier(StoreOptions options, PublicKey key);

  // Stores a capsule. `m` is complete except for each layer's sha256 and size, createdAt and
  // the signature, which put fills in; layer_bytes[i] is the content of m.layers[i]. A layer
  // whose sha256 is already set is taken to be the hash of its bytes (the caller computed it
  // once for bytes shared by many capsules, e.g. a dependency layer): a wrong one makes a
  // capsule that fails verification. Returns the capsule as stored — or the existing one with
  // the same id (verified), which then keeps its createdAt. An existing capsule that fails
  // verification is logged and replaced. A failure of the cache directory itself (a full disk,
  // a read-only file system) carries its errno in Error::os_error; a capsule over the limits
  // does not.
  Result<Capsule> put(Manifest m, std::vector<LayerBytes> layer_bytes);
  Result<Capsule> put(Manifest m, std::initializer_list<std::string_view> layer_bytes);

  // Marks capsule `hash` as used now (its last use, for gc), without reading it; false when the
  // cache holds no capsule `hash` (never stored, or removed by gc).
  bool touch(std::string_view hash);

  // The verified capsule `hash` (exactly 64 lowercase hex digits), marked as used now.
  Result<Capsule> open(std::string_view hash);

  // Whether capsules can be written here: writes kWritableProbeBytes into a temporary file and
  // syncs it (an empty file or directory can still be created on a full disk), then removes it.
  Status check_writable();

  // Whether a directory named `hash` exists (it may still fail verification).
  bool contains(std::string_view hash) const;

  Result<GcStats> gc(std::chrono::seconds max_age, uint64_t max_total_bytes);

  const PublicKey& public_key() const { return public_key_; }
  const std::string& dir() const { return options_.dir; }
  const StoreLimits& limits() const { return options_.limits; }

 private:
  CapsuleStore(StoreOptions options, UniqueFd root, PublicKey key,
               std::optional<SigningKey> signer);
  static Result<UniqueFd> open_root(const std::string& dir);

  // Marks `name` (a capsule id or a temporary directory) as in use by this process.
  class Busy;
  Result<Capsule> open_busy(const std::string& hash);
  Status write_temp(const std::string& tmp, const Capsule& c);
  void remove_aside(const std::string& name);
  bool try_remove_for_gc(const std::string& hash, int64_t expected_mtime_ns);

  StoreOptions options_;
  UniqueFd root_;
  PublicKey public_key_;
  std::optional<SigningKey> signer_;
  std::mutex mu_;
  std::map<std::string, int, std::less<>> busy_;  // guarded by mu_
};

}  // namespace onemcp::capsule
