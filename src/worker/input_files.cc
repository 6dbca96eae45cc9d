#include "worker/input_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/unique_fd.h"

namespace onemcp::worker {
namespace {

Error file_error(const std::string& path, const std::string& why) {
  return make_error("files: cannot write " + path + ": " + why);
}

Status write_all(int fd, const std::string& data) {
  for (size_t done = 0; done < data.size();) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return make_error(n < 0 ? std::strerror(errno) : "short write");
    done += size_t(n);
  }
  return {};
}

Status write_one(int base, const ipc::InputFile& f, bool replace) {
  if (auto s = ipc::check_input_path(f.path); !s) return file_error(f.path, s.error().message);
  UniqueFd dir(::fcntl(base, F_DUPFD_CLOEXEC, 0));
  if (!dir.valid()) return file_error(f.path, std::strerror(errno));
  size_t start = 0;
  for (size_t slash; (slash = f.path.find('/', start)) != std::string::npos; start = slash + 1) {
    const std::string part = f.path.substr(start, slash - start);
    if (::mkdirat(dir.get(), part.c_str(), 0755) != 0 && errno != EEXIST)
      return file_error(f.path, std::strerror(errno));
    UniqueFd next(::openat(dir.get(), part.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!next.valid()) {
      return file_error(f.path, errno == ENOTDIR || errno == ELOOP
                                    ? part + " is not a directory"
                                    : std::string(std::strerror(errno)));
    }
    dir = std::move(next);
  }
  const std::string name = f.path.substr(start);
  const int how = replace ? O_TRUNC : O_EXCL;
  UniqueFd fd(::openat(dir.get(), name.c_str(),
                       O_WRONLY | O_CREAT | how | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644));
  if (!fd.valid()) {
    return file_error(f.path, errno == EEXIST ? std::string("it is given twice, or already exists")
                                              : std::string(std::strerror(errno)));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
    return file_error(f.path, "it exists and is not a regular file");
  if (auto s = write_all(fd.get(), f.data); !s) return file_error(f.path, s.error().message);
  return {};
}

}  // namespace

Status write_input_files(const std::string& cwd, const std::vector<ipc::InputFile>& files,
                         bool replace) {
  if (files.empty()) return {};
  const char* where = cwd.empty() ? "." : cwd.c_str();
  UniqueFd base(::open(where, O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!base.valid()) {
    return make_error(std::string("files: cannot open the working directory ") +
                      (cwd.empty() ? "" : cwd + " ") + "(" + std::strerror(errno) + ")");
  }
  for (const auto& f : files) {
    if (auto s = write_one(base.get(), f, replace); !s) return s;
  }
  return {};
}

}  // namespace onemcp::worker
