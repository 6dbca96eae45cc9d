#include "server/capsules.h"

#include <algorithm>
#include <cerrno>

#include "base/log.h"
#include "capsule/crypto.h"

namespace onemcp::server {

namespace {

// What the heap really takes for a block of `n` bytes (glibc malloc on 64-bit: an 8-byte header,
// 16-byte granules, at least 32 bytes; large blocks are mapped as whole pages).
uint64_t heap_block(uint64_t n) {
  if (n == 0) return 0;
  if (n >= (128u << 10)) return (n + 16 + 4095) & ~uint64_t(4095);
  return std::max<uint64_t>(32, (n + 8 + 15) & ~uint64_t(15));
}
// Node headers of the standard containers (libstdc++): a red-black tree node's colour and three
// links; a list node's two links; a hash node's link and cached hash. A hash table's buckets cost
// about two pointers per element (load factor at most 1, doubled when it grows).
constexpr uint64_t kTreeNode = 32, kListNode = 16, kHashNode = 16, kHashBucket = 16;
// make_shared's control block (vtable pointer and the two counts) before the object.
constexpr uint64_t kSharedControl = 16;

uint64_t heap_string(const std::string& s) {
  return s.capacity() > 15 ? heap_block(s.capacity() + 1) : 0;  // 15: the in-place buffer
}

// Everything an entry of the memory cache holds but its layers' bytes: the run capsule, the LRU
// node and the index node.
uint64_t entry_bytes(const RunCapsule& c) {
  uint64_t n = heap_block(kSharedControl + sizeof(RunCapsule)) + heap_string(c.hash) +
               heap_string(c.entry.cwd) + heap_block(c.entry.argv.capacity() * sizeof(std::string));
  for (const auto& a : c.entry.argv) n += heap_string(a);
  for (const auto& [k, v] : c.entry.env) {
    n += heap_block(kTreeNode + sizeof(std::pair<const std::string, std::string>)) +
         heap_string(k) + heap_string(v);
  }
  n += heap_block(c.layers.capacity() * sizeof(RunCapsule::Layer));
  for (const auto& l : c.layers) n += heap_string(l.name) + heap_string(l.sha256);
  // The LRU's node holds the pointer and this count; the index's node a view of the hash and the
  // LRU position.
  return n + heap_block(kListNode + sizeof(Capsules::Shared) + sizeof(uint64_t)) +
         heap_block(kHashNode + sizeof(std::string_view) + sizeof(void*)) + kHashBucket;
}

// A pooled layer: its bytes and the pool's node (the SHA-256, the pointer and a count).
uint64_t layer_bytes(const std::string& sha256, const std::string& bytes) {
  return heap_block(kSharedControl + sizeof(std::string)) + heap_string(bytes) +
         heap_block(kHashNode + sizeof(std::string) + sizeof(capsule::LayerBytes) +
                    sizeof(size_t)) +
         heap_string(sha256) + kHashBucket;
}

// What the capsule takes on disk (what gc counts).
uint64_t disk_bytes(const capsule::Capsule& c) {
  uint64_t n = c.manifest_json.size();
  for (const auto& l : c.layers) n += l->size();
  return n;
}

bool disk_full(int os_error) { return os_error == ENOSPC || os_error == EDQUOT; }

}  // namespace

Capsules::Capsules(capsule::CapsuleStore& store, CapsulesOptions options)
    : store_(store), options_(options), gc_thread_([this] { gc_loop(); }) {}

Capsules::~Capsules() {
  {
    std::lock_guard lk(gc_mu_);
    stop_ = true;
  }
  gc_cv_.notify_all();
  gc_thread_.join();
}

const std::string* RunCapsule::layer(std::string_view name) const {
  for (const auto& l : layers) {
    if (l.name == name) return l.bytes.get();
  }
  return nullptr;
}

Result<Capsules::Shared> Capsules::get(capsule::Manifest m,
                                       const std::vector<std::string_view>& layer_bytes,
                                       const std::vector<capsule::LayerBytes>& owners) {
  auto p = prepare(std::move(m), layer_bytes, owners);
  if (!p) return p.error();
  return p->store();
}

Result<Capsules::Pending> Capsules::prepare(capsule::Manifest m,
                                            const std::vector<std::string_view>& layer_bytes,
                                            const std::vector<capsule::LayerBytes>& owners) {
  if (m.layers.size() != layer_bytes.size()) return make_error("capsule: layers and bytes differ");
  for (size_t i = 0; i < m.layers.size(); ++i) {
    if (m.layers[i].sha256.empty()) m.layers[i].sha256 = capsule::sha256_hex(layer_bytes[i]);
    m.layers[i].size = layer_bytes[i].size();
  }
  auto id = capsule::capsule_hash(m);
  if (!id) return id.error();
  Pending p;
  p.owner_ = this;
  {
    std::lock_guard lk(mu_);
    if (auto it = by_id_.find(*id); it != by_id_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      p.capsule_ = it->second->capsule;
      p.in_memory_ = true;
    }
  }
  if (!p.in_memory_) {
    p.bytes_ = share_layers(m, layer_bytes, owners);
    auto run = std::make_shared<RunCapsule>();
    run->hash = *id;
    run->entry = m.entry;
    for (size_t i = 0; i < p.bytes_.size(); ++i)
      run->layers.push_back({m.layers[i].name, m.layers[i].sha256, p.bytes_[i]});
    p.capsule_ = std::move(run);
  }
  p.manifest_ = std::move(m);
  return p;
}

Result<Capsules::Shared> Capsules::Pending::store() { return owner_->store(*this); }

Result<Capsules::Shared> Capsules::store(Pending& p) {
  const std::string& id = p.capsule_->hash;
  if (p.in_memory_) {
    // Its last use, for gc. Gone from disk (gc, another process): stored again below.
    if (store_.touch(id)) return p.capsule_;
    for (const auto& l : p.capsule_->layers) p.bytes_.push_back(l.bytes);
  }
  const std::vector<capsule::LayerBytes>& bytes = p.bytes_;
  auto c = store_.put(p.manifest_, bytes);
  if (!c && disk_full(c.error().os_error) && make_room()) {
    log::info("capsule cache: storing again after gc made room (" + c.error().message + ")");
    c = store_.put(p.manifest_, bytes);
  }
  if (!c) return c.error();
  if (c->hash != id) {  // cannot happen: put hashes the same manifest
    return make_error("capsule " + c->hash + ": stored under another id than " + id);
  }
  stored(disk_bytes(*c));
  // A capsule that was on disk already comes back with the bytes read from there: the shared
  // ones (pooled, the caller's) are kept instead when equal.
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (c->layers[i] != bytes[i] && *c->layers[i] == *bytes[i]) c->layers[i] = bytes[i];
  }
  return remember(std::move(*c));
}

std::vector<capsule::LayerBytes> Capsules::share_layers(
    const capsule::Manifest& m, const std::vector<std::string_view>& bytes,
    const std::vector<capsule::LayerBytes>& owners) {
  std::vector<capsule::LayerBytes> out(bytes.size());
  if (options_.memory_bytes) {
    std::lock_guard lk(mu_);
    for (size_t i = 0; i < bytes.size(); ++i) {
      if (auto it = layers_.find(m.layers[i].sha256); it != layers_.end())
        out[i] = it->second.bytes;
    }
  }
  for (size_t i = 0; i < bytes.size(); ++i) {
    // The hash may be the caller's: the bytes themselves decide.
    if (out[i] && (out[i]->data() == bytes[i].data() || *out[i] == bytes[i])) continue;
    const bool owned = i < owners.size() && owners[i] && owners[i]->data() == bytes[i].data() &&
                       owners[i]->size() == bytes[i].size();
    out[i] = owned ? owners[i] : std::make_shared<const std::string>(bytes[i]);
  }
  return out;
}

Capsules::Shared Capsules::remember(capsule::Capsule c) {
  auto run = std::make_shared<RunCapsule>();
  run->hash = std::move(c.hash);
  run->entry = std::move(c.manifest.entry);
  for (size_t i = 0; i < c.layers.size(); ++i) {
    capsule::Layer& l = c.manifest.layers[i];
    run->layers.push_back({std::move(l.name), std::move(l.sha256), std::move(c.layers[i])});
  }
  if (!options_.memory_bytes) return run;
  {
    std::lock_guard lk(mu_);
    if (auto it = by_id_.find(run->hash); it != by_id_.end()) {
      // Another get stored it meanwhile: keep one entry (the newer bytes are as good).
      lru_.splice(lru_.begin(), lru_, it->second);
      return lru_.front().capsule;
    }
    // Layers an entry in memory holds already are taken from the pool.
    uint64_t new_layers = 0;
    for (auto& l : run->layers) {
      auto it = layers_.find(l.sha256);
      if (it == layers_.end()) {
        new_layers += layer_bytes(l.sha256, *l.bytes);
        continue;
      }
      // Other bytes under the same hash: a caller passed a wrong one. Such a capsule fails
      // verification wherever it is read; it is not kept.
      if (it->second.bytes != l.bytes && *it->second.bytes != *l.bytes) return run;
      l.bytes = it->second.bytes;
    }
    const uint64_t own = entry_bytes(*run);
    if (own + new_layers > options_.memory_bytes) return run;
    for (const auto& l : run->layers) {
      auto [it, added] = layers_.try_emplace(l.sha256, PooledLayer{l.bytes, 0});
      if (added) lru_bytes_ += layer_bytes(l.sha256, *l.bytes);
      ++it->second.users;
    }
    lru_.push_front({run, own});
    by_id_[lru_.front().capsule->hash] = lru_.begin();
    lru_bytes_ += own;
    while (lru_bytes_ > options_.memory_bytes) evict_last();
  }
  return run;
}

void Capsules::evict_last() {
  const Entry& e = lru_.back();
  for (const auto& l : e.capsule->layers) {
    auto it = layers_.find(l.sha256);
    if (--it->second.users == 0) {
      lru_bytes_ -= layer_bytes(it->first, *it->second.bytes);
      layers_.erase(it);
    }
  }
  lru_bytes_ -= e.bytes;
  by_id_.erase(e.capsule->hash);
  lru_.pop_back();
}

void Capsules::clear_memory() {
  std::lock_guard lk(mu_);
  by_id_.clear();
  layers_.clear();
  lru_.clear();
  lru_bytes_ = 0;
}

uint64_t Capsules::memory_used() const {
  std::lock_guard lk(mu_);
  return lru_bytes_;
}

size_t Capsules::memory_entries() const {
  std::lock_guard lk(mu_);
  return lru_.size();
}

void Capsules::stored(uint64_t bytes) {
  std::lock_guard lk(gc_mu_);
  estimated_bytes_ += bytes;
  if (estimated_bytes_ > options_.max_total_bytes && !gc_wanted_) {
    gc_wanted_ = true;
    gc_cv_.notify_all();
  }
}

uint64_t Capsules::gc_runs() const {
  std::lock_guard lk(gc_mu_);
  return gc_runs_;
}

uint64_t Capsules::stored_bytes() const {
  std::lock_guard lk(gc_mu_);
  return estimated_bytes_;
}

bool Capsules::make_room() {
  std::unique_lock lk(gc_mu_);
  if (room_asked_ == room_done_) {  // none pending: ask for one, unless one ran just now
    const auto now = std::chrono::steady_clock::now();
    if (room_asked_ && now - room_asked_at_ < options_.full_disk_gc_interval) return false;
    ++room_asked_;
    room_asked_at_ = now;
    gc_cv_.notify_all();
  }
  const uint64_t ticket = room_asked_;
  gc_cv_.wait(lk, [&] { return stop_ || room_done_ >= ticket; });
  return room_done_ >= ticket && room_freed_;
}

void Capsules::gc_loop() {
  const auto max_age = std::chrono::duration_cast<std::chrono::seconds>(options_.max_age);
  bool also_ran = false;
  std::chrono::steady_clock::time_point also_ran_at;
  std::unique_lock lk(gc_mu_);
  while (!stop_) {
    gc_wanted_ = false;
    const uint64_t room = room_asked_;  // the full-disk passes this one answers
    const bool full = room > room_done_;
    const uint64_t before = estimated_bytes_;
    lk.unlock();
    auto stats = store_.gc(max_age, options_.max_total_bytes);
    uint64_t removed = stats ? stats->removed + stats->temp_removed : 0;
    if (stats && full) {
      // The disk filled up below max_total_bytes (a small disk, other files): the least recently
      // used half goes too.
      auto more = store_.gc(max_age, stats->bytes_kept / 2);
      if (more) {
        removed += more->removed + more->temp_removed;
        stats = capsule::GcStats{stats->removed + more->removed, more->kept, more->bytes_kept,
                                 stats->temp_removed + more->temp_removed};
      }
      log::warn("capsule cache " + store_.dir() + ": the disk is full: removed " +
                std::to_string(stats->removed) + " capsule(s) to make room, kept " +
                std::to_string(stats->kept) + " (" + std::to_string(stats->bytes_kept) + " bytes)");
    }
    lk.lock();
    if (stats) {
      // What was stored while gc ran is not in its count.
      estimated_bytes_ = stats->bytes_kept + (estimated_bytes_ - before);
      if (!full && (stats->removed || stats->temp_removed)) {
        log::info("capsule cache: removed " + std::to_string(stats->removed) + " capsule(s), kept " +
                  std::to_string(stats->kept) + " (" + std::to_string(stats->bytes_kept) +
                  " bytes)");
      }
    } else {
      log::warn("capsule cache gc failed: " + stats.error().message);
    }
    if (full) {
      room_done_ = room;
      room_freed_ = removed > 0;
      gc_cv_.notify_all();
    }
    // Not on every pass a burst of new capsules asks for: at start and once per interval.
    if (options_.also_gc && (!also_ran || std::chrono::steady_clock::now() - also_ran_at >=
                                              options_.gc_interval)) {
      also_ran = true;
      also_ran_at = std::chrono::steady_clock::now();
      lk.unlock();
      options_.also_gc();
      lk.lock();
    }
    ++gc_runs_;
    gc_cv_.notify_all();
    gc_cv_.wait_for(lk, options_.gc_interval,
                    [this] { return stop_ || gc_wanted_ || room_asked_ > room_done_; });
  }
}

}  // namespace onemcp::server
