#include "sandbox/outcome.h"

#include <csignal>

namespace onemcp::sandbox {

const char* to_string(Outcome o) {
  switch (o) {
    case Outcome::ok:
      return "ok";
    case Outcome::error:
      return "error";
    case Outcome::timeout:
      return "timeout";
    case Outcome::memory:
      return "memory";
    case Outcome::output_limit:
      return "output_limit";
    case Outcome::policy_violation:
      return "policy_violation";
    case Outcome::crashed:
      return "crashed";
    case Outcome::killed:
      return "killed";
    case Outcome::internal:
      return "internal";
  }
  return "internal";
}

Outcome classify_outcome(const RunFacts& f) {
  if (f.forced) return *f.forced;
  if (f.oom_killed || f.error_kind == "memory") return Outcome::memory;
  if (f.error_kind == "timeout") return Outcome::timeout;
  if (f.signal == SIGSYS) return Outcome::policy_violation;
  if (f.signal == SIGXCPU) return Outcome::timeout;
  if (f.signal != 0) return Outcome::crashed;
  if (f.error_kind == "internal") return Outcome::internal;
  return f.exit_code == 0 ? Outcome::ok : Outcome::error;
}

}  // namespace onemcp::sandbox
