#include "capsule/signing_key.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "base/unique_fd.h"

namespace onemcp::capsule {
namespace {

constexpr size_t kMaxKeyFileBytes = 256;

std::string errno_text(int e) { return std::strerror(e); }

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// Reads a small file from an open fd; nullopt-like error on read failure or oversize.
Result<std::string> read_small(int fd, const std::string& what) {
  std::string buf(kMaxKeyFileBytes + 1, '\0');
  size_t got = 0;
  while (got < buf.size()) {
    ssize_t n = ::read(fd, buf.data() + got, buf.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(what + ": cannot read: " + errno_text(errno));
    if (n == 0) break;
    got += size_t(n);
  }
  if (got > kMaxKeyFileBytes) return make_error(what + ": too large to be a key file");
  buf.resize(got);
  return buf;
}

// mkdir -p with mode 0700 for every directory it creates.
Status make_dirs(const std::string& dir) {
  std::filesystem::path p(dir), cur;
  for (const auto& part : p) {
    cur /= part;
    if (::mkdir(cur.c_str(), 0700) != 0 && errno != EEXIST) {
      return make_error(cur.string() + ": cannot create directory: " + errno_text(errno));
    }
  }
  return {};
}

// Writes `text` to a new file and links it to `name` in `dirfd`; false when `name` already
// exists (never replaced). The file is complete and synced before it becomes visible.
Result<bool> create_file(int dirfd, std::string_view name, const std::string& text, mode_t mode,
                         const std::string& what) {
  std::string tmp = "." + std::string(name) + "." + random_hex(8) + ".tmp";
  UniqueFd fd(
      ::openat(dirfd, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
  if (!fd.valid()) return make_error(what + ": cannot create: " + errno_text(errno));
  bool ok = ::fchmod(fd.get(), mode) == 0 &&
            ::write(fd.get(), text.data(), text.size()) == ssize_t(text.size()) &&
            ::fsync(fd.get()) == 0;
  int err = errno;
  fd.reset();
  bool linked = ok && ::linkat(dirfd, tmp.c_str(), dirfd, std::string(name).c_str(), 0) == 0;
  if (ok && !linked) err = errno;
  ::unlinkat(dirfd, tmp.c_str(), 0);
  if (!ok || (!linked && err != EEXIST))
    return make_error(what + ": cannot write: " + errno_text(err));
  if (linked) ::fsync(dirfd);
  return linked;
}

std::string key_file_text(std::string_view hex) { return std::string(hex) + "\n"; }

// nullopt when the file does not exist.
Result<std::optional<SigningKey>> read_secret(int dirfd, const std::string& what) {
  UniqueFd fd(::openat(dirfd, std::string(kSecretKeyFile).c_str(),
                       O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return std::optional<SigningKey>();
    if (errno == ELOOP) return make_error(what + ": is a symbolic link; refusing to use it");
    return make_error(what + ": cannot open: " + errno_text(errno));
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return make_error(what + ": cannot stat: " + errno_text(errno));
  if (!S_ISREG(st.st_mode)) return make_error(what + ": not a regular file; refusing to use it");
  if (st.st_uid != ::geteuid()) {
    return make_error(what + ": owned by uid " + std::to_string(st.st_uid) +
                      ", not by this user (uid " + std::to_string(::geteuid()) +
                      "); refusing to use it");
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", unsigned(st.st_mode & 07777));
    return make_error(what + ": accessible to group or others (mode " + mode +
                      "); refusing to use it (chmod 600 it)");
  }
  auto text = read_small(fd.get(), what);
  if (!text) return text.error();
  std::string hex = trim(std::move(*text));
  auto bytes = from_hex(hex);
  ::sodium_memzero(hex.data(), hex.size());
  if (!bytes || bytes->size() != Seed{}.size()) {
    return make_error(what + ": expected 64 lowercase hex digits (an Ed25519 seed)");
  }
  Seed seed;
  std::memcpy(seed.data(), bytes->data(), seed.size());
  ::sodium_memzero(bytes->data(), bytes->size());
  auto key = SigningKey::from_seed(seed);
  ::sodium_memzero(seed.data(), seed.size());
  return std::optional<SigningKey>(std::move(key));
}

Result<PublicKey> read_public(int dirfd, const std::string& what) {
  UniqueFd fd(::openat(dirfd, std::string(kPublicKeyFile).c_str(),
                       O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (!fd.valid()) return make_error(what + ": cannot open: " + errno_text(errno));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
    return make_error(what + ": not a regular file");
  auto text = read_small(fd.get(), what);
  if (!text) return text.error();
  auto key = public_key_from_hex(trim(std::move(*text)));
  if (!key) return make_error(what + ": expected 64 lowercase hex digits (an Ed25519 public key)");
  return *key;
}

Result<UniqueFd> open_dir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return make_error(dir + ": cannot open key directory: " + errno_text(errno));
  return fd;
}

}  // namespace

Result<LoadedKey> signing_key_load_or_create(const std::string& dir) {
  if (auto s = make_dirs(dir); !s) return s.error();
  auto dirfd = open_dir(dir);
  if (!dirfd) return dirfd.error();
  int dfd = dirfd->get();
  const std::string secret_path = (std::filesystem::path(dir) / kSecretKeyFile).string();
  const std::string public_path = (std::filesystem::path(dir) / kPublicKeyFile).string();

  bool created = false;
  auto loaded = read_secret(dfd, secret_path);
  if (!loaded) return loaded.error();
  if (!loaded->has_value()) {
    SigningKey fresh = SigningKey::generate();
    Seed seed = fresh.seed();
    std::string hex =
        to_hex(std::string_view(reinterpret_cast<const char*>(seed.data()), seed.size()));
    auto linked = create_file(dfd, kSecretKeyFile, key_file_text(hex), 0600, secret_path);
    ::sodium_memzero(seed.data(), seed.size());
    ::sodium_memzero(hex.data(), hex.size());
    if (!linked) return linked.error();
    created = *linked;
    // Whoever linked first won; everyone uses the file's key.
    loaded = read_secret(dfd, secret_path);
    if (!loaded) return loaded.error();
    if (!loaded->has_value()) return make_error(secret_path + ": vanished while being created");
  }
  SigningKey key = std::move(**loaded);

  auto pub = read_public(dfd, public_path);
  if (!pub) {
    if (::faccessat(dfd, std::string(kPublicKeyFile).c_str(), F_OK, AT_SYMLINK_NOFOLLOW) != 0) {
      auto linked = create_file(dfd, kPublicKeyFile,
                                key_file_text(public_key_hex(key.public_key())), 0644, public_path);
      if (!linked) return linked.error();
    }
    // Read again whoever wrote it: another creator may have linked it (complete, see
    // create_file) between the read above and the check.
    pub = read_public(dfd, public_path);
  }
  if (!pub) return pub.error();
  if (*pub != key.public_key()) {
    return make_error(public_path + ": is not the public key of " + secret_path +
                      " (remove it to have it written again)");
  }
  return LoadedKey{std::move(key), created};
}

Result<PublicKey> public_key_load(const std::string& dir) {
  auto dirfd = open_dir(dir);
  if (!dirfd) return dirfd.error();
  return read_public(dirfd->get(), (std::filesystem::path(dir) / kPublicKeyFile).string());
}

}  // namespace onemcp::capsule
