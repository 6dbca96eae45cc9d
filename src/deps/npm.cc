#include "deps/npm.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/log.h"
#include "base/unique_fd.h"
#include "deps/process.h"
#include "base/sha256.h"
#include "deps/files.h"
#include "deps/retention.h"
#include "transpile/esbuild.h"

namespace onemcp::deps {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Bumped whenever the layer's shape changes, so old cache entries are not reused.
constexpr int kLayerFormat = 1;
constexpr size_t kMaxRangeBytes = 256;
constexpr size_t kMaxSubpathsPerPackage = 256;
constexpr size_t kMemoryCacheSize = 16;
constexpr char kEntry[] = "entry.js";

// Node's built-in modules. When a package imports one that is not installed as a package, the
// bundle leaves the import to the run's require(), which gives a placeholder that throws on use.
constexpr const char* kNodeBuiltins[] = {"assert",
                                         "async_hooks",
                                         "buffer",
                                         "child_process",
                                         "cluster",
                                         "console",
                                         "constants",
                                         "crypto",
                                         "dgram",
                                         "diagnostics_channel",
                                         "dns",
                                         "domain",
                                         "events",
                                         "fs",
                                         "http",
                                         "http2",
                                         "https",
                                         "inspector",
                                         "module",
                                         "net",
                                         "os",
                                         "path",
                                         "perf_hooks",
                                         "process",
                                         "punycode",
                                         "querystring",
                                         "readline",
                                         "repl",
                                         "stream",
                                         "string_decoder",
                                         "sys",
                                         "timers",
                                         "tls",
                                         "trace_events",
                                         "tty",
                                         "url",
                                         "util",
                                         "v8",
                                         "vm",
                                         "wasi",
                                         "worker_threads",
                                         "zlib"};

// As a JSON (and JS) string literal; invalid UTF-8 becomes U+FFFD rather than an exception.
std::string quoted(const std::string& s) {
  return json(s).dump(-1, ' ', false, json::error_handler_t::replace);
}

bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

bool valid_name_part(std::string_view p) {
  if (p.empty() || p[0] == '.' || p[0] == '_') return false;
  for (char c : p)
    if (!name_char(c)) return false;
  return true;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Whether a package.json "exports" value leads to a file under conditions the bundle uses.
bool has_target(const json& v) {
  if (v.is_string()) return !ends_with(v.get<std::string>(), ".d.ts");
  if (v.is_array()) {
    for (const auto& e : v)
      if (has_target(e)) return true;
    return false;
  }
  if (v.is_object()) {
    for (const char* c : {"browser", "import", "module", "require", "default"})
      if (v.contains(c) && has_target(v[c])) return true;
  }
  return false;
}

// "./sub" keys of a package's exports map that can be bundled ("./x/*" patterns cannot).
std::vector<std::string> exported_subpaths(const fs::path& package_json) {
  std::vector<std::string> out;
  auto text = read_file(package_json, 8u << 20);
  if (!text) return out;
  json pj = json::parse(*text, nullptr, false);
  if (!pj.is_object() || !pj.contains("exports") || !pj["exports"].is_object()) return out;
  for (const auto& [k, v] : pj["exports"].items()) {
    if (k.size() < 3 || k.rfind("./", 0) != 0 || k.find('*') != std::string::npos) continue;
    if (k == "./package.json" || k.find("..") != std::string::npos) continue;
    std::string last = k.substr(k.rfind('/') + 1);
    size_t dot = last.rfind('.');
    if (dot != std::string::npos) {
      std::string ext = last.substr(dot);
      if (ext != ".js" && ext != ".mjs" && ext != ".cjs" && ext != ".json") continue;
    }
    if (!has_target(v)) continue;
    out.push_back(k.substr(2));
    if (out.size() == kMaxSubpathsPerPackage) break;
  }
  return out;
}

std::string strip_npm_noise(const std::string& output) {
  std::string kept;
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);) {
    // npm's advice about logs and about installing from tarballs, folders or URLs (refused
    // here) would only confuse.
    if (line.find("A complete log of this run") != std::string::npos) continue;
    if (line.find("Log files were not written") != std::string::npos) continue;
    if (line.find("Note that you can also install from a") != std::string::npos) continue;
    if (line.find("tarball, folder, http url, or git url") != std::string::npos) continue;
    if (line.find("npm warn") == 0 || line.find("npm WARN") == 0) continue;
    if (line == "npm error 404") continue;
    kept += line + "\n";
  }
  std::string tail = last_lines(kept, 15);
  return tail.empty() ? last_lines(output, 15) : tail;
}

// Every package npm placed must come from a registry: no links, no file, git or other specs.
Status check_lockfile(const fs::path& lock_path) {
  auto text = read_file(lock_path, 64u << 20);
  if (!text) return make_error("npm install failed: it wrote no package-lock.json");
  json lock = json::parse(*text, nullptr, false);
  if (!lock.is_object() || !lock.contains("packages") || !lock["packages"].is_object()) {
    return make_error("npm install failed: unreadable package-lock.json");
  }
  for (const auto& [path, e] : lock["packages"].items()) {
    if (path.empty()) continue;
    std::string why;
    if (path.rfind("node_modules/", 0) != 0 || path.find("..") != std::string::npos) {
      why = "it is installed outside node_modules";
    } else if (e.is_object() && e.value("link", false)) {
      why = "it is a link to a directory";
    } else if (e.is_object() && e.contains("resolved")) {
      std::string r = e["resolved"].is_string() ? e["resolved"].get<std::string>() : "";
      if (r.rfind("http://", 0) != 0 && r.rfind("https://", 0) != 0)
        why = "it resolves to \"" + r + "\"";
    }
    if (!why.empty()) {
      return make_error("npm dependencies refused: \"" + path +
                        "\" does not come from the registry (" + why + ")");
    }
  }
  return {};
}

std::vector<std::string> npm_env(const NpmOptions& o, const std::string& home) {
  std::string npm_dir = fs::path(o.npm).parent_path().string();
  std::vector<std::string> env = {
      "PATH=" + npm_dir + ":/usr/local/bin:/usr/bin:/bin",
      "HOME=" + home,
      "LANG=C.UTF-8",
      "npm_config_cache=" + (fs::path(o.cache_dir) / ".npm-cache").string(),
      "npm_config_update_notifier=false",
      "npm_config_fund=false",
      "npm_config_audit=false",
      "npm_config_logs_max=0",
      "npm_config_progress=false",
      "npm_config_color=false",
  };
  env.insert(env.end(), o.extra_env.begin(), o.extra_env.end());
  return env;
}

// The version in the package.json of package `name` that contains the real path of `exe`
// (npm on PATH is a link to <prefix>/node_modules/npm/bin/npm-cli.js). Empty if there is none.
std::string package_version_near(const std::string& exe, const std::string& name) {
  std::error_code ec;
  fs::path p = fs::canonical(exe, ec);
  if (ec) return {};
  for (int up = 0; up < 4 && p.has_parent_path() && p != p.root_path(); ++up) {
    p = p.parent_path();
    auto text = read_file(p / "package.json", 1u << 20);
    if (!text) continue;
    json j = json::parse(*text, nullptr, false);
    if (j.is_object() && j.value("name", "") == name && j.contains("version") &&
        j["version"].is_string()) {
      return j["version"];
    }
  }
  return {};
}

// A complete cache entry, or nothing.
std::shared_ptr<const Layer> load_layer(const fs::path& dir, const std::string& key) {
  auto code = read_file(dir / "deps.js");
  auto manifest = read_file(dir / "manifest.json");
  if (!code || !manifest) return nullptr;
  json m = json::parse(*manifest, nullptr, false);
  if (!m.is_object()) return nullptr;
  auto layer = std::make_shared<Layer>();
  layer->key = key;
  layer->code = std::move(*code);
  layer->sha256 = sha256_hex(layer->code);
  try {
    layer->modules = m.at("modules").get<std::set<std::string>>();
    layer->versions = m.at("versions").get<std::map<std::string, std::string>>();
  } catch (const json::exception&) {
    return nullptr;
  }
  return layer;
}

using Clock = std::chrono::steady_clock;

std::string ms_since(Clock::time_point t0) {
  return std::to_string(
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count());
}

// npm install (or npm ci) in `dir`, where package.json (and the lockfile, if any) already are.
Status npm_install(const NpmOptions& o, const fs::path& dir, bool ci) {
  std::vector<std::string> argv = {o.npm,        ci ? "ci" : "install", "--ignore-scripts",
                                   "--no-audit", "--no-fund",           "--no-bin-links",
                                   "--omit=dev", "--loglevel=warn"};
  if (!o.registry.empty()) argv.push_back("--registry=" + o.registry);
  const std::string verb = ci ? "npm ci" : "npm install";
  // The download cache is not wiped by gc while npm uses it.
  UniqueFd downloads = lock_file((fs::path(o.cache_dir) / kDownloadLock).string(), LOCK_SH);
  auto r =
      run_process({argv, npm_env(o, (dir / "home").string()), dir.string(), o.install_timeout_ms});
  if (!r) return make_error(verb + " failed: " + r.error().message);
  if (r->timed_out) {
    return make_error(verb + " did not finish within " + std::to_string(o.install_timeout_ms) +
                      " ms: stopped");
  }
  if (r->exit_code != 0) {
    std::string why = r->signal ? "killed by signal " + std::to_string(r->signal)
                                : "exit code " + std::to_string(r->exit_code);
    return make_error(verb + " failed (" + why + "):\n" + strip_npm_noise(r->output));
  }
  return check_lockfile(dir / "package-lock.json");
}

// esbuild: one IIFE (deps.js) whose entry imports every module of `modules` as a namespace
// into globalThis.__onemcp_modules; meta.json describes what went in.
Status esbuild_bundle(const NpmOptions& o, const fs::path& dir,
                      const std::set<std::string>& modules) {
  std::string imports, table;
  size_t i = 0;
  for (const auto& m : modules) {
    std::string var = "m" + std::to_string(i++);
    imports += "import * as " + var + " from " + quoted(m) + ";\n";
    table += "  " + quoted(m) + ": " + var + ",\n";
  }
  if (auto s =
          write_file(dir / kEntry, imports + "globalThis.__onemcp_modules = {\n" + table + "};\n");
      !s) {
    return s;
  }
  std::vector<std::string> args = {o.esbuild,
                                   kEntry,
                                   "--bundle",
                                   "--format=iife",
                                   "--platform=browser",
                                   "--target=es2020",
                                   "--charset=utf8",
                                   "--minify-syntax",
                                   "--minify-whitespace",
                                   "--legal-comments=none",
                                   "--define:process.env.NODE_ENV=\"production\"",
                                   "--tsconfig-raw={}",
                                   "--log-level=error",
                                   "--color=false",
                                   "--metafile=meta.json",
                                   "--outfile=deps.js",
                                   "--external:node:*"};
  for (const char* b : kNodeBuiltins) {
    if (fs::exists(dir / "node_modules" / b)) continue;  // a package of that name wins
    args.push_back(std::string("--external:") + b);
    args.push_back(std::string("--external:") + b + "/*");
  }
  auto r = run_process({args, {"PATH=/usr/bin:/bin"}, dir.string(), o.bundle_timeout_ms});
  if (!r) return make_error("bundling the npm dependencies failed: " + r.error().message);
  if (r->timed_out) return make_error("bundling the npm dependencies did not finish in time");
  if (r->exit_code != 0) {
    return make_error("bundling the npm dependencies failed:\n" +
                      transpile::clean_diagnostics(r->output));
  }
  return {};
}

// Checks esbuild's metafile: every bundled file must come from the set's node_modules (not
// through a link to elsewhere, not from a node_modules further up). Returns the specifiers
// whose package is CommonJS.
Result<json> inspect_bundle(const fs::path& dir) {
  auto text = read_file(dir / "meta.json", 64u << 20);
  json meta = text ? json::parse(*text, nullptr, false) : json();
  if (!meta.is_object() || !meta.contains("inputs") || !meta["inputs"].is_object()) {
    return make_error("bundling the npm dependencies failed: esbuild wrote no metafile");
  }
  const json& inputs = meta["inputs"];
  for (const auto& [path, in] : inputs.items()) {
    if (path == kEntry || path.rfind("(disabled):", 0) == 0) continue;
    if (path.rfind("node_modules/", 0) != 0 || path.find("../") != std::string::npos) {
      return make_error("npm dependencies refused: the bundle would include \"" + path +
                        "\", which is outside the installed packages");
    }
  }
  json commonjs = json::array();
  if (inputs.contains(kEntry) && inputs[kEntry].contains("imports")) {
    for (const auto& imp : inputs[kEntry]["imports"]) {
      std::string path = imp.value("path", "");
      const json* target = inputs.contains(path) ? &inputs[path] : nullptr;
      if (!target || target->value("format", "") != "esm") {
        commonjs.push_back(imp.value("original", path));
      }
    }
  }
  return commonjs;
}

}  // namespace

bool valid_package_name(std::string_view name) {
  if (name.empty() || name.size() > 214) return false;
  if (name[0] == '@') {
    size_t slash = name.find('/');
    if (slash == std::string_view::npos) return false;
    return valid_name_part(name.substr(1, slash - 1)) && valid_name_part(name.substr(slash + 1));
  }
  return valid_name_part(name) && name != "node_modules" && name != "favicon.ico";
}

bool valid_version_range(std::string_view r) {
  if (r.size() > kMaxRangeBytes || (!r.empty() && r[0] == '.')) return false;
  for (char c : r) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              std::string_view(" .-+^~<>=*|").find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  // npm reads a spec ending like a tarball name as a path to a local file.
  std::string lower(r);
  for (char& c : lower) c = char(std::tolower(static_cast<unsigned char>(c)));
  return !ends_with(lower, ".tgz") && !ends_with(lower, ".tar") && !ends_with(lower, ".tar.gz");
}

Status validate_dependencies(const Dependencies& deps) {
  if (deps.size() > kMaxDependencies) {
    return make_error("npm.dependencies: at most " + std::to_string(kMaxDependencies) +
                      " packages");
  }
  for (const auto& [name, range] : deps) {
    if (!valid_package_name(name)) {
      return make_error("npm.dependencies: invalid package name " + quoted(name) +
                        " (an npm registry package name, e.g. \"lodash\" or \"@scope/pkg\")");
    }
    if (!valid_version_range(range)) {
      return make_error("npm.dependencies: " + name + ": unsupported version " + quoted(range) +
                        " (a semver range such as \"^1.2.0\" or a tag such as \"latest\"; URLs, "
                        "git, file, link and alias specs are not allowed)");
    }
  }
  return {};
}

Dependencies merge_dependencies(const Dependencies& config, const Dependencies& call) {
  Dependencies out = config;
  for (const auto& [name, range] : call) out[name] = range;
  return out;
}

NpmCache::NpmCache(NpmOptions options)
    : opt_(std::move(options)), last_use_(opt_.touch_interval) {}

Result<std::string> NpmCache::tool_versions() {
  {
    std::lock_guard lk(mu_);
    if (!versions_.empty()) return versions_;
  }
  std::error_code ec;
  fs::create_directories(opt_.cache_dir, ec);
  if (ec)
    return make_error("cannot create the npm cache directory " + opt_.cache_dir + ": " +
                      ec.message());
  std::string npm_version = package_version_near(opt_.npm, "npm");
  if (npm_version.empty()) {  // not an npm/bin/npm-cli.js layout: ask npm (slower)
    auto npm = run_process(
        {{opt_.npm, "--version"}, npm_env(opt_, opt_.cache_dir), opt_.cache_dir, 30000});
    if (!npm || npm->exit_code != 0) {
      return make_error("npm is not usable on this server (" + opt_.npm +
                        "): " + (npm ? last_lines(npm->output, 3) : npm.error().message));
    }
    npm_version = last_lines(npm->output, 1);
  }
  auto esb = run_process({{opt_.esbuild, "--version"}, {"PATH=/usr/bin:/bin"}, "/", 10000});
  if (!esb || esb->exit_code != 0) {
    return make_error("esbuild is not usable on this server (" + opt_.esbuild + ")");
  }
  std::string v = "npm " + npm_version + ", esbuild " + last_lines(esb->output, 1);
  std::lock_guard lk(mu_);
  versions_ = v;
  return v;
}

Result<std::string> NpmCache::key(const Dependencies& deps) {
  auto tools = tool_versions();
  if (!tools) return tools.error();
  json canonical = {{"format", kLayerFormat},
                    {"dependencies", deps},  // std::map: sorted by name
                    {"lockfile", opt_.lockfile.empty() ? "" : sha256_hex(opt_.lockfile)},
                    {"locked", opt_.lockfile.empty() ? json::object() : json(opt_.locked)},
                    {"registry", opt_.registry},
                    {"tools", *tools}};
  return sha256_hex(canonical.dump(-1, ' ', false, json::error_handler_t::replace));
}

Result<std::shared_ptr<const Layer>> NpmCache::layer(const Dependencies& deps,
                                                     const BuildProgress& progress_fn) {
  if (auto s = validate_dependencies(deps); !s) return s.error();
  if (deps.empty()) return make_error("npm.dependencies: no packages");
  const BuildProgress progress =
      progress_fn ? progress_fn : [](double, const std::string&) {};
  auto k = key(deps);
  if (!k) return k.error();

  std::promise<Result<Shared>> promise;
  std::shared_future<Result<Shared>> future;
  bool owner = false;
  const std::string dir = (fs::path(opt_.cache_dir) / *k).string();
  {
    std::unique_lock lk(mu_);
    if (auto it = loaded_.find(*k); it != loaded_.end()) {
      Shared hit = it->second;
      lk.unlock();
      // Its last use, for gc. Removed by gc meanwhile: loaded or built again below.
      if (last_use_.touch(dir)) return hit;
      lk.lock();
      loaded_.erase(*k);
    }
    if (auto it = building_.find(*k); it != building_.end()) {
      future = it->second;
    } else {
      future = promise.get_future().share();
      building_.emplace(*k, future);
      owner = true;
    }
  }
  if (!owner) {
    progress(0.1, "waiting for the npm dependencies another call is preparing");
    auto r = future.get();
    if (r) progress(0.9, "npm dependencies ready");
    return r;
  }

  Result<Shared> r = make_error("internal error while preparing the npm dependencies");
  try {
    r = load_or_build(*k, deps, progress);
  } catch (const std::exception& e) {
    log::error(std::string("npm dependencies: ") + e.what());
  }
  {
    std::lock_guard lk(mu_);
    building_.erase(*k);
    if (r) {
      if (loaded_.size() >= kMemoryCacheSize) loaded_.erase(loaded_.begin());
      loaded_[*k] = *r;
    }
  }
  promise.set_value(r);
  return r;
}

Result<std::shared_ptr<const Layer>> NpmCache::load_or_build(const std::string& key,
                                                             const Dependencies& deps,
                                                             const BuildProgress& progress) {
  const fs::path root(opt_.cache_dir);
  if (auto l = load_layer(root / key, key); l && last_use_.touch((root / key).string()))
    return Shared(l);
  progress(0.1, "resolving " + std::to_string(deps.size()) + " npm package(s)");
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec)
    return make_error("cannot create the npm cache directory " + root.string() + ": " +
                      ec.message());
  // Other server processes sharing the cache directory wait here while one builds the set.
  std::string lock_path = (root / (key + ".lock")).string();
  UniqueFd lock = lock_file(lock_path, LOCK_EX);
  if (!lock.valid()) return make_error("cannot lock " + lock_path + ": " + std::strerror(errno));
  if (auto l = load_layer(root / key, key)) {
    last_use_.touch((root / key).string());
    return Shared(l);
  }
  // Leftovers of a build that died with its process (we hold the lock: nobody else builds it).
  for (const auto& e : fs::directory_iterator(root, ec)) {
    if (e.path().filename().string().rfind(".tmp-" + key + "-", 0) == 0)
      fs::remove_all(e.path(), ec);
  }
  auto built = build(key, deps, progress);
  // Nothing is left of a finished build but its result. (A process that opens the lock file
  // just now may build the set again; the rename below keeps whichever finishes first.)
  ::unlink(lock_path.c_str());
  return built;
}

Result<std::shared_ptr<const Layer>> NpmCache::build(const std::string& key,
                                                     const Dependencies& deps,
                                                     const BuildProgress& progress) {
  const fs::path root(opt_.cache_dir);
  TempDir tmp{root / (".tmp-" + key + "-" + std::to_string(::getpid()) + "-" +
                      std::to_string(tmp_counter_++))};
  std::error_code ec;
  fs::create_directories(tmp.path / "home", ec);
  if (ec) return make_error("cannot create " + tmp.path.string() + ": " + ec.message());

  // 1. npm install without scripts (npm ci for exactly the set the lockfile pins).
  json package = {{"name", "onemcp-dependency-set"},
                  {"version", "0.0.0"},
                  {"private", true},
                  {"dependencies", deps}};
  if (auto s = write_file(tmp.path / "package.json", package.dump(2) + "\n"); !s) return s.error();
  if (!opt_.lockfile.empty()) {
    if (auto s = write_file(tmp.path / "package-lock.json", opt_.lockfile); !s) return s.error();
  }
  ++installs_;
  log::info("npm install of " + std::to_string(deps.size()) + " npm package(s) for set " +
            key.substr(0, 12));
  progress(0.2, "installing " + std::to_string(deps.size()) + " npm package(s)");
  const auto t0 = Clock::now();
  if (auto s = npm_install(opt_, tmp.path, !opt_.lockfile.empty() && deps == opt_.locked); !s) {
    return s.error();
  }
  const std::string install_ms = ms_since(t0);

  // 2. What the layer provides: each package, plus the subpaths its "exports" map lists.
  Layer layer;
  layer.key = key;
  std::set<std::string> with_subpaths;
  for (const auto& [name, range] : deps) {
    layer.modules.insert(name);
    with_subpaths.insert(name);
    fs::path pj = tmp.path / "node_modules" / name / "package.json";
    if (auto text = read_file(pj, 8u << 20)) {
      json j = json::parse(*text, nullptr, false);
      if (j.is_object() && j.contains("version") && j["version"].is_string()) {
        layer.versions[name] = j["version"];
      }
    }
    for (const auto& sub : exported_subpaths(pj)) with_subpaths.insert(name + "/" + sub);
  }

  // 3. One bundle for QuickJS. A subpath that does not build costs the subpaths, not the set.
  progress(0.6, "bundling the npm dependencies");
  const auto t1 = Clock::now();
  Status bundled = esbuild_bundle(opt_, tmp.path, with_subpaths);
  if (bundled) {
    layer.modules = with_subpaths;
  } else if (with_subpaths != layer.modules) {
    bundled = esbuild_bundle(opt_, tmp.path, layer.modules);
  }
  if (!bundled) return bundled.error();
  auto commonjs = inspect_bundle(tmp.path);
  if (!commonjs) return commonjs.error();
  auto code = read_file(tmp.path / "deps.js", opt_.max_layer_bytes + 1);
  if (!code || code->size() > opt_.max_layer_bytes) {
    return make_error("the bundled npm dependencies are larger than " +
                      std::to_string(opt_.max_layer_bytes >> 20) + " MiB");
  }
  layer.code = std::move(*code) + "\nglobalThis.__onemcp_commonjs = " + commonjs->dump() + ";\n";
  layer.sha256 = sha256_hex(layer.code);
  log::info("npm dependency set " + key.substr(0, 12) + ": installed in " + install_ms +
            " ms, bundled in " + ms_since(t1) + " ms (" + std::to_string(layer.code.size() >> 10) +
            " KiB)");

  // 4. Into place: complete or not at all.
  fs::path staged = tmp.path / "final";
  fs::create_directories(staged, ec);
  json manifest = {
      {"modules", layer.modules}, {"versions", layer.versions}, {"dependencies", deps}};
  for (auto s : {write_file(staged / "deps.js", layer.code),
                 write_file(staged / "manifest.json", manifest.dump(2) + "\n")}) {
    if (!s) return s.error();
  }
  fs::copy_file(tmp.path / "package.json", staged / "package.json", ec);
  fs::copy_file(tmp.path / "package-lock.json", staged / "package-lock.json", ec);
  if (::rename(staged.c_str(), (root / key).c_str()) != 0) {
    if (auto l = load_layer(root / key, key)) return Shared(l);
    return make_error("cannot store the npm dependency layer in " + (root / key).string() + ": " +
                      std::strerror(errno));
  }
  last_use_.record((root / key).string());
  progress(0.9, "npm dependencies ready");
  return Shared(std::make_shared<Layer>(std::move(layer)));
}

}  // namespace onemcp::deps
