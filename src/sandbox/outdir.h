// sandbox/outdir.h — reads back what a run left in its /out directory, from the host, without
// ever following what the run planted: every open is beneath the directory fd (openat2
// RESOLVE_BENEATH, no symlinks, no magic links, no other mounts), non-blocking, regular files
// only, with caps on depth, count and bytes (sparse or endless files cannot make us read more).
// Thread-safety: pure function of its arguments.
#pragma once

#include <string>
#include <vector>

#include "base/result.h"

namespace onemcp::sandbox {

struct OutFile {
  std::string path;     // relative to /out, "/"-separated
  uint64_t size = 0;    // size the file claims (st_size)
  std::string data;     // at most OutLimits::file_bytes of it
  bool truncated = false;
};

struct OutLimits {
  size_t max_files = 64;
  int max_depth = 8;
  size_t file_bytes = 1u << 20;
  size_t total_bytes = 8u << 20;
};

// `dirfd` is an O_PATH or O_RDONLY directory fd. Entries that are not regular files or
// directories are skipped, as are entries beyond the limits.
Result<std::vector<OutFile>> read_out_dir(int dirfd, const OutLimits& limits = {});

// What is beneath `dirfd` (a session's workspace), for listing: regular files and directories,
// sorted, at most `max_entries` of them and `max_depth` levels deep; nothing followed.
struct TreeEntry {
  std::string path;  // relative, "/"-separated
  uint64_t size = 0;
  bool dir = false;
};
std::vector<TreeEntry> list_tree(int dirfd, size_t max_entries = 1000, int max_depth = 16);

// The regular file at relative `path` beneath `dirfd`, if it is at most `max_bytes` long. The
// error says why not: a bad path (absolute, an empty, "." or ".." component, a NUL), a symlink
// on the way, missing, not a regular file, too large.
Result<std::string> read_beneath(int dirfd, const std::string& path, size_t max_bytes);

// Empties the directory (a session's /out between its calls), removing entries beneath `dirfd`
// only: links are removed, never followed; no other mount is entered. Best effort, bounded by
// `max_depth` (what is deeper, or cannot be removed, stays).
void clear_out_dir(int dirfd, int max_depth = 16);

}  // namespace onemcp::sandbox
