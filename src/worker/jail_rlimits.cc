// The jail's resource limits. The memory cgroup and the supervisor's deadline are the real
// bounds; these are backstops and the limits no cgroup has (open files, file size, core dumps).
#include <sys/resource.h>

#include "worker/jail_internal.h"

namespace onemcp::worker::jail {
namespace {

constexpr rlim_t kMaxOpenFiles = 256;

// Soft and hard limit to `value`, or to the hard limit the worker got if that is lower (raising
// it would need a privilege no run has).
Status set(int resource, rlim_t value, const char* name) {
  rlimit r{};
  if (::getrlimit(resource, &r) == 0 && r.rlim_max != RLIM_INFINITY && r.rlim_max < value)
    value = r.rlim_max;
  r = {value, value};
  if (::setrlimit(resource, &r) != 0) return make_error(why(std::string("setrlimit ") + name));
  return {};
}

}  // namespace

Status set_rlimits(const RunJail& run) {
  const ipc::RunRequest& req = *run.request;
  if (auto s = set(RLIMIT_CORE, 0, "RLIMIT_CORE"); !s) return s;
  if (auto s = set(RLIMIT_NOFILE, kMaxOpenFiles, "RLIMIT_NOFILE"); !s) return s;
  if (req.mem_mb > 0) {
    // What the interpreter already mapped plus the run's budget.
    if (auto s = set(RLIMIT_AS, run.vm_base + (req.mem_mb + 64) * (1ull << 20), "RLIMIT_AS"); !s)
      return s;
  }
  if (req.timeout_ms > 0 && !req.live) {
    // Backstop only: the supervisor kills on the wall-clock deadline. (A live run's process
    // serves many calls: their CPU time adds up, and no call could raise the limit again.)
    if (auto s = set(RLIMIT_CPU, req.timeout_ms / 1000 + 2, "RLIMIT_CPU"); !s) return s;
  }
  if (run.sandbox) {
    if (auto s = set(RLIMIT_FSIZE, kTmpBytes, "RLIMIT_FSIZE"); !s) return s;
  }
  return {};
}

}  // namespace onemcp::worker::jail
