#include "sandbox/outcome.h"

#include <gtest/gtest.h>

#include <csignal>

namespace onemcp::sandbox {
namespace {

RunFacts exited(int code, std::optional<std::string> kind = std::nullopt) {
  RunFacts f;
  f.exit_code = code;
  f.error_kind = std::move(kind);
  return f;
}

RunFacts signalled(int sig) {
  RunFacts f;
  f.signal = sig;
  f.exit_code = 128 + sig;
  return f;
}

TEST(ClassifyOutcome, ExitCodeDecidesWhenNothingElseHappened) {
  EXPECT_EQ(classify_outcome(exited(0)), Outcome::ok);
  EXPECT_EQ(classify_outcome(exited(1, "exception")), Outcome::error);
  EXPECT_EQ(classify_outcome(exited(3)), Outcome::error);
  EXPECT_EQ(classify_outcome(exited(1, "syntax")), Outcome::error);
}

TEST(ClassifyOutcome, WhatTheSupervisorForcedWins) {
  for (Outcome why : {Outcome::timeout, Outcome::killed, Outcome::output_limit, Outcome::memory,
                      Outcome::internal}) {
    RunFacts f = signalled(SIGKILL);
    f.forced = why;
    f.oom_killed = true;
    f.error_kind = "exception";
    EXPECT_EQ(classify_outcome(f), why) << to_string(why);
  }
  RunFacts clean = exited(0);
  clean.forced = Outcome::timeout;  // killed at the deadline just as it exited 0
  EXPECT_EQ(classify_outcome(clean), Outcome::timeout);
}

TEST(ClassifyOutcome, MemoryFromTheOomKillerOrTheRunsOwnReport) {
  RunFacts oom = signalled(SIGKILL);
  oom.oom_killed = true;
  EXPECT_EQ(classify_outcome(oom), Outcome::memory);
  RunFacts child_oom = exited(0);  // a process the run forked was OOM-killed; the run exited 0
  child_oom.oom_killed = true;
  EXPECT_EQ(classify_outcome(child_oom), Outcome::memory);
  EXPECT_EQ(classify_outcome(exited(1, "memory")), Outcome::memory);
  EXPECT_EQ(classify_outcome(exited(1, "timeout")), Outcome::timeout);
}

TEST(ClassifyOutcome, SignalsAreTheKernelsVerdict) {
  EXPECT_EQ(classify_outcome(signalled(SIGSYS)), Outcome::policy_violation);
  EXPECT_EQ(classify_outcome(signalled(SIGXCPU)), Outcome::timeout);
  EXPECT_EQ(classify_outcome(signalled(SIGSEGV)), Outcome::crashed);
  EXPECT_EQ(classify_outcome(signalled(SIGKILL)), Outcome::crashed);  // not by the supervisor
  RunFacts reported = signalled(SIGSEGV);
  reported.error_kind = "internal";
  EXPECT_EQ(classify_outcome(reported), Outcome::crashed);
  EXPECT_EQ(classify_outcome(exited(1, "internal")), Outcome::internal);
}

TEST(ClassifyOutcome, EveryOutcomeHasItsName) {
  EXPECT_STREQ(to_string(Outcome::policy_violation), "policy_violation");
  EXPECT_STREQ(to_string(Outcome::output_limit), "output_limit");
  EXPECT_STREQ(to_string(Outcome::ok), "ok");
}

}  // namespace
}  // namespace onemcp::sandbox
