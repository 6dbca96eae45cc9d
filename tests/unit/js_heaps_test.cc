// server/heaps.h without workers: when a heap is made, reused, refused, retried and evicted, and
// that what callers get is sealed.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "server/heaps.h"

namespace onemcp::server {
namespace {

sandbox::RunOutput made(uint64_t bytes, sandbox::Outcome outcome = sandbox::Outcome::ok,
                        std::string out = "") {
  sandbox::RunOutput o;
  o.outcome = outcome;
  o.out = std::move(out);
  if (bytes) o.report.heap_bytes = bytes;
  return o;
}

TEST(JsHeaps, MadeOnceThenSharedSealed) {
  JsHeaps heaps(64u << 20);
  int makes = 0;
  auto make = [&](int fd) -> Result<sandbox::RunOutput> {
    ++makes;
    EXPECT_EQ(::pwrite(fd, "heap", 4, 0), 4);  // what the run wrote into its heap
    return made(1u << 20);
  };
  auto a = heaps.get("k", 8u << 20, make);
  auto b = heaps.get("k", 8u << 20, make);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->get(), b->get());
  EXPECT_EQ(makes, 1);
  EXPECT_EQ(heaps.bytes(), 1u << 20);
  // Sealed: its size is the heap's, and nobody can write it or map it writable and shared.
  EXPECT_EQ(::lseek(a->get(), 0, SEEK_END), off_t(1) << 20);
  EXPECT_EQ(::pwrite(a->get(), "x", 1, 0), -1);
  EXPECT_EQ(::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, a->get(), 0), MAP_FAILED);
  char c[4];
  EXPECT_EQ(::pread(a->get(), c, 4, 0), 4);
  EXPECT_EQ(std::string(c, 4), "heap");
  EXPECT_EQ(::fcntl(a->get(), F_GET_SEALS) & F_SEAL_WRITE, F_SEAL_WRITE);
}

TEST(JsHeaps, RefusedLayersAreNotTriedAgainButInterruptedOnesAre) {
  JsHeaps heaps(64u << 20);
  int makes = 0;
  // Prints while loading: loaded by each run from then on.
  EXPECT_FALSE(heaps.get("loud", 8u << 20, [&](int) -> Result<sandbox::RunOutput> {
    ++makes;
    return made(4096, sandbox::Outcome::ok, "hello");
  }));
  EXPECT_FALSE(heaps.get("loud", 8u << 20, [&](int) -> Result<sandbox::RunOutput> {
    ++makes;
    return made(4096);
  }));
  EXPECT_EQ(makes, 1);
  // Stopped from outside (time), or the machinery failed: the next call tries again.
  EXPECT_FALSE(heaps.get("slow", 8u << 20, [&](int) -> Result<sandbox::RunOutput> {
    return made(0, sandbox::Outcome::timeout);
  }));
  EXPECT_FALSE(heaps.get("slow", 8u << 20, [&](int) -> Result<sandbox::RunOutput> {
    return make_error("worker gone");
  }));
  EXPECT_TRUE(
      heaps.get("slow", 8u << 20, [&](int) -> Result<sandbox::RunOutput> { return made(4096); }));
  // A report of more bytes than the memfd held is not believed.
  EXPECT_FALSE(
      heaps.get("liar", 8192, [&](int) -> Result<sandbox::RunOutput> { return made(1u << 20); }));
}

TEST(JsHeaps, ConcurrentCallersWaitForTheOneRunThatMakesIt) {
  JsHeaps heaps(64u << 20);
  std::atomic<int> makes{0};
  std::vector<std::thread> threads;
  std::vector<std::shared_ptr<const UniqueFd>> got(8);
  for (size_t i = 0; i < got.size(); ++i) {
    threads.emplace_back([&, i] {
      got[i] = heaps.get("k", 8u << 20, [&](int) -> Result<sandbox::RunOutput> {
        ++makes;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        return made(4096);
      });
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(makes.load(), 1);
  for (const auto& g : got) {
    ASSERT_TRUE(g);
    EXPECT_EQ(g->get(), got[0]->get());
  }
}

TEST(JsHeaps, LeastRecentlyUsedGoFirstAndHoldersKeepTheirs) {
  JsHeaps heaps(3u << 20);
  auto one_mib = [](int) -> Result<sandbox::RunOutput> { return made(1u << 20); };
  auto a = heaps.get("a", 8u << 20, one_mib);
  heaps.get("b", 8u << 20, one_mib);
  heaps.get("c", 8u << 20, one_mib);
  heaps.get("a", 8u << 20, one_mib);  // a is used again: b is now the oldest
  heaps.get("d", 8u << 20, one_mib);
  EXPECT_EQ(heaps.bytes(), 3u << 20);
  int makes = 0;
  auto count = [&](int) -> Result<sandbox::RunOutput> {
    ++makes;
    return made(1u << 20);
  };
  heaps.get("a", 8u << 20, count);
  EXPECT_EQ(makes, 0) << "a stayed";
  heaps.get("b", 8u << 20, count);
  EXPECT_EQ(makes, 1) << "b was dropped";
  ASSERT_TRUE(a);
  char c;
  EXPECT_EQ(::pread(a->get(), &c, 1, 0), 1) << "a caller's heap outlives its eviction";
}

TEST(JsHeaps, KeysDifferWithWhatTheLayerSawWhileLoading) {
  const std::string base = JsHeaps::key(1, "sha", {"a"}, {{"K", "V"}}, "/tmp");
  EXPECT_EQ(base, JsHeaps::key(1, "sha", {"a"}, {{"K", "V"}}, "/tmp"));
  EXPECT_NE(base, JsHeaps::key(2, "sha", {"a"}, {{"K", "V"}}, "/tmp"));
  EXPECT_NE(base, JsHeaps::key(1, "sha2", {"a"}, {{"K", "V"}}, "/tmp"));
  EXPECT_NE(base, JsHeaps::key(1, "sha", {"b"}, {{"K", "V"}}, "/tmp"));
  EXPECT_NE(base, JsHeaps::key(1, "sha", {"a"}, {{"K", "W"}}, "/tmp"));
  EXPECT_NE(base, JsHeaps::key(1, "sha", {"a"}, {{"K", "V"}}, "/"));
}

}  // namespace
}  // namespace onemcp::server
