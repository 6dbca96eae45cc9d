// deps/process.h — runs a helper program (npm, esbuild) to completion: no shell, an explicit
// argv and environment, its own process group (killed as a whole on timeout), stdout and stderr
// captured together with the oldest bytes dropped beyond a cap.
// Thread-safety: run_process may be called from many threads at once.
#pragma once

#include <string>
#include <vector>

#include "base/result.h"

namespace onemcp::deps {

struct ProcessSpec {
  std::vector<std::string> argv;  // argv[0] is the program's path (no PATH lookup)
  std::vector<std::string> env;   // the whole environment, "NAME=value"
  std::string cwd;                // working directory of the child
  int timeout_ms = 60000;
  size_t max_output = 64u << 10;  // bytes of output kept (the last ones)
};

struct ProcessResult {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  bool timed_out = false;  // the group was killed at the deadline
  std::string output;      // stdout and stderr interleaved, at most max_output bytes
};

// Errors only when the program cannot be started; a failing program is a ProcessResult.
[[nodiscard]] Result<ProcessResult> run_process(const ProcessSpec& spec);

// The last `n` non-empty lines of `text`, without ANSI colors.
std::string last_lines(const std::string& text, size_t n);

// Full path of `name` found in the directories of `path` (a PATH value), or empty.
std::string find_in_path(const std::string& name, const std::string& path);

}  // namespace onemcp::deps
