// worker/input_files.h — the call's `files`, written into the run's working directory by the run
// itself, after its lockdown (so as its own user, under its Landlock and seccomp rules) and
// before its code starts.
// Thread-safety: single-threaded (a run's process).
#pragma once

#include <string>
#include <vector>

#include "base/result.h"
#include "ipc/wire.h"

namespace onemcp::worker {

// Writes each file below `cwd` ("" : the current directory), making its parent directories
// (0755); files are 0644 and new (O_EXCL), or with `replace` (a session's workspace, which keeps
// files from earlier calls) replace a regular file of that name. Every path is checked again
// (ipc::check_input_path), and no symbolic link is followed on the way. The error names the file
// and the reason.
Status write_input_files(const std::string& cwd, const std::vector<ipc::InputFile>& files,
                         bool replace = false);

}  // namespace onemcp::worker
