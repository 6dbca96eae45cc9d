#include "server/admission.h"

#include <algorithm>
#include <exception>
#include <tuple>

#include "base/log.h"

namespace onemcp::server {

FairScheduler::FairScheduler(Limits limits) : limits_(limits) {
  const size_t n = std::max<size_t>(1, limits_.slots);
  threads_.reserve(n);
  for (size_t i = 0; i < n; ++i) threads_.emplace_back([this] { loop(); });
}

FairScheduler::~FairScheduler() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
  drop_queued();
}

FairScheduler::Admit FairScheduler::submit(const std::string& principal, std::function<void()> run,
                                           std::function<void()> drop) {
  {
    std::lock_guard lk(mu_);
    if (stopping_) return Admit::stopped;
    if (queued_ >= limits_.max_queued) return Admit::queue_full;
    auto [it, fresh] = clients_.try_emplace(principal);
    Client& c = it->second;
    if (fresh) c.arrival = ++arrivals_;
    if (c.queue.size() >= limits_.max_queued_per_client) return Admit::client_queue_full;
    c.queue.push_back({std::move(run), std::move(drop)});
    ++queued_;
  }
  cv_.notify_one();
  return Admit::admitted;
}

void FairScheduler::drop_queued() {
  std::vector<Job> dropped;
  {
    std::lock_guard lk(mu_);
    for (auto it = clients_.begin(); it != clients_.end();) {
      for (auto& job : it->second.queue) dropped.push_back(std::move(job));
      it->second.queue.clear();
      it = it->second.active == 0 ? clients_.erase(it) : std::next(it);
    }
    queued_ = 0;
  }
  for (auto& job : dropped) {
    if (job.drop) job.drop();
  }
}

size_t FairScheduler::running() const {
  std::lock_guard lk(mu_);
  return running_;
}

size_t FairScheduler::queued() const {
  std::lock_guard lk(mu_);
  return queued_;
}

std::unordered_map<std::string, FairScheduler::Client>::iterator FairScheduler::pick() {
  auto best = clients_.end();
  for (auto it = clients_.begin(); it != clients_.end(); ++it) {
    const Client& c = it->second;
    if (c.queue.empty() || c.active >= limits_.per_client) continue;
    if (best == clients_.end() ||
        std::tie(c.active, c.last_served, c.arrival) <
            std::tie(best->second.active, best->second.last_served, best->second.arrival)) {
      best = it;
    }
  }
  return best;
}

void FairScheduler::loop() {
  std::unique_lock lk(mu_);
  for (;;) {
    auto it = clients_.end();
    cv_.wait(lk, [&] { return stopping_ || (it = pick()) != clients_.end(); });
    if (stopping_) return;
    Client& c = it->second;
    Job job = std::move(c.queue.front());
    c.queue.pop_front();
    --queued_;
    ++c.active;
    c.last_served = ++served_;
    ++running_;
    const std::string principal = it->first;
    // Wakes are chained, one thread at a time: a thread that finishes a job looks for the next
    // one itself, so only work left over after this pick needs another thread.
    const bool more = pick() != clients_.end();
    lk.unlock();
    if (more) cv_.notify_one();
    try {
      job.run();
    } catch (const std::exception& e) {  // a bug of ours: log it, keep the slot alive
      log::error(std::string("run job threw: ") + e.what());
    }
    job = {};  // release what the job held before the slot counts as free
    lk.lock();
    --running_;
    auto done = clients_.find(principal);
    if (done != clients_.end() && --done->second.active == 0 && done->second.queue.empty()) {
      clients_.erase(done);
    }
    // A slot of this client came free: this thread serves the job that may now go (if any) at
    // the top of the loop. Waking every idle thread here cost each call a dozen context switches.
  }
}

}  // namespace onemcp::server
