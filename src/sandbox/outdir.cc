#include "sandbox/outdir.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "base/unique_fd.h"

namespace onemcp::sandbox {
namespace {

int open_beneath(int dirfd, const char* name, uint64_t flags) {
  open_how how{};
  how.flags = flags | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
  return int(::syscall(SYS_openat2, dirfd, name, &how, sizeof how));
}

// A directory beneath `dirfd` ("." of it), open, and the names it holds (not "." or ".."), at
// most `max_names` of them.
struct Listing {
  DIR* dir = nullptr;
  std::vector<std::string> names;
  Listing() = default;
  Listing(const Listing&) = delete;
  Listing& operator=(const Listing&) = delete;
  Listing(Listing&& o) noexcept : dir(std::exchange(o.dir, nullptr)), names(std::move(o.names)) {}
  ~Listing() {
    if (dir) ::closedir(dir);
  }
};

Listing list_beneath(int dirfd, size_t max_names) {
  Listing l;
  UniqueFd fd(open_beneath(dirfd, ".", O_RDONLY | O_DIRECTORY));
  if (!fd.valid()) return l;
  l.dir = ::fdopendir(fd.get());
  if (!l.dir) return l;
  fd.release();  // owned by the DIR now
  while (dirent* e = ::readdir(l.dir)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    l.names.emplace_back(e->d_name);
    if (l.names.size() >= max_names) break;
  }
  return l;
}

struct Walk {
  const OutLimits& limits;
  std::vector<OutFile> files;
  size_t total = 0;

  void dir(int dirfd, const std::string& prefix, int depth) {
    if (depth > limits.max_depth) return;
    // A directory of millions: stop listing.
    Listing l = list_beneath(dirfd, 4 * limits.max_files + 1);
    if (!l.dir) return;
    std::sort(l.names.begin(), l.names.end());  // deterministic order for the caller
    for (const auto& name : l.names) {
      if (files.size() >= limits.max_files) break;
      UniqueFd f(open_beneath(::dirfd(l.dir), name.c_str(), O_RDONLY));
      if (!f.valid()) continue;  // symlink, vanished, or otherwise refused
      struct stat st;
      if (::fstat(f.get(), &st) != 0) continue;
      if (S_ISDIR(st.st_mode)) {
        dir(f.get(), prefix + name + "/", depth + 1);
      } else if (S_ISREG(st.st_mode)) {
        file(f.get(), prefix + name, st);
      }
    }
  }

  void file(int fd, std::string path, const struct stat& st) {
    OutFile out;
    out.path = std::move(path);
    out.size = uint64_t(st.st_size);
    size_t room = std::min(limits.file_bytes, limits.total_bytes - std::min(total, limits.total_bytes));
    size_t want = size_t(std::min<uint64_t>(out.size, room));
    out.data.resize(want);
    size_t got = 0;
    while (got < want) {
      ssize_t n = ::pread(fd, out.data.data() + got, want - got, off_t(got));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += size_t(n);
    }
    out.data.resize(got);
    out.truncated = got < out.size;
    total += got;
    files.push_back(std::move(out));
  }
};

}  // namespace

void clear_out_dir(int dirfd, int max_depth) {
  if (max_depth < 0) return;
  Listing l = list_beneath(dirfd, 100001);
  if (!l.dir) return;
  const int self = ::dirfd(l.dir);
  for (const auto& name : l.names) {
    if (::unlinkat(self, name.c_str(), 0) == 0 || errno != EISDIR) continue;
    UniqueFd sub(open_beneath(self, name.c_str(), O_PATH | O_DIRECTORY));
    if (!sub.valid()) continue;
    clear_out_dir(sub.get(), max_depth - 1);
    ::unlinkat(self, name.c_str(), AT_REMOVEDIR);
  }
}

Result<std::vector<OutFile>> read_out_dir(int dirfd, const OutLimits& limits) {
  Walk w{limits, {}, 0};
  w.dir(dirfd, "", 0);
  return std::move(w.files);
}

}  // namespace onemcp::sandbox
