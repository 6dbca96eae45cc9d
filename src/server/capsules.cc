#include "server/capsules.h"

#include "base/log.h"
#include "capsule/crypto.h"

namespace onemcp::server {

namespace {

uint64_t capsule_bytes(const capsule::Capsule& c) {
  uint64_t n = c.manifest_json.size();
  for (const auto& l : c.layers) n += l.size();
  return n;
}

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

Result<Capsules::Shared> Capsules::get(capsule::Manifest m,
                                       const std::vector<std::string_view>& layer_bytes) {
  if (m.layers.size() != layer_bytes.size()) return make_error("capsule: layers and bytes differ");
  for (size_t i = 0; i < m.layers.size(); ++i) {
    if (m.layers[i].sha256.empty()) m.layers[i].sha256 = capsule::sha256_hex(layer_bytes[i]);
    m.layers[i].size = layer_bytes[i].size();
  }
  auto id = capsule::capsule_hash(m);
  if (!id) return id.error();
  {
    std::unique_lock lk(mu_);
    if (auto it = by_id_.find(*id); it != by_id_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      Shared hit = it->second->first;
      lk.unlock();
      // Its last use, for gc. Gone from disk (gc, another process): stored again below.
      if (store_.touch(*id)) return hit;
    }
  }
  std::vector<std::string> bytes(layer_bytes.begin(), layer_bytes.end());
  auto c = store_.put(std::move(m), std::move(bytes));
  if (!c) return c.error();
  if (c->hash != *id) {  // cannot happen: put hashes the same manifest
    return make_error("capsule " + c->hash + ": stored under another id than " + *id);
  }
  auto shared = std::make_shared<const capsule::Capsule>(std::move(*c));
  const uint64_t n = capsule_bytes(*shared);
  remember(shared, n);
  stored(n);
  return shared;
}

void Capsules::remember(const Shared& c, uint64_t bytes) {
  if (bytes > options_.memory_bytes) return;
  std::lock_guard lk(mu_);
  if (auto it = by_id_.find(c->hash); it != by_id_.end()) {
    lru_bytes_ -= it->second->second;
    lru_.erase(it->second);
    by_id_.erase(it);
  }
  lru_.emplace_front(c, bytes);
  by_id_[c->hash] = lru_.begin();
  lru_bytes_ += bytes;
  while (lru_bytes_ > options_.memory_bytes) {
    lru_bytes_ -= lru_.back().second;
    by_id_.erase(lru_.back().first->hash);
    lru_.pop_back();
  }
}

void Capsules::clear_memory() {
  std::lock_guard lk(mu_);
  lru_.clear();
  by_id_.clear();
  lru_bytes_ = 0;
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

void Capsules::gc_loop() {
  const auto max_age = std::chrono::duration_cast<std::chrono::seconds>(options_.max_age);
  bool also_ran = false;
  std::chrono::steady_clock::time_point also_ran_at;
  std::unique_lock lk(gc_mu_);
  while (!stop_) {
    gc_wanted_ = false;
    const uint64_t before = estimated_bytes_;
    lk.unlock();
    auto stats = store_.gc(max_age, options_.max_total_bytes);
    lk.lock();
    if (stats) {
      // What was stored while gc ran is not in its count.
      estimated_bytes_ = stats->bytes_kept + (estimated_bytes_ - before);
      if (stats->removed || stats->temp_removed) {
        log::info("capsule cache: removed " + std::to_string(stats->removed) + " capsule(s), kept " +
                  std::to_string(stats->kept) + " (" + std::to_string(stats->bytes_kept) +
                  " bytes)");
      }
    } else {
      log::warn("capsule cache gc failed: " + stats.error().message);
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
    gc_cv_.wait_for(lk, options_.gc_interval, [this] { return stop_ || gc_wanted_; });
  }
}

}  // namespace onemcp::server
