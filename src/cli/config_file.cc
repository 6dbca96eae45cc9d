#include "cli/config_file.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/unique_fd.h"

namespace onemcp::cli {

namespace fs = std::filesystem;
using nlohmann::json;
using nlohmann::ordered_json;

std::string resolve(const std::string& dir, const std::string& path) {
  if (path.empty() || path[0] == '/' || dir.empty()) return path;
  return (fs::path(dir) / path).string();
}

std::string project_dir(const std::string& dir, const std::string& config) {
  if (!dir.empty()) return dir;
  return fs::path(config).parent_path().string();
}

std::string init_command(const std::string& dir, const std::string& config) {
  std::string cmd = "1mcp init";
  if (!dir.empty()) cmd += " --dir " + dir;
  if (config != kDefaultConfigName) cmd += " -c " + config;
  return cmd;
}

bool config_missing(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) != 0 && (errno == ENOENT || errno == ENOTDIR);
}

Result<policy::Config> load_project_config(const std::string& dir, const std::string& config) {
  const std::string path = resolve(dir, config);
  auto c = policy::load_config(path);
  if (c) return c;
  // What load_config could not open or read: nothing to fix inside the file, so say how to make
  // one. (`1mcp init` never overwrites, so it is only the answer when nothing is there.)
  struct stat st {};
  const bool readable =
      ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), R_OK) == 0;
  if (readable) return c.error();
  if (config_missing(path)) {
    return make_error(path + ": no such file; create a config with `" + init_command(dir, config) +
                      "` (then edit it), or give its path with --dir/-c");
  }
  return make_error(c.error().message + " (`" + init_command(dir, config) +
                    "` creates a config where nothing exists yet)");
}

Result<ordered_json> read_config_document(const std::string& dir, const std::string& config) {
  auto valid = load_project_config(dir, config);
  if (!valid) return valid.error();
  const std::string path = resolve(dir, config);
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  try {
    return ordered_json::parse(text.str());
  } catch (const std::exception& e) {  // changed since load_config read it
    return make_error(path + ": invalid JSON");
  }
}

Status write_config_document(const std::string& path, const ordered_json& doc,
                             std::optional<mode_t> mode) {
  const std::string text = doc.dump(2) + "\n";
  if (auto c = policy::parse_config(json::parse(text)); !c) {
    return make_error("the edited config would be invalid: " + c.error().message);
  }
  std::error_code ec;
  fs::path target = fs::canonical(path, ec);  // a symlinked config keeps its link
  if (ec) return make_error(path + ": " + ec.message());
  struct stat st {};
  if (::stat(target.c_str(), &st) != 0) return make_error(path + ": " + std::strerror(errno));
  std::string tmp = target.string() + ".tmp-XXXXXX";
  UniqueFd fd(::mkostemp(tmp.data(), O_CLOEXEC));
  if (!fd.valid()) return make_error(target.string() + ": cannot write: " + std::strerror(errno));
  auto fail = [&](int err) {
    ::unlink(tmp.c_str());
    return make_error(target.string() + ": cannot write: " + std::strerror(err));
  };
  if (::fchmod(fd.get(), mode ? *mode : st.st_mode & 07777) != 0) return fail(errno);
  std::string_view rest = text;
  while (!rest.empty()) {
    ssize_t n = ::write(fd.get(), rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(errno);
    rest.remove_prefix(size_t(n));
  }
  if (::fsync(fd.get()) != 0) return fail(errno);
  fd.reset();
  if (::rename(tmp.c_str(), target.c_str()) != 0) return fail(errno);
  return {};
}

policy::Config default_config() {
  auto c = policy::parse_config(nlohmann::json::parse(policy::default_config_text()));
  if (!c) std::abort();  // broken invariant: the default config is valid
  return std::move(*c);
}

Result<std::string> default_state_dir() {
  fs::path dir;
  if (const char* s = std::getenv("XDG_STATE_HOME"); s && s[0] == '/') {
    dir = fs::path(s) / "1mcp";
  } else {
    std::string home;
    if (const char* h = std::getenv("HOME"); h && h[0] == '/') {
      home = h;
    } else if (const passwd* pw = ::getpwuid(::getuid());
               pw && pw->pw_dir && pw->pw_dir[0] == '/') {
      home = pw->pw_dir;
    } else {
      return make_error("no home directory to keep the server's state in (HOME is not set)");
    }
    dir = fs::path(home) / ".local" / "state" / "1mcp";
  }
  std::error_code ec;
  const bool created = fs::create_directories(dir, ec);
  if (ec) return make_error("cannot create " + dir.string() + ": " + ec.message());
  if (created) {  // it will hold the capsule signing key
    fs::permissions(dir, fs::perms::owner_all, ec);
    if (ec) return make_error("cannot set the mode of " + dir.string() + ": " + ec.message());
  }
  return dir.string();
}

}  // namespace onemcp::cli
