// runtimes/js/fs_host.h — the system calls behind run_js's `fs` module (prelude.js): whole-file
// reads and writes, copy, stat, readdir, mkdir, unlink, rmdir, rename and access, made by the
// run's own process on the paths the prelude resolved against process.cwd(). Nothing here
// decides what may be touched: the run's mount namespace, Landlock rules, seccomp filter and
// rlimits, already applied to the process, do, and their refusals come back as the kernel's
// errno (EROFS, EACCES, ENOENT, ...). What this adds: no open can block (O_NONBLOCK: a FIFO
// without a writer would hang a blocking open), only regular files are read (a FIFO or a device
// such as /dev/zero never ends), no read brings more than the run's memory budget into the heap
// (the size is checked first, then the bytes are read incrementally into the JS heap, where the
// heap's own limit applies), and every fd is O_CLOEXEC | O_NOCTTY and closed before returning.
//
// Protocol with the prelude: a function that fails returns null and keeps why; host.fsError()
// then returns [errno (negative, as Node's), code, description, syscall, size, read limit] for
// the prelude to build Node's error ("ENOENT: no such file or directory, open '/work/x'").
// Thread-safety: the run's JS thread only (the last failure is process state).
#pragma once

#include <cstddef>
#include <span>

#include "runtimes/js/host_call.h"

namespace onemcp::js::fs {

// The host functions of the fs module (fsRead, fsWrite, ..., fsError), each guarded.
std::span<const HostFunction> host_functions();

// The most bytes one read may bring into the heap: the run's memory budget. 0: the run has no
// budget (then 1 GiB, under QuickJS's 2 GiB ArrayBuffer limit).
void set_read_limit(size_t bytes);

}  // namespace onemcp::js::fs
