// upstream/failure_log.h: an upstream that keeps failing is logged at its 1st, 2nd, 4th, 8th...
// failure with a count and the time it started; coming back is told once.
#include <gtest/gtest.h>

#include <vector>

#include "upstream/failure_log.h"

namespace onemcp::upstream {
namespace {

using std::chrono::milliseconds;
const auto kT0 = std::chrono::system_clock::time_point(std::chrono::milliseconds(1767323045678));

TEST(UpstreamFailureLog, FirstFailureThenPowersOfTwoWithCountAndSince) {
  FailureLog log;
  std::vector<uint64_t> logged;
  for (int i = 1; i <= 100; ++i) {
    auto line = log.failed("upstream 'x' exited with status 3", milliseconds(30000),
                           kT0 + std::chrono::seconds(30 * i));
    if (!line) continue;
    logged.push_back(log.failures());
    if (i == 1) {
      EXPECT_EQ(*line, "upstream 'x' exited with status 3; retrying in 30000 ms");
    } else if (i == 64) {
      EXPECT_EQ(*line,
                "upstream 'x' exited with status 3; failed 64 times since "
                "2026-01-02T03:04:35.678Z; retrying in 30000 ms (next logged at failure 128)");
    }
  }
  EXPECT_EQ(logged, (std::vector<uint64_t>{1, 2, 4, 8, 16, 32, 64}));
}

TEST(UpstreamFailureLog, RecoveryIsToldOnceAfterRepeatedFailuresAndResets) {
  FailureLog log;
  EXPECT_FALSE(log.recovered());  // never failed
  ASSERT_TRUE(log.failed("e", milliseconds(500), kT0));
  EXPECT_FALSE(log.recovered());  // one failure: its warning said it all
  for (int i = 0; i < 3; ++i) (void)log.failed("e", milliseconds(500), kT0);
  EXPECT_EQ(log.recovered(), "up again after failing 3 times since 2026-01-02T03:04:05.678Z");
  // A new run of failures starts over: its first is logged again.
  EXPECT_EQ(log.failed("e", milliseconds(500), kT0), "e; retrying in 500 ms");
}

}  // namespace
}  // namespace onemcp::upstream
