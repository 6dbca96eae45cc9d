#include "deps/pip.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "base/log.h"
#include "base/unique_fd.h"
#include "deps/process.h"
#include "base/sha256.h"
#include "deps/files.h"
#include "deps/retention.h"

namespace onemcp::deps {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Bumped whenever the layout of a set's directory changes, so old cache entries are not reused.
constexpr int kSetFormat = 1;
constexpr size_t kMaxRequirementBytes = 256;
constexpr size_t kMaxUrlBytes = 2048;

std::string json_quoted(std::string_view s) {
  return json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace);
}

bool alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// A small cursor over a requirement string.
struct Cursor {
  std::string_view s;
  size_t i = 0;
  bool done() const { return i == s.size(); }
  void spaces() {
    while (i < s.size() && s[i] == ' ') ++i;
  }
  bool eat(std::string_view t) {
    if (s.substr(i, t.size()) != t) return false;
    i += t.size();
    return true;
  }
  // A PEP 508 name: letters and digits, with ".", "-" and "_" inside.
  bool name() {
    size_t start = i;
    while (i < s.size() && (alnum(s[i]) || s[i] == '.' || s[i] == '-' || s[i] == '_')) ++i;
    return i > start && alnum(s[start]) && alnum(s[i - 1]);
  }
  bool version() {
    size_t start = i;
    while (i < s.size() && (alnum(s[i]) || std::string_view(".*+!_-").find(s[i]) != std::string_view::npos)) ++i;
    return i > start;
  }
  bool op() {
    for (std::string_view o : {"===", "==", "!=", "<=", ">=", "~=", "<", ">"})
      if (eat(o)) return true;
    return false;
  }
};

// The lines pip prints about the failure, or the end of its output.
std::string pip_errors(const std::string& output) {
  std::string kept;
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("ERROR:", 0) == 0) kept += line + "\n";
  }
  std::string tail = last_lines(kept, 10);
  return tail.empty() ? last_lines(output, 15) : tail;
}

std::vector<std::string> pip_env(const PipOptions& o, const std::string& home) {
  std::vector<std::string> env = {
      "PATH=/usr/local/bin:/usr/bin:/bin",
      "HOME=" + home,
      "LANG=C.UTF-8",
      "PIP_CONFIG_FILE=/dev/null",  // no user, site or global pip configuration
      "PIP_NO_INPUT=1",
      "PIP_ROOT_USER_ACTION=ignore",
      "PIP_CACHE_DIR=" + (fs::path(o.cache_dir) / ".cache").string(),
  };
  env.insert(env.end(), o.extra_env.begin(), o.extra_env.end());
  return env;
}

// Runs see the site directory as another uid: everything readable, nothing writable but by the
// owner, no links or special files (pip writes none from a wheel; anything else goes), and no
// direct_url.json (it records the host path a downloaded wheel was installed from).
Status normalize_tree(const fs::path& dir) {
  std::error_code ec;
  std::vector<fs::path> drop;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    const fs::file_status st = it->symlink_status(ec);
    if (fs::is_directory(st)) {
      fs::permissions(it->path(), fs::perms(0755), ec);
    } else if (fs::is_regular_file(st) && it->path().filename() == "direct_url.json") {
      drop.push_back(it->path());
    } else if (fs::is_regular_file(st)) {
      bool exec = (st.permissions() & fs::perms::owner_exec) != fs::perms::none;
      fs::permissions(it->path(), fs::perms(exec ? 0755 : 0644), ec);
    } else {
      drop.push_back(it->path());
    }
    if (ec) return make_error("cannot prepare " + it->path().string() + ": " + ec.message());
  }
  if (ec) return make_error("cannot read " + dir.string() + ": " + ec.message());
  for (const auto& p : drop) fs::remove(p, ec);
  fs::permissions(dir, fs::perms(0755), ec);
  return {};
}

}  // namespace

bool valid_requirement(std::string_view r) {
  if (r.empty() || r.size() > kMaxRequirementBytes) return false;
  Cursor c{r};
  if (!c.name()) return false;
  c.spaces();
  if (c.eat("[")) {
    do {
      c.spaces();
      if (!c.name()) return false;
      c.spaces();
    } while (c.eat(","));
    if (!c.eat("]")) return false;
    c.spaces();
  }
  if (c.done()) return true;
  do {
    c.spaces();
    if (!c.op()) return false;
    c.spaces();
    if (!c.version()) return false;
    c.spaces();
  } while (c.eat(","));
  return c.done();
}

std::string wheel_file_name(std::string_view url) {
  size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return {};
  std::string_view rest = url.substr(scheme + 3);
  rest = rest.substr(0, rest.find_first_of("?#"));
  size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return {};
  return std::string(rest.substr(rest.rfind('/') + 1));
}

bool valid_wheel_url(std::string_view url) {
  if (url.size() > kMaxUrlBytes) return false;
  std::string lower(url.substr(0, 8));
  for (char& c : lower) c = char(std::tolower(static_cast<unsigned char>(c)));
  if (lower.rfind("http://", 0) != 0 && lower.rfind("https://", 0) != 0) return false;
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '"' || c == '\\' || c == '<' ||
        c == '>')
      return false;
  }
  // name-version[-build]-python-abi-platform.whl, as pip requires of a wheel file name.
  std::string name = wheel_file_name(url);
  if (name.size() <= 4 || name.compare(name.size() - 4, 4, ".whl") != 0) return false;
  std::string_view stem(name.data(), name.size() - 4);
  size_t parts = 1;
  for (size_t i = 0; i < stem.size(); ++i) {
    char c = stem[i];
    if (c == '-') {
      if (i == 0 || i + 1 == stem.size() || stem[i + 1] == '-') return false;
      ++parts;
    } else if (!alnum(c) && c != '_' && c != '.' && c != '+' && c != '!') {
      return false;
    }
  }
  return (parts == 5 || parts == 6) && stem[0] != '.';
}

Status validate_pip(const PipSet& set) {
  if (set.requirements.size() > kMaxPipRequirements) {
    return make_error("pip.requirements: at most " + std::to_string(kMaxPipRequirements) +
                      " requirements");
  }
  if (set.wheel_urls.size() > kMaxWheelUrls) {
    return make_error("pip.wheelUrls: at most " + std::to_string(kMaxWheelUrls) + " URLs");
  }
  for (const auto& r : set.requirements) {
    if (!valid_requirement(r)) {
      return make_error("pip.requirements: unsupported requirement " + json_quoted(r) +
                        " (a package name with optional [extras] and version clauses, e.g. "
                        "\"requests==2.32.3\" or \"pkg[extra]>=1,<2\"; URLs, paths, options and "
                        "environment markers are not allowed)");
    }
  }
  for (const auto& u : set.wheel_urls) {
    if (!valid_wheel_url(u)) {
      return make_error("pip.wheelUrls: unsupported URL " + json_quoted(u) +
                        " (an http(s) URL ending in a wheel file name, e.g. "
                        "https://host/pkg-1.0-py3-none-any.whl)");
    }
  }
  std::set<std::string> names;
  for (const auto& u : set.wheel_urls) {
    if (!names.insert(wheel_file_name(u)).second) {
      return make_error("pip.wheelUrls: two URLs name the same wheel file " +
                        json_quoted(wheel_file_name(u)));
    }
  }
  return {};
}

PipSet merge_pip(const PipSet& config, const PipSet& call) {
  auto merged = [](std::vector<std::string> a, const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    std::sort(a.begin(), a.end());
    a.erase(std::unique(a.begin(), a.end()), a.end());
    return a;
  };
  return {merged(config.requirements, call.requirements), merged(config.wheel_urls, call.wheel_urls)};
}

PipCache::PipCache(PipOptions options) : opt_(std::move(options)) {}

std::string PipCache::site_dir(const std::string& key) const {
  return (fs::path(opt_.cache_dir) / key / "site").string();
}

Result<std::string> PipCache::tool_versions() {
  {
    std::lock_guard lk(mu_);
    if (!versions_.empty()) return versions_;
  }
  std::error_code ec;
  fs::create_directories(opt_.cache_dir, ec);
  if (ec) {
    return make_error("cannot create the pip cache directory " + opt_.cache_dir + ": " +
                      ec.message());
  }
  auto r = run_process({{opt_.python, "-I", "-m", "pip", "--version"},
                        pip_env(opt_, opt_.cache_dir), opt_.cache_dir, 60000});
  if (!r || r->exit_code != 0) {
    return make_error("pip is not usable on this server (" + opt_.python + " -m pip): " +
                      (r ? last_lines(r->output, 3) : r.error().message));
  }
  std::string v = last_lines(r->output, 1);  // "pip 23.0.1 from ... (python 3.11)"
  std::lock_guard lk(mu_);
  versions_ = v;
  return v;
}

Result<std::string> PipCache::key(const PipSet& set) {
  auto tools = tool_versions();
  if (!tools) return tools.error();
  PipSet sorted = merge_pip({}, set);
  json canonical = {{"format", kSetFormat},
                    {"requirements", sorted.requirements},
                    {"wheelUrls", sorted.wheel_urls},
                    {"index", opt_.index_url},
                    {"tools", *tools}};
  return sha256_hex(canonical.dump(-1, ' ', false, json::error_handler_t::replace));
}

Result<PipLease> PipCache::prepare(const PipSet& set, const WheelFetch& fetch,
                                   const BuildProgress& progress_fn) {
  if (auto s = validate_pip(set); !s) return s.error();
  if (set.empty()) return make_error("pip: no requirements");
  const BuildProgress progress = progress_fn ? progress_fn : [](double, const std::string&) {};
  auto k = key(set);
  if (!k) return k.error();
  // Locked, then checked: gc cannot remove the set in between. A set gc removes right after
  // our install is installed again (a few times at most: gc keeps sets used within a minute).
  for (int attempt = 0;; ++attempt) {
    auto lock = use(*k);
    if (!lock) return lock.error();
    if (lock->valid()) return PipLease{*k, std::move(*lock)};
    if (attempt == 3) return make_error("pip dependency set " + *k + " kept disappearing");
    if (auto r = install_once(*k, set, fetch, progress); !r) return r.error();
  }
}

Result<UniqueFd> PipCache::use(const std::string& key) {
  const fs::path root(opt_.cache_dir);
  std::string lock_path = (root / (key + ".lock")).string();
  std::error_code ec;
  if (!fs::is_directory(root / key / "site", ec)) return UniqueFd();
  UniqueFd lock = lock_file(lock_path, LOCK_SH);
  if (!lock.valid()) return make_error("cannot lock " + lock_path + ": " + std::strerror(errno));
  if (!fs::is_directory(root / key / "site", ec) || !last_use_.touch((root / key).string()))
    return UniqueFd();
  return lock;
}

Result<std::string> PipCache::install_once(const std::string& key, const PipSet& set,
                                           const WheelFetch& fetch,
                                           const BuildProgress& progress) {
  std::promise<Result<std::string>> promise;
  std::shared_future<Result<std::string>> future;
  bool owner = false;
  {
    std::lock_guard lk(mu_);
    if (auto it = building_.find(key); it != building_.end()) {
      future = it->second;
    } else {
      future = promise.get_future().share();
      building_.emplace(key, future);
      owner = true;
    }
  }
  if (!owner) {
    progress(0.1, "waiting for the pip dependencies another call is installing");
    auto r = future.get();
    if (r) progress(0.9, "pip dependencies ready");
    return r;
  }

  Result<std::string> r = make_error("internal error while installing the pip dependencies");
  try {
    r = load_or_build(key, set, fetch, progress);
  } catch (const std::exception& e) {
    log::error(std::string("pip dependencies: ") + e.what());
  }
  {
    std::lock_guard lk(mu_);
    building_.erase(key);
  }
  promise.set_value(r);
  return r;
}

Result<std::string> PipCache::load_or_build(const std::string& key, const PipSet& set,
                                            const WheelFetch& fetch,
                                            const BuildProgress& progress) {
  const fs::path root(opt_.cache_dir);
  std::error_code ec;
  // Other server processes sharing the cache directory wait here while one builds the set.
  std::string lock_path = (root / (key + ".lock")).string();
  UniqueFd lock = lock_file(lock_path, LOCK_EX);
  if (!lock.valid()) return make_error("cannot lock " + lock_path + ": " + std::strerror(errno));
  if (fs::is_directory(root / key / "site", ec)) return key;
  // Leftovers of a build that died with its process (we hold the lock: nobody else builds it).
  for (const auto& e : fs::directory_iterator(root, ec)) {
    if (e.path().filename().string().rfind(".tmp-" + key + "-", 0) == 0) fs::remove_all(e.path(), ec);
  }
  Status built = build(key, set, fetch, progress);
  // (Held: whoever waits for it retries on a new file.)
  ::unlink(lock_path.c_str());
  if (!built) return built.error();
  last_use_.record((root / key).string());
  progress(0.9, "pip dependencies ready");
  return key;
}

Status PipCache::build(const std::string& key, const PipSet& set, const WheelFetch& fetch,
                       const BuildProgress& progress) {
  const fs::path root(opt_.cache_dir);
  TempDir tmp{root / (".tmp-" + key + "-" + std::to_string(::getpid()) + "-" +
                      std::to_string(tmp_counter_++))};
  std::error_code ec;
  fs::create_directories(tmp.path / "home", ec);
  if (!ec) fs::create_directories(tmp.path / "wheels", ec);
  if (ec) return make_error("cannot create " + tmp.path.string() + ": " + ec.message());

  // 1. Wheel URLs: downloaded by the caller's fetch (the network policy applies), never by pip.
  std::vector<std::string> wheels;
  if (!set.wheel_urls.empty())
    progress(0.1, "downloading " + std::to_string(set.wheel_urls.size()) + " wheel(s)");
  for (const auto& url : set.wheel_urls) {
    if (!fetch) return make_error("pip.wheelUrls: downloading wheels is not available");
    auto bytes = fetch(url);
    if (!bytes) return make_error("pip.wheelUrls: cannot download " + url + ": " + bytes.error().message);
    fs::path file = tmp.path / "wheels" / wheel_file_name(url);
    if (auto s = write_file(file, *bytes); !s) return s.error();
    wheels.push_back(file.string());
  }

  // 2. pip install of wheels only, into the set's own directory.
  std::vector<std::string> argv = {opt_.python,
                                   "-I",
                                   "-m",
                                   "pip",
                                   "install",
                                   "--no-input",
                                   "--disable-pip-version-check",
                                   "--no-color",
                                   "--progress-bar=off",
                                   "--only-binary=:all:",
                                   "--target",
                                   (tmp.path / "site").string()};
  if (!opt_.index_url.empty()) argv.insert(argv.end(), {"--index-url", opt_.index_url});
  argv.insert(argv.end(), set.requirements.begin(), set.requirements.end());
  argv.insert(argv.end(), wheels.begin(), wheels.end());
  ++installs_;
  log::info("pip install of " + std::to_string(set.requirements.size()) + " requirement(s) and " +
            std::to_string(set.wheel_urls.size()) + " wheel(s) for set " + key.substr(0, 12));
  const auto t0 = std::chrono::steady_clock::now();
  // From an empty directory: pip reads an argument naming an existing file as that file.
  const std::string home = (tmp.path / "home").string();
  progress(0.3, "installing " + std::to_string(set.requirements.size() + wheels.size()) +
                    " requirement(s)");
  // The download cache is not wiped by gc while pip uses it.
  UniqueFd downloads = lock_file((root / kDownloadLock).string(), LOCK_SH);
  auto r = run_process({argv, pip_env(opt_, home), home, opt_.install_timeout_ms});
  if (!r) return make_error("pip install failed: " + r.error().message);
  if (r->timed_out) {
    return make_error("pip install did not finish in " +
                      std::to_string(opt_.install_timeout_ms / 1000) + " s");
  }
  if (r->exit_code != 0) {
    return make_error("pip install failed (exit code " + std::to_string(r->exit_code) + "):\n" +
                      pip_errors(r->output));
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - t0)
                      .count();

  // 3. Into place: complete or not at all.
  fs::path staged = tmp.path / "final";
  fs::create_directories(staged, ec);
  fs::rename(tmp.path / "site", staged / "site", ec);
  if (ec) return make_error("pip install failed: it wrote no packages (" + ec.message() + ")");
  if (auto s = normalize_tree(staged / "site"); !s) return s.error();
  std::set<std::string> installed;
  for (const auto& e : fs::directory_iterator(staged / "site", ec)) {
    std::string n = e.path().filename().string();
    if (n.size() > 10 && n.compare(n.size() - 10, 10, ".dist-info") == 0)
      installed.insert(n.substr(0, n.size() - 10));
  }
  json manifest = {{"requirements", set.requirements},
                   {"wheelUrls", set.wheel_urls},
                   {"installed", installed}};
  if (auto s = write_file(staged / "manifest.json", manifest.dump(2) + "\n"); !s) return s.error();
  fs::permissions(staged, fs::perms(0755), ec);
  fs::permissions(staged / "manifest.json", fs::perms(0644), ec);
  log::info("pip dependency set " + key.substr(0, 12) + ": installed in " + std::to_string(ms) +
            " ms (" + json(installed).dump() + ")");
  if (::rename(staged.c_str(), (root / key).c_str()) != 0) {
    if (fs::is_directory(root / key / "site", ec)) return {};
    return make_error("cannot store the pip dependency set in " + (root / key).string() + ": " +
                      std::strerror(errno));
  }
  return {};
}

}  // namespace onemcp::deps
