// FairScheduler: per-client slot caps, fewest-slots-first service, bounded queues.
#include "server/admission.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

namespace onemcp::server {
namespace {

using namespace std::chrono_literals;

// Jobs that block until released, and a record of the order in which jobs started.
class Gate {
 public:
  std::function<void()> job(std::string name) {
    return [this, name] {
      std::unique_lock lk(mu_);
      started_.push_back(name);
      cv_.notify_all();
      cv_.wait(lk, [&] { return open_ || released_ > 0; });
      if (!open_) --released_;
    };
  }
  std::function<void()> quick(std::string name) {
    return [this, name] {
      std::lock_guard lk(mu_);
      started_.push_back(name);
      cv_.notify_all();
    };
  }
  void release_one() {
    std::lock_guard lk(mu_);
    ++released_;
    cv_.notify_all();
  }
  void open() {
    std::lock_guard lk(mu_);
    open_ = true;
    cv_.notify_all();
  }
  bool wait_started(size_t n) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, 10s, [&] { return started_.size() >= n; });
  }
  std::vector<std::string> started() {
    std::lock_guard lk(mu_);
    return started_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> started_;
  int released_ = 0;
  bool open_ = false;
};

using Admit = FairScheduler::Admit;

TEST(FairScheduler, OneClientHoldsAtMostItsShareOfSlots) {
  Gate g;
  FairScheduler s({4, 2, 100, 100});
  for (int i = 0; i < 10; ++i) ASSERT_EQ(s.submit("flood", g.job("f")), Admit::admitted);
  ASSERT_TRUE(g.wait_started(2));
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(s.running(), 2u);  // not 4: two slots stay free for others
  EXPECT_EQ(s.queued(), 8u);
  // Another client's call starts at once in a free slot.
  ASSERT_EQ(s.submit("other", g.quick("o")), Admit::admitted);
  ASSERT_TRUE(g.wait_started(3));
  EXPECT_EQ(g.started().back(), "o");
  g.open();
}

TEST(FairScheduler, AFreeSlotGoesToTheClientHoldingFewest) {
  Gate g;
  FairScheduler s({2, 2, 100, 100});
  // a takes both slots and queues more; then b and c queue one each.
  for (int i = 0; i < 6; ++i) ASSERT_EQ(s.submit("a", g.job("a")), Admit::admitted);
  ASSERT_TRUE(g.wait_started(2));
  ASSERT_EQ(s.submit("b", g.job("b")), Admit::admitted);
  ASSERT_EQ(s.submit("c", g.job("c")), Admit::admitted);
  // Each slot that frees goes to a client holding none, before a's next job.
  g.release_one();
  ASSERT_TRUE(g.wait_started(3));
  g.release_one();
  ASSERT_TRUE(g.wait_started(4));
  auto order = g.started();
  EXPECT_EQ(std::vector<std::string>(order.begin() + 2, order.end()),
            (std::vector<std::string>{"b", "c"}));
  g.open();
}

TEST(FairScheduler, QueuesAreBoundedPerClientAndInAll) {
  Gate g;
  FairScheduler s({1, 1, 5, 3});
  ASSERT_EQ(s.submit("a", g.job("a")), Admit::admitted);
  ASSERT_TRUE(g.wait_started(1));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(s.submit("a", g.job("a")), Admit::admitted);
  EXPECT_EQ(s.submit("a", g.job("a")), Admit::client_queue_full);
  // Other clients still get in, until the whole queue is full.
  EXPECT_EQ(s.submit("b", g.job("b")), Admit::admitted);
  EXPECT_EQ(s.submit("c", g.job("c")), Admit::admitted);
  EXPECT_EQ(s.submit("d", g.job("d")), Admit::queue_full);
  g.open();
}

TEST(FairScheduler, DroppedJobsGetTheirDropCallbackNeverRun) {
  Gate g;
  std::atomic<int> dropped{0}, ran{0};
  {
    FairScheduler s({1, 1, 10, 10});
    ASSERT_EQ(s.submit("a", g.job("a")), Admit::admitted);
    ASSERT_TRUE(g.wait_started(1));
    for (int i = 0; i < 3; ++i) {
      ASSERT_EQ(s.submit(
                    "b", [&] { ++ran; }, [&] { ++dropped; }),
                Admit::admitted);
    }
    s.drop_queued();
    EXPECT_EQ(dropped, 3);
    EXPECT_EQ(s.queued(), 0u);
    ASSERT_EQ(s.submit(
                  "c", [&] { ++ran; }, [&] { ++dropped; }),
              Admit::admitted);
    g.open();
  }
  EXPECT_EQ(ran + dropped, 4);  // "c" ran, or was dropped by the destructor: never both, never lost
}

TEST(FairScheduler, AThrowingJobKeepsItsSlot) {
  FairScheduler s({1, 1, 10, 10});
  ASSERT_EQ(s.submit("a", [] { throw std::runtime_error("x"); }), Admit::admitted);
  std::atomic<bool> ran{false};
  ASSERT_EQ(s.submit("a", [&] { ran = true; }), Admit::admitted);
  for (int i = 0; i < 1000 && !ran; ++i) std::this_thread::sleep_for(1ms);
  EXPECT_TRUE(ran);
}

}  // namespace
}  // namespace onemcp::server
