// server/admission.h — run slots shared fairly between clients ("principals": an MCP session,
// an authenticated token subject, the stdio client). One principal holds at most `per_client`
// slots at once; a free slot goes to the waiting principal that holds the fewest slots (ties:
// the one served least recently), so a client flooding the server never delays another client's
// call by more than one run's time. Queues are bounded in all and per principal: a call beyond
// them is refused at once, never queued without bound.
// Thread-safety: every method may be called from any thread; jobs run on the scheduler's own
// threads (one per slot). The destructor waits for running jobs and drops queued ones.
// Order of service: fewest slots held, then served least recently (never served first, in order
// of arrival).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace onemcp::server {

class FairScheduler {
 public:
  struct Limits {
    size_t slots = 16;
    size_t per_client = 4;
    size_t max_queued = 256;
    size_t max_queued_per_client = 64;
  };
  enum class Admit { admitted, client_queue_full, queue_full, stopped };

  explicit FairScheduler(Limits limits);
  ~FairScheduler();
  FairScheduler(const FairScheduler&) = delete;
  FairScheduler& operator=(const FairScheduler&) = delete;

  // Queues `run` for `principal`. `drop` (may be empty) is called instead of `run` if the job is
  // dropped before it started (drop_queued(), destruction); it must not block.
  Admit submit(const std::string& principal, std::function<void()> run,
               std::function<void()> drop = {});
  // Drops every job that has not started: their `drop` callbacks run on this thread.
  void drop_queued();

  const Limits& limits() const { return limits_; }
  size_t running() const;
  size_t queued() const;

 private:
  struct Job {
    std::function<void()> run, drop;
  };
  struct Client {
    std::deque<Job> queue;
    size_t active = 0;
    uint64_t last_served = 0;  // the scheduler's serve counter when it last got a slot; 0: never
    uint64_t arrival = 0;      // order of arrival, among clients never served
  };

  void loop();
  // The waiting client to serve next, or end() when none may take a slot now. Caller holds mu_.
  std::unordered_map<std::string, Client>::iterator pick();

  const Limits limits_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<std::string, Client> clients_;  // those with a queued or running job
  size_t queued_ = 0;
  size_t running_ = 0;
  uint64_t served_ = 0;
  uint64_t arrivals_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace onemcp::server
