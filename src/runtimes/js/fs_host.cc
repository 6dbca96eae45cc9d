#include "runtimes/js/fs_host.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "base/unique_fd.h"

namespace onemcp::js::fs {
namespace {

// Not errnos: a refused file type and a file over the read limit, told apart in fsError().
constexpr int kNotRegular = -1;
constexpr int kTooLarge = -2;
constexpr size_t kNoBudgetLimit = size_t(1) << 30;
constexpr size_t kFirstChunk = 64u << 10;  // a read of a file whose size the kernel does not know

size_t g_read_limit = kNoBudgetLimit;

struct Failure {
  int err = 0;  // errno, or kNotRegular / kTooLarge
  const char* syscall = "";
  uint64_t size = 0;  // kTooLarge: what the file holds at least
};
Failure g_failure;

JSValue fail(int err, const char* syscall, uint64_t size = 0) {
  g_failure = {err, syscall, size};
  return JS_NULL;
}

// Node's (libuv's) words for the errnos a file operation meets; others get strerror's.
struct ErrnoText {
  int err;
  const char* description;
};
constexpr ErrnoText kDescriptions[] = {
    {EPERM, "operation not permitted"},
    {ENOENT, "no such file or directory"},
    {EIO, "i/o error"},
    {ENXIO, "no such device or address"},
    {EBADF, "bad file descriptor"},
    {EAGAIN, "resource temporarily unavailable"},
    {ENOMEM, "not enough memory"},
    {EACCES, "permission denied"},
    {EBUSY, "resource busy or locked"},
    {EEXIST, "file already exists"},
    {EXDEV, "cross-device link not permitted"},
    {ENODEV, "no such device"},
    {ENOTDIR, "not a directory"},
    {EISDIR, "illegal operation on a directory"},
    {EINVAL, "invalid argument"},
    {ENFILE, "file table overflow"},
    {EMFILE, "too many open files"},
    {ETXTBSY, "text file is busy"},
    {EFBIG, "file too large"},
    {ENOSPC, "no space left on device"},
    {ESPIPE, "invalid seek"},
    {EROFS, "read-only file system"},
    {EMLINK, "too many links"},
    {ENAMETOOLONG, "name too long"},
    {ENOSYS, "function not implemented"},
    {ENOTEMPTY, "directory not empty"},
    {ELOOP, "too many symbolic links encountered"},
    {EOVERFLOW, "value too large for defined data type"},
    {EDQUOT, "disk quota exceeded"},
};

// A path argument (the prelude passes strings it resolved). False with a pending exception.
bool path_arg(JSContext* ctx, JSValueConst v, std::string* out) {
  size_t len = 0;
  const char* s = JS_ToCStringLen(ctx, &len, v);
  if (!s) return false;
  out->assign(s, len);
  JS_FreeCString(ctx, s);
  if (out->find('\0') != std::string::npos) {  // the prelude refuses these first
    JS_ThrowTypeError(ctx, "a path contains a null byte");
    return false;
  }
  return true;
}

// Bytes of a Uint8Array argument, where they are.
bool bytes_arg(JSContext* ctx, JSValueConst v, const uint8_t** data, size_t* len) {
  size_t offset = 0, length = 0, elem = 0;
  JSValue buffer = JS_GetTypedArrayBuffer(ctx, v, &offset, &length, &elem);
  if (JS_IsException(buffer)) return false;
  size_t size = 0;
  uint8_t* base = JS_GetArrayBuffer(ctx, &size, buffer);
  JS_FreeValue(ctx, buffer);
  if (!base && size != 0) return false;
  static const uint8_t kEmpty = 0;
  *data = base ? base + offset : &kEmpty;
  *len = base ? length : 0;
  return true;
}

int open_flags(JSContext* ctx, JSValueConst v, int* flags) {
  int32_t f = 0;
  if (JS_ToInt32(ctx, &f, v)) return -1;
  *flags = f;
  return 0;
}

uint32_t mode_arg(JSContext* ctx, JSValueConst v, uint32_t fallback) {
  uint32_t mode = fallback;
  if (!JS_IsUndefined(v) && JS_ToUint32(ctx, &mode, v)) return UINT32_MAX;
  return mode & 07777;
}

bool write_all(int fd, const uint8_t* data, size_t len, int* err) {
  while (len > 0) {
    ssize_t n = ::write(fd, data, std::min<size_t>(len, size_t(1) << 30));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *err = errno;
      return false;
    }
    data += n;
    len -= size_t(n);
  }
  return true;
}

// Opens a file to read it whole: a regular file only, never blocking on the way.
UniqueFd open_regular(const std::string& path, struct stat* st, int* err, const char** syscall) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  *syscall = "open";
  if (!fd.valid()) {
    *err = errno;
    return fd;
  }
  if (::fstat(fd.get(), st) != 0) {
    *err = errno;
    *syscall = "fstat";
    return UniqueFd();
  }
  if (S_ISDIR(st->st_mode)) {
    *err = EISDIR;  // what read(2) says of a directory, as Node reports it
    *syscall = "read";
    return UniqueFd();
  }
  if (!S_ISREG(st->st_mode)) {
    *err = kNotRegular;
    return UniqueFd();
  }
  return fd;
}

void free_heap_bytes(JSRuntime* rt, void*, void* ptr) { js_free_rt(rt, ptr); }

// fsRead(path) -> ArrayBuffer | null. The buffer is allocated in the JS heap, so the run's heap
// limit counts it as it grows; the size check before it makes a too-large file a clear error.
JSValue fs_read(JSContext* ctx, JSValueConst, int, JSValueConst* argv) {
  std::string path;
  if (!path_arg(ctx, argv[0], &path)) return JS_EXCEPTION;
  struct stat st {};
  int err = 0;
  const char* syscall = "";
  UniqueFd fd = open_regular(path, &st, &err, &syscall);
  if (!fd.valid()) return fail(err, syscall);
  const size_t limit = g_read_limit;
  if (uint64_t(st.st_size) > limit) return fail(kTooLarge, "read", uint64_t(st.st_size));
  // One spare byte: reading the file's whole size then needs no growth to see the end.
  size_t cap = st.st_size > 0 ? size_t(st.st_size) + 1 : std::min(kFirstChunk, limit + 1);
  auto* buf = static_cast<uint8_t*>(js_malloc(ctx, cap));
  if (!buf) return JS_EXCEPTION;
  size_t len = 0;
  for (;;) {
    if (len == cap) {  // the file grew, or its size was not known (procfs)
      if (len > limit) {
        js_free(ctx, buf);
        return fail(kTooLarge, "read", len);
      }
      const size_t next = std::min(std::max(cap * 2, kFirstChunk), limit + 1);
      auto* grown = static_cast<uint8_t*>(js_realloc(ctx, buf, next));
      if (!grown) {
        js_free(ctx, buf);
        return JS_EXCEPTION;
      }
      buf = grown;
      cap = next;
    }
    ssize_t n = ::read(fd.get(), buf + len, cap - len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      err = errno;
      js_free(ctx, buf);
      return fail(err, "read");
    }
    if (n == 0) break;
    len += size_t(n);
  }
  if (len > limit) {
    js_free(ctx, buf);
    return fail(kTooLarge, "read", len);
  }
  JSValue ab = JS_NewArrayBuffer(ctx, buf, len, free_heap_bytes, nullptr, false);
  if (JS_IsException(ab)) js_free(ctx, buf);
  return ab;
}

// fsWrite(path, bytes: Uint8Array, flags, mode) -> undefined | null. `flags` are open(2) flags
// from the prelude (O_WRONLY | O_CREAT with O_TRUNC or O_APPEND, maybe O_EXCL).
JSValue fs_write(JSContext* ctx, JSValueConst, int, JSValueConst* argv) {
  std::string path;
  int flags = 0;
  if (!path_arg(ctx, argv[0], &path) || open_flags(ctx, argv[2], &flags) < 0) return JS_EXCEPTION;
  const uint32_t mode = mode_arg(ctx, argv[3], 0666);
  if (mode == UINT32_MAX) return JS_EXCEPTION;
  // The bytes are taken after the conversions above, which could have run script code.
  const uint8_t* data = nullptr;
  size_t len = 0;
  if (!bytes_arg(ctx, argv[1], &data, &len)) return JS_EXCEPTION;
  flags &= O_WRONLY | O_RDWR | O_CREAT | O_EXCL | O_TRUNC | O_APPEND;
  UniqueFd fd(::open(path.c_str(), flags | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, mode));
  if (!fd.valid()) return fail(errno, "open");
  int err = 0;
  if (!write_all(fd.get(), data, len, &err)) return fail(err, "write");
  return JS_UNDEFINED;
}

// fsCopy(src, dest, exclusive) -> undefined | null: the bytes pass through a small buffer here,
// never through the JS heap.
JSValue fs_copy(JSContext* ctx, JSValueConst, int, JSValueConst* argv) {
  std::string src, dest;
  if (!path_arg(ctx, argv[0], &src) || !path_arg(ctx, argv[1], &dest)) return JS_EXCEPTION;
  const bool exclusive = JS_ToBool(ctx, argv[2]) > 0;
  struct stat st {};
  int err = 0;
  const char* opened = "";
  UniqueFd in = open_regular(src, &st, &err, &opened);
  if (!in.valid()) return fail(err, "copyfile");
  UniqueFd out(
      ::open(dest.c_str(),
             O_WRONLY | O_CREAT | (exclusive ? O_EXCL : 0) | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
             st.st_mode & 0777));
  if (!out.valid()) return fail(errno, "copyfile");
  // Truncated only once known not to be the source itself (a copy onto itself changes nothing).
  struct stat dst {};
  if (::fstat(out.get(), &dst) != 0) return fail(errno, "copyfile");
  if (dst.st_dev == st.st_dev && dst.st_ino == st.st_ino) return JS_UNDEFINED;
  if (S_ISREG(dst.st_mode) && ::ftruncate(out.get(), 0) != 0) return fail(errno, "copyfile");
  static uint8_t buf[64u << 10];
  for (;;) {
    ssize_t n = ::read(in.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(errno, "copyfile");
    if (n == 0) break;
    if (!write_all(out.get(), buf, size_t(n), &err)) return fail(err, "copyfile");
  }
  return JS_UNDEFINED;
}

double ms_of(const statx_timestamp& t) { return double(t.tv_sec) * 1e3 + double(t.tv_nsec) / 1e6; }

// fsStat(path, follow) -> [dev, mode, nlink, uid, gid, rdev, blksize, ino, size, blocks,
// atimeMs, mtimeMs, ctimeMs, birthtimeMs] | null, the order of Node's Stats fields.
JSValue fs_stat(JSContext* ctx, JSValueConst, int, JSValueConst* argv) {
  std::string path;
  if (!path_arg(ctx, argv[0], &path)) return JS_EXCEPTION;
  const bool follow = JS_ToBool(ctx, argv[1]) > 0;
  struct statx sx {};
  if (::statx(AT_FDCWD, path.c_str(), follow ? 0 : AT_SYMLINK_NOFOLLOW,
              STATX_BASIC_STATS | STATX_BTIME, &sx) != 0) {
    return fail(errno, follow ? "stat" : "lstat");
  }
  const double fields[] = {
      double(makedev(sx.stx_dev_major, sx.stx_dev_minor)),
      double(sx.stx_mode),
      double(sx.stx_nlink),
      double(sx.stx_uid),
      double(sx.stx_gid),
      double(makedev(sx.stx_rdev_major, sx.stx_rdev_minor)),
      double(sx.stx_blksize),
      double(sx.stx_ino),
      double(sx.stx_size),
      double(sx.stx_blocks),
      ms_of(sx.stx_atime),
      ms_of(sx.stx_mtime),
      ms_of(sx.stx_ctime),
      (sx.stx_mask & STATX_BTIME) ? ms_of(sx.stx_btime) : ms_of(sx.stx_ctime),
  };
  JSValue arr = JS_NewArray(ctx);
  if (JS_IsException(arr)) return arr;
  for (uint32_t i = 0; i < std::size(fields); ++i) {
    if (JS_SetPropertyUint32(ctx, arr, i, JS_NewFloat64(ctx, fields[i])) < 0) {
      JS_FreeValue(ctx, arr);
      return JS_EXCEPTION;
    }
  }
  return arr;
}

// libuv's dirent types, as Node's Dirent knows them.
int dirent_type(unsigned char d_type) {
  switch (d_type) {
    case DT_REG:
      return 1;
    case DT_DIR:
      return 2;
    case DT_LNK:
      return 3;
    case DT_FIFO:
      return 4;
    case DT_SOCK:
      return 5;
    case DT_CHR:
      return 6;
    case DT_BLK:
      return 7;
    default:
      return 0;
  }
}

int mode_type(mode_t m) {
  if (S_ISREG(m)) return 1;
  if (S_ISDIR(m)) return 2;
  if (S_ISLNK(m)) return 3;
  if (S_ISFIFO(m)) return 4;
  if (S_ISSOCK(m)) return 5;
  if (S_ISCHR(m)) return 6;
  if (S_ISBLK(m)) return 7;
  return 0;
}

// fsReaddir(path) -> [name, type, name, type, ...] sorted by name (bytewise) | null.
JSValue fs_readdir(JSContext* ctx, JSValueConst, int, JSValueConst* argv) {
  std::string path;
  if (!path_arg(ctx, argv[0], &path)) return JS_EXCEPTION;
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return fail(errno, "scandir");
  DIR* dir = ::fdopendir(fd);
  if (!dir) {
    const int err = errno;
    ::close(fd);
    return fail(err, "scandir");
  }
  std::vector<std::pair<std::string, int>> entries;
  int err = 0;
  try {
    for (;;) {
      errno = 0;
      const dirent* e = ::readdir(dir);
      if (!e) {
        err = errno;
        break;
      }
      if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
      int type = dirent_type(e->d_type);
      struct stat st {};
      if (type == 0 && ::fstatat(::dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
        type = mode_type(st.st_mode);
      entries.emplace_back(e->d_name, type);
    }
  } catch (...) {
    ::closedir(dir);
    throw;
  }
  ::closedir(dir);
  if (err != 0) return fail(err, "scandir");
  std::sort(entries.begin(), entries.end());
  JSValue arr = JS_NewArray(ctx);
  if (JS_IsException(arr)) return arr;
  uint32_t i = 0;
  for (const auto& [name, type] : entries) {
    if (JS_SetPropertyUint32(ctx, arr, i++, JS_NewStringLen(ctx, name.data(), name.size())) < 0 ||
        JS_SetPropertyUint32(ctx, arr, i++, JS_NewInt32(ctx, type)) < 0) {
      JS_FreeValue(ctx, arr);
      return JS_EXCEPTION;
    }
  }
  return arr;
}

// fsMkdir(path, mode) -> undefined | null.
JSValue fs_mkdir(JSContext* ctx, JSValueConst, int, JSValueConst* argv) {
  std::string path;
  if (!path_arg(ctx, argv[0], &path)) return JS_EXCEPTION;
  const uint32_t mode = mode_arg(ctx, argv[1], 0777);
  if (mode == UINT32_MAX) return JS_EXCEPTION;
  if (::mkdir(path.c_str(), mode) != 0) return fail(errno, "mkdir");
  return JS_UNDEFINED;
}

JSValue fs_unlink(JSContext* ctx, JSValueConst, int, JSValueConst* argv) {
  std::string path;
  if (!path_arg(ctx, argv[0], &path)) return JS_EXCEPTION;
  if (::unlink(path.c_str()) != 0) return fail(errno, "unlink");
  return JS_UNDEFINED;
}

JSValue fs_rmdir(JSContext* ctx, JSValueConst, int, JSValueConst* argv) {
  std::string path;
  if (!path_arg(ctx, argv[0], &path)) return JS_EXCEPTION;
  if (::rmdir(path.c_str()) != 0) return fail(errno, "rmdir");
  return JS_UNDEFINED;
}

JSValue fs_rename(JSContext* ctx, JSValueConst, int, JSValueConst* argv) {
  std::string from, to;
  if (!path_arg(ctx, argv[0], &from) || !path_arg(ctx, argv[1], &to)) return JS_EXCEPTION;
  if (::rename(from.c_str(), to.c_str()) != 0) return fail(errno, "rename");
  return JS_UNDEFINED;
}

// fsAccess(path, mode) -> undefined | null (mode: F_OK or R_OK | W_OK | X_OK).
JSValue fs_access(JSContext* ctx, JSValueConst, int, JSValueConst* argv) {
  std::string path;
  int32_t mode = 0;
  if (!path_arg(ctx, argv[0], &path) || JS_ToInt32(ctx, &mode, argv[1])) return JS_EXCEPTION;
  if (::access(path.c_str(), mode & (R_OK | W_OK | X_OK)) != 0) return fail(errno, "access");
  return JS_UNDEFINED;
}

// fsError() -> [errno, code, description, syscall, size, read limit]: why the last fs function
// returned null.
JSValue fs_error(JSContext* ctx, JSValueConst, int, JSValueConst*) {
  const Failure& f = g_failure;
  int node_errno = -f.err;
  const char* code = nullptr;
  const char* description = nullptr;
  if (f.err == kNotRegular) {
    node_errno = -4028;  // libuv's UV_EFTYPE
    code = "EFTYPE";
    description = "not a regular file";
  } else if (f.err == kTooLarge) {
    node_errno = 0;
    code = "ERR_FS_FILE_TOO_LARGE";
    description = "";
  } else {
    code = ::strerrorname_np(f.err);
    for (const ErrnoText& t : kDescriptions) {
      if (t.err == f.err) description = t.description;
    }
    if (!description) description = ::strerror(f.err);
  }
  if (!code) code = "UNKNOWN";
  JSValue arr = JS_NewArray(ctx);
  if (JS_IsException(arr)) return arr;
  JSValue items[] = {JS_NewInt32(ctx, node_errno),       JS_NewString(ctx, code),
                     JS_NewString(ctx, description),     JS_NewString(ctx, f.syscall),
                     JS_NewFloat64(ctx, double(f.size)), JS_NewFloat64(ctx, double(g_read_limit))};
  for (uint32_t i = 0; i < std::size(items); ++i) {
    if (JS_SetPropertyUint32(ctx, arr, i, items[i]) < 0) {
      for (uint32_t j = i + 1; j < std::size(items); ++j) JS_FreeValue(ctx, items[j]);
      JS_FreeValue(ctx, arr);
      return JS_EXCEPTION;
    }
  }
  return arr;
}

const HostFunction kFunctions[] = {
    {"fsRead", 1, guarded<fs_read>},       {"fsWrite", 4, guarded<fs_write>},
    {"fsCopy", 3, guarded<fs_copy>},       {"fsStat", 2, guarded<fs_stat>},
    {"fsReaddir", 1, guarded<fs_readdir>}, {"fsMkdir", 2, guarded<fs_mkdir>},
    {"fsUnlink", 1, guarded<fs_unlink>},   {"fsRmdir", 1, guarded<fs_rmdir>},
    {"fsRename", 2, guarded<fs_rename>},   {"fsAccess", 2, guarded<fs_access>},
    {"fsError", 0, guarded<fs_error>},
};

}  // namespace

std::span<const HostFunction> host_functions() { return kFunctions; }

void set_read_limit(size_t bytes) {
  g_read_limit = bytes == 0 ? kNoBudgetLimit : std::min(bytes, size_t(INT32_MAX));
}

}  // namespace onemcp::js::fs
