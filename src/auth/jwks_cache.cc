#include "auth/jwks_cache.h"

#include "base/log.h"

namespace onemcp::auth {

JwksCache::JwksCache(Options options) : opts_(std::move(options)) {}

JwksCache::~JwksCache() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::shared_ptr<const Jwks> JwksCache::keys() const {
  std::lock_guard lk(mu_);
  return keys_;
}

void JwksCache::want_refresh() {
  {
    std::lock_guard lk(mu_);
    if (wanted_) return;
    wanted_ = true;
  }
  cv_.notify_all();
}

JwksCache::TimePoint JwksCache::next_due_locked() const {
  if (!last_attempt_) return TimePoint::min();
  // Counted from the last attempt, so a failing source is retried every min_gap, not at once.
  TimePoint due = *last_attempt_ + opts_.refresh_every;
  if (wanted_ || last_failed_) due = std::min(due, *last_attempt_ + opts_.min_gap);
  return due;
}

std::optional<Status> JwksCache::poll() {
  std::lock_guard fetching(fetch_mu_);
  {
    std::lock_guard lk(mu_);
    const TimePoint now = opts_.now();
    if (now < next_due_locked()) return std::nullopt;
    last_attempt_ = now;
    wanted_ = false;
  }
  Result<std::string> text = make_error("no fetch function");
  try {
    text = opts_.fetch();
  } catch (const std::exception& e) {  // a bug of the source; the cache keeps working
    text = make_error(std::string("fetch failed: ") + e.what());
  }
  Result<std::shared_ptr<const Jwks>> parsed =
      text ? Jwks::parse(*text) : Result<std::shared_ptr<const Jwks>>(text.error());
  std::lock_guard lk(mu_);
  if (!parsed) {
    last_failed_ = true;
    log::warn("JWK Set " + opts_.source + ": " + parsed.error().message +
              (keys_ ? "; keeping the " + std::to_string(keys_->size()) + " key(s) read before"
                     : "; no key to verify tokens with yet"));
    return Status(parsed.error());
  }
  if (last_failed_ || !keys_ || keys_->size() != (*parsed)->size()) {
    log::info("JWK Set " + opts_.source + ": " + std::to_string((*parsed)->size()) +
              " usable key(s)");
  }
  last_failed_ = false;
  keys_ = std::move(*parsed);
  return Status();
}

void JwksCache::start() {
  thread_ = std::thread([this] {
    std::unique_lock lk(mu_);
    while (!stop_) {
      const TimePoint due = next_due_locked();
      const TimePoint now = opts_.now();
      if (now < due) {
        // Woken early by want_refresh() or the destructor; the due time is computed again.
        cv_.wait_for(lk, due - now);
        continue;
      }
      lk.unlock();
      (void)poll();
      lk.lock();
    }
  });
}

}  // namespace onemcp::auth
