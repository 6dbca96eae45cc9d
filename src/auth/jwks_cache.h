// auth/jwks_cache.h — the JWK Set of the OAuth issuer, kept fresh: read through an injected
// function (main builds a file read or an HTTPS GET), again every `refresh_every` and soon after
// a token names a key the set lacks (key rotation), but never sooner than `min_gap` after the
// previous attempt, so tokens with made-up key ids cannot hammer the issuer. A failed refresh
// keeps the last good keys and is retried after `min_gap`.
// Thread-safety: every method may be called from any thread. keys() and want_refresh() never
// wait for a fetch; fetches run in poll(), one at a time, on the thread start() creates (or on
// the caller's, for the first fetch at start and in tests).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "auth/jwt.h"
#include "base/result.h"

namespace onemcp::auth {

class JwksCache {
 public:
  using Fetch = std::function<Result<std::string>()>;  // the JWK Set document's text
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  struct Options {
    Fetch fetch;
    Clock now = std::chrono::steady_clock::now;
    std::chrono::milliseconds refresh_every{std::chrono::minutes(10)};
    std::chrono::milliseconds min_gap{std::chrono::seconds(30)};
    std::string source;  // where the set comes from, for log lines
  };

  explicit JwksCache(Options options);
  ~JwksCache();  // stops and joins the refresh thread
  JwksCache(const JwksCache&) = delete;
  JwksCache& operator=(const JwksCache&) = delete;

  // The last set fetched successfully; null before the first success.
  std::shared_ptr<const Jwks> keys() const;

  // A token named a key the set lacks: fetch again as soon as `min_gap` allows.
  void want_refresh();

  // Fetches and parses the set if it is due (never fetched yet; `refresh_every` after the last
  // attempt; `min_gap` after it when it failed or a refresh is wanted). Returns
  // the outcome when it fetched, nullopt when nothing was due.
  std::optional<Status> poll();

  // Starts the thread that calls poll() whenever it is due. Once.
  void start();

 private:
  using TimePoint = std::chrono::steady_clock::time_point;
  TimePoint next_due_locked() const;

  const Options opts_;
  mutable std::mutex mu_;  // guards everything below
  std::condition_variable cv_;
  std::shared_ptr<const Jwks> keys_;
  std::optional<TimePoint> last_attempt_;
  bool last_failed_ = false;
  bool wanted_ = false;
  bool stop_ = false;
  std::mutex fetch_mu_;  // one fetch at a time
  std::thread thread_;
};

}  // namespace onemcp::auth
