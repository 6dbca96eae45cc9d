// sandbox/outcome.h — how a run ended, decided from what the supervisor saw of it.
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string>

namespace onemcp::sandbox {

// Closed set of ways a run can end.
enum class Outcome {
  ok,
  error,
  timeout,
  memory,
  output_limit,
  policy_violation,
  crashed,
  killed,
  internal
};
const char* to_string(Outcome o);

// What the supervisor knows once a run is over.
struct RunFacts {
  std::optional<Outcome> forced;          // the supervisor ended it (deadline, cancel, limits)
  bool oom_killed = false;                // the kernel's OOM killer struck in its memory cgroup
  std::optional<std::string> error_kind;  // from its report (ipc::ChildReport::error_kind)
  int signal = 0;                         // the signal that ended its process, or 0
  int exit_code = 0;                      // its exit code (128 + signal when signalled)
};

// In order: what the supervisor forced; an OOM kill anywhere in the run (the run itself or a
// process it forked went over its memory budget); what the run reported of itself (memory,
// timeout); SIGSYS (seccomp) is a policy violation, SIGXCPU (the CPU-time backstop) a timeout,
// any other signal a crash; an internal error it reported; else its exit code: 0 ok, anything
// else an error.
Outcome classify_outcome(const RunFacts& f);

}  // namespace onemcp::sandbox
