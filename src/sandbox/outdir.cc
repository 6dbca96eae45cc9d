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
#include <string_view>
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

void tree(int dirfd, const std::string& prefix, int depth, size_t max,
          std::vector<TreeEntry>& out) {
  if (depth <= 0) return;
  Listing l = list_beneath(dirfd, 4 * max + 1);
  if (!l.dir) return;
  std::sort(l.names.begin(), l.names.end());
  for (const auto& name : l.names) {
    if (out.size() >= max) return;
    struct stat st;
    if (::fstatat(::dirfd(l.dir), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (S_ISREG(st.st_mode)) {
      out.push_back({prefix + name, uint64_t(st.st_size), false});
    } else if (S_ISDIR(st.st_mode)) {
      out.push_back({prefix + name, 0, true});
      UniqueFd sub(open_beneath(::dirfd(l.dir), name.c_str(), O_RDONLY | O_DIRECTORY));
      if (sub.valid()) tree(sub.get(), prefix + name + "/", depth - 1, max, out);
    }
  }
}

}  // namespace

std::vector<TreeEntry> list_tree(int dirfd, size_t max_entries, int max_depth) {
  std::vector<TreeEntry> out;
  tree(dirfd, "", max_depth, max_entries, out);
  return out;
}

Result<std::string> read_beneath(int dirfd, const std::string& path, size_t max_bytes) {
  if (path.empty() || path.size() > 4096 || path.find('\0') != std::string::npos)
    return make_error("bad path");
  for (size_t at = 0; at <= path.size();) {
    size_t end = std::min(path.find('/', at), path.size());
    std::string_view part(path.data() + at, end - at);
    if (part.empty() || part == "." || part == "..")
      return make_error("bad path: it must be relative, without empty, . or .. components");
    at = end + 1;
  }
  UniqueFd f(open_beneath(dirfd, path.c_str(), O_RDONLY));
  if (!f.valid()) {
    return make_error(errno == ELOOP    ? "a symbolic link is on the way (links are not followed)"
                      : errno == ENOENT ? "no such file"
                                        : std::string("cannot open it: ") + std::strerror(errno));
  }
  struct stat st;
  if (::fstat(f.get(), &st) != 0 || !S_ISREG(st.st_mode)) return make_error("not a regular file");
  if (uint64_t(st.st_size) > max_bytes)
    return make_error("the file is larger than " + std::to_string(max_bytes) + " bytes");
  std::string data(size_t(st.st_size) + 1, '\0');
  size_t got = 0;
  while (got < data.size()) {
    ssize_t n = ::pread(f.get(), data.data() + got, data.size() - got, off_t(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += size_t(n);
  }
  if (got > max_bytes)
    return make_error("the file is larger than " + std::to_string(max_bytes) + " bytes");
  data.resize(got);
  return data;
}

void clear_out_dir(int dirfd, int max_depth) {
  if (max_depth < 0) return;
  Listing l = list_beneath(dirfd, 100001);
  if (!l.dir) return;
  const int self = ::dirfd(l.dir);
  for (const auto& name : l.names) {
    if (::unlinkat(self, name.c_str(), 0) == 0 || errno != EISDIR) continue;
    // Not O_PATH: openat2 refuses it with the O_NONBLOCK and O_NOCTTY open_beneath adds.
    UniqueFd sub(open_beneath(self, name.c_str(), O_RDONLY | O_DIRECTORY));
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
