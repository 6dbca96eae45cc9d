// sandbox/child/seccomp.h — the run child's seccomp deny-list (DESIGN.md §3), compiled once in
// the zygote and installed as the last step of every run child's setup.
// Thread-safety: build() is a pure function; a built SeccompProgram is immutable, so install()
// may be called concurrently and from a freshly forked child (it does not allocate).
#pragma once

#include <linux/filter.h>

#include <cstddef>
#include <utility>
#include <vector>

#include "base/result.h"

namespace onemcp::sandbox::child {

// A compiled classic-BPF program. libseccomp is used only by build(); install() is a single
// seccomp(2) call on the stored instructions, so the per-run hot path carries no library state.
class SeccompProgram {
 public:
  // Default ALLOW; a non-x86_64 ABI (i386 via int $0x80, x32) kills the process; the listed
  // syscalls fail with EPERM/ENOSYS/EAFNOSUPPORT so user code sees an ordinary error.
  static Result<SeccompProgram> build();

  // Loads the filter on the calling thread (flags 0: the run child is single-threaded).
  // The caller must already have set PR_SET_NO_NEW_PRIVS; it is checked, not set, so the
  // documented setup order stays in one place (the child's setup function).
  // Allocation-free on success; only the error path builds a message.
  Status install() const;

  size_t instructions() const { return prog_.size(); }

 private:
  explicit SeccompProgram(std::vector<sock_filter> prog) : prog_(std::move(prog)) {}
  std::vector<sock_filter> prog_;
};

}  // namespace onemcp::sandbox::child
