#include "capsule/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>  // renameat2
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "base/log.h"

namespace onemcp::capsule {
namespace {

constexpr std::string_view kTempPrefix = ".tmp-";
constexpr std::string_view kDeletePrefix = ".del-";
constexpr int kMaxRemoveDepth = 16;

std::string errno_text(int e) { return std::strerror(e); }

// `e` with `prefix` before its message, keeping its errno.
Error prefixed(const std::string& prefix, const Error& e) {
  return make_os_error(e.os_error, prefix + e.message);
}

int64_t to_ns(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
int64_t mtime_ns(const struct stat& st) {
  return int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

timespec to_timespec(int64_t ns) {
  return timespec{time_t(ns / 1000000000), long(ns % 1000000000)};
}

// Sets a directory's mtime (its last use) and leaves its atime alone.
void set_mtime(int fd, int64_t ns) {
  timespec times[2] = {{0, UTIME_OMIT}, to_timespec(ns)};
  ::futimens(fd, times);
}

std::string rfc3339(std::chrono::system_clock::time_point t) {
  time_t secs = std::chrono::system_clock::to_time_t(t);
  struct tm tm;
  ::gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Reads the regular file `name` in `dirfd` without following a symlink. With `exact`, the file
// must be exactly that long; otherwise at most `max` bytes.
Result<std::string> read_regular(int dirfd, const std::string& name, uint64_t max, bool exact) {
  UniqueFd fd(
      ::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ELOOP) return make_error(name + ": is a symbolic link");
    if (errno == ENOENT) return make_error(name + ": missing");
    return make_error(name + ": cannot open: " + errno_text(errno));
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return make_error(name + ": cannot stat: " + errno_text(errno));
  if (!S_ISREG(st.st_mode)) return make_error(name + ": not a regular file");
  uint64_t size = uint64_t(st.st_size);
  if (exact && size != max) {
    return make_error(name + ": " + std::to_string(size) + " bytes, the manifest says " +
                      std::to_string(max));
  }
  if (size > max)
    return make_error(name + ": " + std::to_string(size) + " bytes, over the limit of " +
                      std::to_string(max));
  std::string data(size, '\0');
  size_t got = 0;
  while (got < data.size()) {
    ssize_t n = ::pread(fd.get(), data.data() + got, data.size() - got, off_t(got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(name + ": cannot read: " + errno_text(errno));
    if (n == 0) return make_error(name + ": shrank while being read");
    got += size_t(n);
  }
  return data;
}

Status write_file(int dirfd, const std::string& name, std::string_view data, bool sync) {
  UniqueFd fd(
      ::openat(dirfd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd.valid()) return make_os_error(errno, name + ": cannot create: " + errno_text(errno));
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int e = n < 0 ? errno : ENOSPC;  // a regular file takes nothing more: no room
      return make_os_error(e, name + ": cannot write: " + errno_text(e));
    }
    done += size_t(n);
  }
  if (sync && ::fsync(fd.get()) != 0)
    return make_os_error(errno, name + ": cannot sync: " + errno_text(errno));
  return {};
}

// Names in directory `fd` (not "." or ".."); `fd` itself stays open and usable.
std::vector<std::string> list_dir(int fd) {
  std::vector<std::string> names;
  int dup = ::openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dup < 0) return names;
  DIR* d = ::fdopendir(dup);
  if (!d) {
    ::close(dup);
    return names;
  }
  while (dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0)
      names.emplace_back(e->d_name);
  }
  ::closedir(d);
  return names;
}

// rm -r of `name` in `parent`, never following symlinks; missing entries are fine (another
// process may be removing the same directory).
void remove_tree(int parent, const std::string& name, int depth = 0) {
  if (::unlinkat(parent, name.c_str(), 0) == 0 || errno == ENOENT) return;
  if (errno != EISDIR || depth > kMaxRemoveDepth) return;
  UniqueFd fd(::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.valid()) {
    for (const auto& child : list_dir(fd.get())) remove_tree(fd.get(), child, depth + 1);
  }
  ::unlinkat(parent, name.c_str(), AT_REMOVEDIR);
}

// Sum of the sizes of the files directly inside `name`.
uint64_t dir_bytes(int parent, const std::string& name) {
  UniqueFd fd(::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return 0;
  uint64_t total = 0;
  for (const auto& child : list_dir(fd.get())) {
    struct stat st;
    if (::fstatat(fd.get(), child.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0)
      total += uint64_t(st.st_size);
  }
  return total;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// "/a/b/" → "/a/b": the directory's name in messages and paths built on it.
void strip_trailing_slashes(std::string& dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
}

}  // namespace

const std::string* Capsule::layer(std::string_view name) const {
  for (size_t i = 0; i < manifest.layers.size() && i < layers.size(); ++i) {
    if (manifest.layers[i].name == name) return layers[i].get();
  }
  return nullptr;
}

Result<Capsule> verify_capsule_dir(int dirfd, std::string_view expected_hash, const PublicKey& key,
                                   const StoreLimits& limits) {
  Capsule c;
  auto text = read_regular(dirfd, std::string(kManifestFile), limits.max_manifest_bytes, false);
  if (!text) return text.error();
  c.manifest_json = std::move(*text);
  auto m = parse_manifest(c.manifest_json);
  if (!m) return make_error(std::string(kManifestFile) + ": " + m.error().message);
  c.manifest = std::move(*m);

  auto hash = capsule_hash(c.manifest);
  if (!hash) return make_error(std::string(kManifestFile) + ": " + hash.error().message);
  c.hash = *hash;
  if (!expected_hash.empty() && c.hash != expected_hash) {
    return make_error("manifest.json does not match the capsule id: its content hashes to " +
                      c.hash + " (the manifest was changed)");
  }

  const std::string our_key = public_key_hex(key);
  if (c.manifest.signature.public_key != our_key) {
    return make_error("signature: made with another key (" + c.manifest.signature.public_key +
                      "), not with this project's key (" + our_key + ")");
  }
  auto sig = from_hex(c.manifest.signature.value);
  if (!sig || !verify_signature(key, signed_message(c.hash), *sig)) {
    return make_error("signature: invalid for capsule id " + c.hash);
  }

  uint64_t total = c.manifest_json.size();
  for (const Layer& l : c.manifest.layers) {
    total += std::min<uint64_t>(l.size, limits.max_capsule_bytes + 1);  // no overflow
  }
  if (total > limits.max_capsule_bytes) {
    return make_error("capsule is " + std::to_string(total) + " bytes, over the limit of " +
                      std::to_string(limits.max_capsule_bytes));
  }
  for (const Layer& l : c.manifest.layers) {
    std::string what = "layer \"" + l.name + "\" (" + l.file + ")";
    auto bytes = read_regular(dirfd, l.file, l.size, true);
    if (!bytes) return make_error(what + ": " + bytes.error().message);
    if (sha256_hex(*bytes) != l.sha256)
      return make_error(what + ": SHA-256 mismatch (the file was changed)");
    c.layers.push_back(std::make_shared<const std::string>(std::move(*bytes)));
  }
  return c;
}

class CapsuleStore::Busy {
 public:
  Busy(CapsuleStore& s, std::string name) : s_(s), name_(std::move(name)) {
    std::lock_guard lock(s_.mu_);
    ++s_.busy_[name_];
  }
  ~Busy() {
    std::lock_guard lock(s_.mu_);
    auto it = s_.busy_.find(name_);
    if (--it->second == 0) s_.busy_.erase(it);
  }
  Busy(const Busy&) = delete;
  Busy& operator=(const Busy&) = delete;

 private:
  CapsuleStore& s_;
  std::string name_;
};

CapsuleStore::CapsuleStore(StoreOptions options, UniqueFd root, PublicKey key,
                           std::optional<SigningKey> signer)
    : options_(std::move(options)),
      root_(std::move(root)),
      public_key_(key),
      signer_(std::move(signer)) {}

Result<UniqueFd> CapsuleStore::open_root(const std::string& dir) {
  std::filesystem::path cur;
  for (const auto& part : std::filesystem::path(dir)) {
    cur /= part;
    if (::mkdir(cur.c_str(), 0700) != 0 && errno != EEXIST) {
      return make_error(cur.string() + ": cannot create the capsule cache: " + errno_text(errno));
    }
  }
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return make_error(dir + ": cannot open the capsule cache: " + errno_text(errno));
  return fd;
}

Result<std::unique_ptr<CapsuleStore>> CapsuleStore::create(StoreOptions options, SigningKey key) {
  strip_trailing_slashes(options.dir);
  auto root = open_root(options.dir);
  if (!root) return root.error();
  PublicKey pk = key.public_key();
  return std::unique_ptr<CapsuleStore>(new CapsuleStore(std::move(options), std::move(*root), pk,
                                                        std::optional<SigningKey>(std::move(key))));
}

Result<std::unique_ptr<CapsuleStore>> CapsuleStore::create_verifier(StoreOptions options,
                                                                    PublicKey key) {
  strip_trailing_slashes(options.dir);
  auto root = open_root(options.dir);
  if (!root) return root.error();
  return std::unique_ptr<CapsuleStore>(
      new CapsuleStore(std::move(options), std::move(*root), key, std::nullopt));
}

bool CapsuleStore::contains(std::string_view hash) const {
  struct stat st;
  return is_capsule_hash(hash) &&
         ::fstatat(root_.get(), std::string(hash).c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
}

Status CapsuleStore::check_writable() {
  std::string tmp = std::string(kTempPrefix) + random_hex(8);
  if (::mkdirat(root_.get(), tmp.c_str(), 0700) != 0)
    return make_os_error(errno, dir() + ": cannot write capsules here: " + errno_text(errno));
  UniqueFd fd(::openat(root_.get(), tmp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  // Real bytes, synced: a full file system still lets one create empty files and directories,
  // and some only report a full disk when the data is written back.
  Status s = fd.valid() ? write_file(fd.get(), "probe", random_hex(kWritableProbeBytes / 2), true)
                        : make_os_error(errno, "cannot open: " + errno_text(errno));
  remove_tree(root_.get(), tmp);
  if (!s) return prefixed(dir() + ": cannot write capsules here: ", s.error());
  return {};
}

bool CapsuleStore::touch(std::string_view hash) {
  if (!is_capsule_hash(hash)) return false;
  const timespec times[2] = {{0, UTIME_OMIT}, to_timespec(to_ns(options_.now()))};
  struct stat st;
  const std::string h(hash);
  // Only a directory counts; utimensat would also follow nothing but accept any entry.
  return ::fstatat(root_.get(), h.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode) &&
         ::utimensat(root_.get(), h.c_str(), times, AT_SYMLINK_NOFOLLOW) == 0;
}

Result<Capsule> CapsuleStore::open(std::string_view hash) {
  if (!is_capsule_hash(hash))
    return make_error("not a capsule id (expected 64 lowercase hex digits)");
  std::string h(hash);
  Busy busy(*this, h);
  return open_busy(h);
}

Result<Capsule> CapsuleStore::open_busy(const std::string& hash) {
  UniqueFd dir(
      ::openat(root_.get(), hash.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir.valid()) {
    if (errno == ENOENT) return make_error("capsule " + hash + ": not found");
    if (errno == ELOOP || errno == ENOTDIR) {
      return make_error("capsule " + hash + ": not a directory (symbolic links are not followed)");
    }
    return make_error("capsule " + hash + ": cannot open: " + errno_text(errno));
  }
  auto c = verify_capsule_dir(dir.get(), hash, public_key_, options_.limits);
  if (!c) return make_error("capsule " + hash + ": " + c.error().message);
  set_mtime(dir.get(), to_ns(options_.now()));
  return c;
}

Result<Capsule> CapsuleStore::put(Manifest m, std::initializer_list<std::string_view> layer_bytes) {
  std::vector<LayerBytes> shared;
  for (std::string_view b : layer_bytes) shared.push_back(std::make_shared<const std::string>(b));
  return put(std::move(m), std::move(shared));
}

Result<Capsule> CapsuleStore::put(Manifest m, std::vector<LayerBytes> layer_bytes) {
  if (!signer_) return make_error("this capsule store has no signing key");
  if (m.layers.size() != layer_bytes.size()) {
    return make_error("capsule: " + std::to_string(m.layers.size()) +
                      " layers in the manifest but " + std::to_string(layer_bytes.size()) +
                      " given");
  }
  for (size_t i = 0; i < m.layers.size(); ++i) {
    if (!layer_bytes[i]) return make_error("capsule: layer " + std::to_string(i) + " has no bytes");
    if (m.layers[i].sha256.empty()) m.layers[i].sha256 = sha256_hex(*layer_bytes[i]);
    m.layers[i].size = layer_bytes[i]->size();
  }
  auto hash = capsule_hash(m);
  if (!hash) return hash.error();
  m.created_at = rfc3339(options_.now());
  m.signature = Signature{"ed25519", public_key_hex(public_key_),
                          to_hex(signer_->sign(signed_message(*hash)))};

  Capsule c{*hash, std::move(m), "", std::move(layer_bytes)};
  c.manifest_json = to_json(c.manifest).dump(2) + "\n";  // valid UTF-8: capsule_hash checked it
  uint64_t total = c.manifest_json.size();
  for (const auto& l : c.layers) total += l->size();
  if (c.manifest_json.size() > options_.limits.max_manifest_bytes) {
    return make_error("capsule: manifest is " + std::to_string(c.manifest_json.size()) +
                      " bytes, over the limit of " +
                      std::to_string(options_.limits.max_manifest_bytes));
  }
  if (total > options_.limits.max_capsule_bytes) {
    return make_error("capsule is " + std::to_string(total) + " bytes, over the limit of " +
                      std::to_string(options_.limits.max_capsule_bytes));
  }

  Busy busy(*this, c.hash);
  for (int attempt = 0; attempt < 4; ++attempt) {
    if (contains(c.hash)) {
      auto existing = open_busy(c.hash);
      if (existing) return existing;
      if (contains(c.hash)) {
        log::warn(existing.error().message + "; replacing it");
        remove_aside(c.hash);
      }
    }
    std::string tmp = std::string(kTempPrefix) + random_hex(8);
    Busy busy_tmp(*this, tmp);
    auto written = write_temp(tmp, c);
    if (!written) return written.error();
    if (::renameat2(root_.get(), tmp.c_str(), root_.get(), c.hash.c_str(), RENAME_NOREPLACE) == 0) {
      if (options_.sync) ::fsync(root_.get());
      return c;
    }
    int err = errno;
    remove_tree(root_.get(), tmp);
    if (err != EEXIST && err != ENOTEMPTY) {
      return make_os_error(err,
                           "capsule " + c.hash + ": cannot move into place: " + errno_text(err));
    }
    // Someone else stored it first (or it was being removed): use theirs.
  }
  return make_os_error(
      EAGAIN, "capsule " + c.hash + ": could not be stored (the cache kept changing underneath)");
}

Status CapsuleStore::write_temp(const std::string& tmp, const Capsule& c) {
  const std::string where = "capsule " + c.hash + ": " + dir() + "/" + tmp;
  if (::mkdirat(root_.get(), tmp.c_str(), 0700) != 0)
    return make_os_error(errno, where + ": cannot create: " + errno_text(errno));
  UniqueFd fd(::openat(root_.get(), tmp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  Status s =
      fd.valid() ? Status{} : make_os_error(errno, where + ": cannot open: " + errno_text(errno));
  for (size_t i = 0; s && i < c.layers.size(); ++i) {
    s = write_file(fd.get(), c.manifest.layers[i].file, *c.layers[i], options_.sync);
    if (!s) s = prefixed(where + "/", s.error());
  }
  if (s) {
    s = write_file(fd.get(), std::string(kManifestFile), c.manifest_json, options_.sync);
    if (!s) s = prefixed(where + "/", s.error());
  }
  if (s) {
    set_mtime(fd.get(), to_ns(options_.now()));
    if (options_.sync && ::fsync(fd.get()) != 0)
      s = make_os_error(errno, where + ": cannot sync: " + errno_text(errno));
  }
  if (!s) remove_tree(root_.get(), tmp);
  return s;
}

void CapsuleStore::remove_aside(const std::string& name) {
  std::string del = std::string(kDeletePrefix) + random_hex(8);
  Busy busy(*this, del);
  if (::renameat2(root_.get(), name.c_str(), root_.get(), del.c_str(), RENAME_NOREPLACE) == 0) {
    remove_tree(root_.get(), del);
  }
}

bool CapsuleStore::try_remove_for_gc(const std::string& hash, int64_t expected_mtime_ns) {
  std::string del = std::string(kDeletePrefix) + random_hex(8);
  {
    std::lock_guard lock(mu_);
    if (busy_.count(hash)) return false;
    // Used since it was listed (possibly by another process): keep it.
    struct stat st;
    if (::fstatat(root_.get(), hash.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        mtime_ns(st) != expected_mtime_ns) {
      return false;
    }
    if (::renameat2(root_.get(), hash.c_str(), root_.get(), del.c_str(), RENAME_NOREPLACE) != 0)
      return false;
    ++busy_[del];
  }
  remove_tree(root_.get(), del);
  std::lock_guard lock(mu_);
  busy_.erase(del);
  return true;
}

Result<GcStats> CapsuleStore::gc(std::chrono::seconds max_age, uint64_t max_total_bytes) {
  struct Entry {
    std::string hash;
    int64_t mtime;
    uint64_t bytes;
  };
  const int64_t now = to_ns(options_.now());
  const int64_t age_limit =
      now - std::chrono::duration_cast<std::chrono::nanoseconds>(max_age).count();
  const int64_t temp_limit =
      now - std::chrono::duration_cast<std::chrono::nanoseconds>(options_.stale_temp_age).count();
  GcStats stats;
  std::vector<Entry> capsules;
  for (const auto& name : list_dir(root_.get())) {
    struct stat st;
    if (::fstatat(root_.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode))
      continue;
    bool temp = starts_with(name, kTempPrefix), del = starts_with(name, kDeletePrefix);
    if (temp || del) {
      {
        std::lock_guard lock(mu_);
        if (busy_.count(name) || (temp && mtime_ns(st) > temp_limit)) continue;
      }
      remove_tree(root_.get(), name);
      ++stats.temp_removed;
    } else if (is_capsule_hash(name)) {
      capsules.push_back({name, mtime_ns(st), dir_bytes(root_.get(), name)});
    }
  }
  std::sort(capsules.begin(), capsules.end(),
            [](const Entry& a, const Entry& b) { return a.mtime < b.mtime; });
  uint64_t total = 0;
  for (const auto& e : capsules) total += e.bytes;
  for (const auto& e : capsules) {
    bool expired = e.mtime<age_limit, over = total> max_total_bytes;
    if ((expired || over) && try_remove_for_gc(e.hash, e.mtime)) {
      total -= e.bytes;
      ++stats.removed;
    } else {
      ++stats.kept;
    }
  }
  stats.bytes_kept = total;
  return stats;
}

}  // namespace onemcp::capsule
