#include "deps/retention.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <filesystem>

namespace onemcp::deps {
namespace fs = std::filesystem;

namespace {

std::atomic<uint64_t> g_counter{0};

bool is_key(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

int64_t mtime_ns(const struct stat& st) {
  return int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

uint64_t tree_bytes(const fs::path& dir) {
  uint64_t n = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    struct stat st;
    if (::lstat(it->path().c_str(), &st) == 0 && S_ISREG(st.st_mode)) n += uint64_t(st.st_size);
  }
  return n;
}

// Out of sight first (one rename), then deleted.
bool remove_aside(const fs::path& root, const std::string& name) {
  fs::path aside = root / (".gc-" + std::to_string(::getpid()) + "-" + std::to_string(g_counter++));
  if (::rename((root / name).c_str(), aside.c_str()) != 0) return false;
  std::error_code ec;
  fs::remove_all(aside, ec);
  return true;
}

struct Set {
  fs::path root;
  std::string key;
  int64_t mtime;
  uint64_t bytes;
};

// Removes set `s` unless it is built or used right now, or was used since it was listed.
bool try_remove(const Set& s) {
  const std::string lock_path = (s.root / (s.key + ".lock")).string();
  UniqueFd lock = lock_file(lock_path, LOCK_EX | LOCK_NB);
  if (!lock.valid()) return false;
  struct stat st;
  if (::lstat((s.root / s.key).c_str(), &st) != 0 || mtime_ns(st) != s.mtime) return false;
  if (!remove_aside(s.root, s.key)) return false;
  ::unlink(lock_path.c_str());  // still held: whoever waits for it retries on a new file
  return true;
}

}  // namespace

UniqueFd lock_file(const std::string& path, int op) {
  for (;;) {
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!fd.valid()) return fd;
    if (::flock(fd.get(), op) != 0) {
      if (errno == EINTR) continue;
      return UniqueFd();
    }
    struct stat held, now;
    if (::fstat(fd.get(), &held) != 0) return UniqueFd();
    if (::stat(path.c_str(), &now) == 0 && now.st_ino == held.st_ino && now.st_dev == held.st_dev)
      return fd;
  }
}

bool LastUse::touch(const std::string& dir) {
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lk(mu_);
    auto it = at_.find(dir);
    if (it != at_.end() && now - it->second < interval_) return true;
  }
  if (::utimensat(AT_FDCWD, dir.c_str(), nullptr, 0) != 0) {
    std::lock_guard lk(mu_);
    at_.erase(dir);
    return false;
  }
  record(dir);
  return true;
}

void LastUse::record(const std::string& dir) {
  std::lock_guard lk(mu_);
  if (at_.size() > 4096) at_.clear();  // only saves syscalls: forgetting is harmless
  at_[dir] = std::chrono::steady_clock::now();
}

Result<DepsGcStats> gc_dependency_sets(const std::vector<DepsRoot>& roots, const DepsGcOptions& o) {
  const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  auto ns = [](std::chrono::milliseconds d) { return int64_t(d.count()) * 1000000; };
  DepsGcStats stats;
  std::vector<Set> sets;
  for (const auto& r : roots) {
    const fs::path root(r.dir);
    std::error_code ec;
    if (!fs::is_directory(root, ec)) continue;
    for (const auto& e : fs::directory_iterator(root, ec)) {
      const std::string name = e.path().filename().string();
      struct stat st;
      if (::lstat(e.path().c_str(), &st) != 0) continue;
      if (S_ISREG(st.st_mode) && name.size() == 69 && name.ends_with(".lock") &&
          is_key(name.substr(0, 64)) && !fs::exists(root / name.substr(0, 64))) {
        // The lock of a set that is gone (a user found it removed): unused unless it is locked.
        UniqueFd lock = lock_file(e.path().string(), LOCK_EX | LOCK_NB);
        if (lock.valid() && !fs::exists(root / name.substr(0, 64))) ::unlink(e.path().c_str());
        continue;
      }
      if (!S_ISDIR(st.st_mode)) continue;
      if (is_key(name)) {
        sets.push_back({root, name, mtime_ns(st), tree_bytes(e.path())});
      } else if (name.rfind(".gc-", 0) == 0) {
        fs::remove_all(e.path(), ec);  // left by a gc that died
      } else if (name.rfind(".tmp-", 0) == 0 && name.size() > 70 && is_key(name.substr(5, 64))) {
        // A build's directory; left behind by a dead build unless someone builds the set now.
        const std::string lock_path = (root / (name.substr(5, 64) + ".lock")).string();
        UniqueFd lock = lock_file(lock_path, LOCK_EX | LOCK_NB);
        if (lock.valid() && remove_aside(root, name) && !fs::exists(root / name.substr(5, 64)))
          ::unlink(lock_path.c_str());
      }
    }
    if (ec) return make_error("cannot read " + r.dir + ": " + ec.message());
    // The download cache: wiped whole when over budget and no install uses it.
    const fs::path dl = root / r.download_cache;
    uint64_t dl_bytes = fs::is_directory(dl, ec) ? tree_bytes(dl) : 0;
    if (dl_bytes > o.max_download_cache_bytes) {
      UniqueFd lock = lock_file((root / kDownloadLock).string(), LOCK_EX | LOCK_NB);
      if (lock.valid() && remove_aside(root, r.download_cache)) {
        dl_bytes = 0;
        ++stats.download_caches_wiped;
      }
    }
    stats.download_bytes += dl_bytes;
  }
  std::sort(sets.begin(), sets.end(), [](const Set& a, const Set& b) { return a.mtime < b.mtime; });
  uint64_t total = 0;
  for (const auto& s : sets) total += s.bytes;
  for (const auto& s : sets) {
    const bool expired = s.mtime<now - ns(o.max_age), over = total> o.max_total_bytes;
    const bool idle = s.mtime < now - ns(o.min_idle);
    if ((expired || over) && idle && try_remove(s)) {
      total -= s.bytes;
      ++stats.removed;
    } else {
      ++stats.kept;
    }
  }
  stats.bytes_kept = total;
  return stats;
}

}  // namespace onemcp::deps
