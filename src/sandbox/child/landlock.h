// sandbox/child/landlock.h — the run child's Landlock filesystem/network/scope restriction.
// Thread-safety: landlock_abi() is stateless; landlock_restrict() restricts only the calling
// thread (and its future children), so call it in the single-threaded run child.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"

namespace onemcp::sandbox::child {

struct LandlockPaths {
  // Read files and list directories beneath these; never execute.
  std::vector<std::string> read_only;
  // Additionally write, truncate, create (files, dirs, symlinks, fifos, sockets), remove,
  // and rename/link between them; never execute, never create device nodes.
  // A path naming a non-directory (e.g. "/dev/null") gets only the rights Landlock accepts
  // on a file: read, write, truncate. Device nodes are meant to be listed one by one this
  // way rather than granting "/dev" as a whole.
  std::vector<std::string> read_write;
  // TCP ports the caller may connect to (ABI >= 4; any address, but the run's network
  // namespace holds only loopback). Binding stays denied.
  std::vector<uint16_t> connect_ports;
};

// Highest Landlock ABI the running kernel offers; 0 when Landlock is unsupported or disabled.
int landlock_abi();

// Restricts the calling thread to `paths`; every other filesystem access is denied, and:
//  ABI >= 4: all TCP bind is denied, and TCP connect to every port but `connect_ports`;
//  ABI >= 6: abstract UNIX sockets and signals cannot reach processes outside this domain.
// Rights a newer kernel adds beyond ABI 7 are not handled (so they stay allowed), as Landlock
// requires for forward compatibility. Paths that do not exist are skipped.
// Files already open (stdio pipes, memfds, the IPC socket) are unaffected: open them before.
// Requires PR_SET_NO_NEW_PRIVS already set (checked). Returns the ABI used; an error if the
// kernel has no Landlock — the caller decides whether that is fatal.
Result<int> landlock_restrict(const LandlockPaths& paths);

}  // namespace onemcp::sandbox::child
