// cli/main.cc — the `1mcp` command: `init` writes a default config and the capsule signing key,
// `capsule verify` checks a stored capsule, `token` manages the static bearer tokens, `doctor`
// checks the kernel features the sandbox needs, `serve` runs the MCP server over HTTP (default)
// or stdio. The only place that builds real clocks, workers and sockets.
#include <arpa/inet.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "base/log.h"
#include "base/unique_fd.h"
#include "capsule/signing_key.h"
#include "capsule/store.h"
#include "cli/auth_cli.h"
#include "cli/config_file.h"
#include "cli/import.h"
#include "deps/npm.h"
#include "deps/pip.h"
#include "deps/process.h"
#include "deps/retention.h"
#include "doctor/doctor.h"
#include "policy/config.h"
#include "policy/egress.h"
#include "sandbox/cgroup.h"
#include "sandbox/child/landlock.h"
#include "server/backend.h"
#include "server/capsules.h"
#include "server/egress.h"
#include "server/mcp_server.h"
#include "server/sessions.h"
#ifdef ONEMCP_CONFORMANCE_FIXTURES
#include "tests/conformance/fixtures.h"
#endif
#include "server/tools.h"
#include "server/upstreams.h"
#include "upstream/upstream.h"
#include "transport/http_server.h"
#include "transport/stdio.h"

extern char** environ;

namespace fs = std::filesystem;
using namespace onemcp;

namespace {

constexpr const char* kVersion = ONEMCP_VERSION;  // src/cli/CMakeLists.txt

std::string exe_dir() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  buf[n] = 0;
  return fs::path(buf).parent_path().string();
}

using cli::resolve;

// Where the workers and esbuild are: next to the binary in a build tree (build/1mcp,
// build/1mcp-js-worker), else in ../lib/1mcp/ of an installed tree (bin/1mcp,
// lib/1mcp/1mcp-js-worker, lib/1mcp/esbuild); both found from /proc/self/exe, so an installed
// tree can be moved. esbuild: $ONEMCP_ESBUILD, else the installed copy, else node_modules of the
// source tree the binary was built from.
server::WorkerPaths locate_workers() {
  std::string here = exe_dir();
  std::string dir = here;
  std::string installed = (fs::path(here) / ".." / "lib" / "1mcp").lexically_normal().string();
  std::error_code ec;
  if (!fs::exists(here + "/1mcp-js-worker", ec) && fs::exists(installed + "/1mcp-js-worker", ec)) {
    dir = installed;
  }
  server::WorkerPaths paths{dir + "/1mcp-js-worker", dir + "/1mcp-py-worker",
                            ONEMCP_DEFAULT_ESBUILD};
  if (const char* e = std::getenv("ONEMCP_ESBUILD")) {
    paths.esbuild = e;
  } else if (fs::exists(installed + "/esbuild", ec)) {
    paths.esbuild = installed + "/esbuild";
  }
  return paths;
}

// --open: the web page in the user's browser, through xdg-open (what the original's `open`
// package uses on Linux). Whatever prevents it is logged with the URL to open by hand. Without a
// graphical session xdg-open would start a text browser on the server's terminal, so it is not
// tried then. xdg-open is not waited for (it may run as long as the browser does); a failure it
// reports later is logged.
void open_browser(const std::string& url) {
  auto manual = [url](const std::string& why) {
    log::warn("--open: cannot open a browser: " + why + "; open " + url + " yourself");
  };
  const char* path_env = std::getenv("PATH");
  const std::string opener =
      deps::find_in_path("xdg-open", path_env ? path_env : "/usr/local/bin:/usr/bin:/bin");
  if (opener.empty())
    return manual("xdg-open is not installed (Debian: apt-get install xdg-utils)");
  auto set = [](const char* var) {
    const char* v = std::getenv(var);
    return v && *v;
  };
  if (!set("DISPLAY") && !set("WAYLAND_DISPLAY") && !set("BROWSER")) {
    return manual("no graphical session (DISPLAY and WAYLAND_DISPLAY are not set)");
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, 2, 1);  // stdout is the server's log, never stdio's
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, defaults;
  sigemptyset(&none);  // the server blocks the signals its sigwait thread takes
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);  // ignored by the server
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  const char* argv[] = {opener.c_str(), url.c_str(), nullptr};
  pid_t pid = -1;
  const int err =
      ::posix_spawn(&pid, opener.c_str(), &actions, &attr, const_cast<char**>(argv), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (err != 0) return manual("cannot start " + opener + ": " + std::strerror(err));
  std::thread([pid, opener, manual] {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return;
    manual(opener + (WIFEXITED(status)
                         ? " failed with exit status " + std::to_string(WEXITSTATUS(status))
                         : std::string(" was killed by a signal")));
  }).detach();
}

// What `1mcp` says where a command is missing or unknown (CLI11 only says "A subcommand is
// required"): the commands of `where`, each with its description. Exit code 2.
int command_usage(const CLI::App& where, const std::vector<std::string>& extra) {
  std::string name = where.get_name();
  for (const CLI::App* p = where.get_parent(); p; p = p->get_parent()) {
    name = p->get_parent() ? p->get_name() + " " + name : "1mcp " + name;
  }
  if (!where.get_parent()) name = "1mcp";
  if (extra.empty()) {
    std::fprintf(stderr, "%s: a command is needed.\n", name.c_str());
  } else if (extra.front().starts_with("-")) {
    std::fprintf(stderr, "%s: unknown option \"%s\"; a command comes first.\n", name.c_str(),
                 extra.front().c_str());
  } else {
    std::fprintf(stderr, "%s: \"%s\" is not a command.\n", name.c_str(), extra.front().c_str());
  }
  std::fprintf(stderr, "Usage: %s COMMAND [OPTIONS]\nCommands:\n", name.c_str());
  for (const CLI::App* sub : where.get_subcommands([](const CLI::App*) { return true; })) {
    std::fprintf(stderr, "  %-9s %s\n", sub->get_name().c_str(), sub->get_description().c_str());
  }
  std::fprintf(stderr, "`%s COMMAND --help` shows a command's options.\n", name.c_str());
  return 2;
}

// Adds the MCP servers `client` lists (in `file`, else its first default file that exists) to
// `mcps` of the config; reports each one it could not convert. Exit code.
int import_servers(const std::string& dir, const std::string& config, const std::string& client,
                   std::string file) {
  if (file.empty()) {
    const char* home = std::getenv("HOME");
    const char* xdg = std::getenv("XDG_CONFIG_HOME");
    std::error_code ec;
    const auto tried = cli::import_default_paths(
        client, home ? home : "", xdg && xdg[0] == '/' ? xdg : "", fs::current_path(ec).string());
    for (const auto& p : tried) {
      if (fs::is_regular_file(p, ec)) {
        file = p;
        break;
      }
    }
    if (file.empty()) {
      std::string list;
      for (const auto& p : tried) list += "\n  " + p;
      std::fprintf(stderr,
                   "1mcp init --import %s: no server list found; looked for:%s\n(give its path: "
                   "`1mcp init --import %s FILE`)\n",
                   client.c_str(), list.c_str(), client.c_str());
      return 1;
    }
  }
  std::ifstream in(file);
  std::stringstream text;
  if (in.is_open()) text << in.rdbuf();
  if (!in.is_open() || in.bad()) {
    std::fprintf(stderr, "1mcp init --import: cannot read %s: %s\n", file.c_str(),
                 std::strerror(errno));
    return 1;
  }
  // VS Code's files are JSON with comments.
  const nlohmann::json parsed = nlohmann::json::parse(text.str(), nullptr, false, true);
  if (parsed.is_discarded()) {
    std::fprintf(stderr, "1mcp init --import: %s is not valid JSON\n", file.c_str());
    return 1;
  }
  auto doc = cli::read_config_document(dir, config);
  if (!doc) {
    std::fprintf(stderr, "1mcp init --import: %s\n", doc.error().message.c_str());
    return 1;
  }
  std::set<std::string> taken;
  if (!doc->contains("mcps")) (*doc)["mcps"] = nlohmann::ordered_json::array();
  for (const auto& m : (*doc)["mcps"]) {
    std::string n = m.value("name", "");
    std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
    taken.insert(n);
  }
  auto imported = cli::import_servers(client, parsed, taken);
  if (!imported) {
    std::fprintf(stderr, "1mcp init --import: %s: %s\n", file.c_str(),
                 imported.error().message.c_str());
    return 1;
  }
  const std::string path = resolve(dir, config);
  std::string names;
  for (const auto& m : imported->mcps) {
    names += (names.empty() ? "" : ", ") + m["name"].get<std::string>();
    (*doc)["mcps"].push_back(nlohmann::ordered_json(m));
  }
  // Environment values and headers hold tokens and keys: the config is then for its owner only.
  bool secrets = false;
  for (const auto& m : (*doc)["mcps"])
    secrets = secrets || m.contains("env") || m.contains("headers");
  if (!imported->mcps.empty()) {
    if (auto s = cli::write_config_document(path, *doc,
                                            secrets ? std::optional<mode_t>(0600) : std::nullopt);
        !s) {
      std::fprintf(stderr, "1mcp init --import: %s\n", s.error().message.c_str());
      return 1;
    }
  }
  std::fprintf(stderr, "1mcp: imported %zu server(s) from %s into mcps of %s%s%s\n",
               imported->mcps.size(), file.c_str(), path.c_str(), names.empty() ? "" : ": ",
               names.c_str());
  for (const auto& why : imported->skipped)
    std::fprintf(stderr, "1mcp: not imported: %s\n", why.c_str());
  if (secrets && !imported->mcps.empty()) {
    std::fprintf(
        stderr,
        "1mcp: %s holds environment values or headers of upstream servers: its mode is now 0600\n",
        path.c_str());
  }
  return 0;
}

int cmd_init(const std::string& dir, const std::string& config,
             const std::vector<std::string>& import) {
  std::string path = resolve(dir, config);
  if (!import.empty() && !cli::import_client_known(import[0])) {
    std::fprintf(stderr,
                 "1mcp init --import: unknown client \"%s\" (claude-desktop, claude-code, cursor "
                 "or vscode)\n",
                 import[0].c_str());
    return 2;
  }
  // Servers are imported into an existing config as well as into a new one.
  if (!import.empty() && !cli::config_missing(path))
    return import_servers(dir, config, import[0], import.size() > 1 ? import[1] : "");
  if (!dir.empty()) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) {
      std::fprintf(stderr, "1mcp init: cannot create %s: %s\n", dir.c_str(), ec.message().c_str());
      return 1;
    }
  }
  if (auto s = policy::write_default_config(path); !s) {
    std::fprintf(stderr, "1mcp init: %s\n", s.error().message.c_str());
    return 1;
  }
  // The default config's "$schema" points at this file, so editors can validate it.
  std::string schema = (fs::path(path).parent_path() / policy::kConfigSchemaFileName).string();
  if (auto s = policy::write_config_schema(schema); !s) {
    std::fprintf(stderr, "1mcp init: %s\n", s.error().message.c_str());
  }
  std::fprintf(stderr, "1mcp: wrote %s\n", path.c_str());
  // The capsule signing key, relative to the project directory; an existing key is kept.
  std::string key_dir = resolve(cli::project_dir(dir, config), policy::Config{}.signing_key_path);
  auto key = capsule::signing_key_load_or_create(key_dir);
  if (!key) {
    std::fprintf(stderr, "1mcp init: %s\n", key.error().message.c_str());
    return 1;
  }
  std::fprintf(stderr, "1mcp: %s capsule signing key %s (public key %s)\n",
               key->created ? "generated the" : "kept the existing",
               (fs::path(key_dir) / capsule::kSecretKeyFile).c_str(),
               capsule::public_key_hex(key->key.public_key()).c_str());
  if (!import.empty())
    return import_servers(dir, config, import[0], import.size() > 1 ? import[1] : "");
  return 0;
}

// Verifies one capsule, given by id (looked up in the configured cacheDir) or by directory, with
// the project's public key. Exit 0 when every check passed, 1 when one failed, 2 on bad setup.
int cmd_capsule_verify(const std::string& dir, const std::string& config,
                       const std::string& target) {
  auto cfg = cli::load_project_config(dir, config);
  if (!cfg) {
    std::fprintf(stderr, "1mcp capsule verify: %s\n", cfg.error().message.c_str());
    return 2;
  }
  const std::string project = cli::project_dir(dir, config);
  std::string key_dir = resolve(project, cfg->signing_key_path);
  auto key = capsule::public_key_load(key_dir);
  if (!key) {
    std::fprintf(stderr, "1mcp capsule verify: %s\n", key.error().message.c_str());
    return 2;
  }
  fs::path path = capsule::is_capsule_hash(target)
                      ? fs::path(resolve(project, cfg->cache_dir)) / target
                      : fs::path(target);
  if (!path.has_filename()) path = path.parent_path();  // "…/<id>/"
  std::string name = path.filename().string();
  std::string expected = capsule::is_capsule_hash(name) ? name : "";
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) {
    std::fprintf(stderr, "1mcp capsule verify: %s: %s%s\n", path.c_str(), std::strerror(errno),
                 expected.empty() ? " (a capsule id is 64 lowercase hex digits)" : "");
    return 1;
  }
  auto c = capsule::verify_capsule_dir(fd.get(), expected, *key, capsule::StoreLimits{});
  if (!c) {
    std::fprintf(stderr, "1mcp capsule verify: %s: FAILED: %s\n", path.c_str(),
                 c.error().message.c_str());
    return 1;
  }
  const capsule::Manifest& m = c->manifest;
  std::printf("capsule %s\n", path.c_str());
  std::printf("  manifest.json  %zu bytes: version %d, language %s, runtime %s %s, created %s\n",
              c->manifest_json.size(), m.version, m.language.c_str(), m.runtime.id.c_str(),
              m.runtime.version.c_str(), m.created_at.c_str());
  std::printf("  id             %s: %s\n", c->hash.c_str(),
              expected.empty() ? "computed (the directory name is not an id, so not compared)"
                               : "SHA-256 of the canonical manifest matches the directory name");
  std::printf("  signature      ed25519, valid for this id, by the project key %s (%s)\n",
              capsule::public_key_hex(*key).c_str(),
              (fs::path(key_dir) / capsule::kPublicKeyFile).c_str());
  for (const auto& l : m.layers) {
    std::printf("  layer          %s (%s, %s): %llu bytes, SHA-256 matches\n", l.name.c_str(),
                l.kind.c_str(), l.file.c_str(), static_cast<unsigned long long>(l.size));
  }
  std::printf("OK\n");
  return 0;
}

// `1mcp doctor`: every kernel feature the sandbox needs, tried on this host; exit 1 when one is
// missing.
int cmd_doctor() {
  const doctor::HostFacts facts = doctor::probe_host();
  const auto findings = doctor::judge(facts);
  std::fputs(doctor::render(facts, findings).c_str(), stdout);
  return doctor::any_missing(findings) ? 1 : 0;
}

// Said wherever `serve` refuses to start for want of a kernel feature.
constexpr const char* kSeeDoctor =
    "`1mcp doctor` checks every kernel feature the sandbox needs and says what to change on this "
    "host.";

// SIGHUP: re-reads the config. A running server takes the policy's network rules and limits and
// the session TTL from it; the rest was fixed at start (mounts and writable roots of the runtimes,
// upstream servers, ...) and waits for a restart. An invalid file changes nothing.
void reload_config(const std::string& path, server::McpServer& mcp, policy::Config& running,
                   server::HttpAuth* auth) {
  auto next = policy::load_config(path);
  if (!next) return log::error("config not reloaded, keeping the old one: " + next.error().message);
  policy::Config merged = running;
  merged.policy.network = next->policy.network;
  merged.policy.limits = next->policy.limits;
  merged.session_ttl_ms = next->session_ttl_ms;
  policy::Config rest = *next;
  if (auth) {  // revoked and new static tokens apply at once
    merged.auth.tokens = next->auth.tokens;
    auth->set_tokens(next->auth.tokens);
    rest.auth.tokens = running.auth.tokens;
  }
  rest.policy.network = running.policy.network;
  rest.policy.limits = running.policy.limits;
  rest.session_ttl_ms = running.session_ttl_ms;
  if (rest != running) {
    log::warn(path +
              ": only policy.network, policy.limits, sessionTtlMs and auth.tokens (when "
              "authentication is on) change at once; the rest takes effect after a restart");
  }
  running = merged;
  mcp.set_config(merged);
  mcp.notify_tools_changed();  // the tool descriptions show the limits
  log::info("config reloaded from " + path);
}

// The npm dependency cache of run_js: <cacheDir>/npm, npm found on PATH. Config errors stop the
// server; a missing npm only makes calls that need packages fail (and is logged).
Status setup_npm(const policy::Config& config, const std::string& dir, const std::string& esbuild,
                 std::shared_ptr<deps::NpmCache>* cache, server::NpmSetup* setup) {
  const nlohmann::json& section = config.npm;
  setup->config_dependencies = section.value("dependencies", deps::Dependencies{});
  if (auto s = deps::validate_dependencies(setup->config_dependencies); !s) return s.error();
  deps::NpmOptions o;
  o.cache_dir =
      fs::absolute(fs::path(resolve(dir, config.cache_dir)) / "npm").lexically_normal().string();
  o.esbuild = esbuild;
  o.registry = section.value("registry", std::string{});
  if (std::string lock = section.value("lockfile", std::string{}); !lock.empty()) {
    std::string path = resolve(dir, lock);
    std::ifstream in(path);
    std::stringstream text;
    if (in.is_open()) text << in.rdbuf();
    if (!in.is_open() || text.str().empty()) return make_error("npm.lockfile: cannot read " + path);
    o.lockfile = text.str();
    o.locked = setup->config_dependencies;
  }
  for (const char* var : {"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy",
                          "no_proxy", "NPM_CONFIG_USERCONFIG", "npm_config_userconfig"}) {
    if (const char* v = std::getenv(var)) o.extra_env.push_back(std::string(var) + "=" + v);
  }
  const char* npm_env = std::getenv("ONEMCP_NPM");
  const char* path_env = std::getenv("PATH");
  o.npm = npm_env ? npm_env : deps::find_in_path("npm", path_env ? path_env : "/usr/bin:/bin");
  if (o.npm.empty()) {
    setup->unavailable =
        "npm dependencies are not available on this server: npm was not found on PATH";
    if (!setup->config_dependencies.empty()) log::warn(setup->unavailable);
    return {};
  }
  *cache = std::make_shared<deps::NpmCache>(std::move(o));
  setup->cache = cache->get();
  return {};
}

// The pip dependency cache of run_py: <cacheDir>/pip, installed with the pip of the interpreter
// the runs embed (Debian's python3.11). Config errors stop the server; a missing interpreter or
// an unusable cache directory only makes calls that need packages fail (and is logged).
Status setup_pip(const policy::Config& config, const std::string& dir,
                 std::shared_ptr<deps::PipCache>* cache, server::PipSetup* setup,
                 std::string* pip_root) {
  const nlohmann::json& section = config.pip;
  setup->config_set.requirements = section.value("requirements", std::vector<std::string>{});
  setup->config_set.wheel_urls = section.value("wheelUrls", std::vector<std::string>{});
  if (auto s = deps::validate_pip(setup->config_set); !s) return s.error();
  deps::PipOptions o;
  o.cache_dir =
      fs::absolute(fs::path(resolve(dir, config.cache_dir)) / "pip").lexically_normal().string();
  o.index_url = section.value("indexUrl", std::string{});
  for (const char* var : {"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy",
                          "no_proxy"}) {
    if (const char* v = std::getenv(var)) o.extra_env.push_back(std::string(var) + "=" + v);
  }
  const char* python_env = std::getenv("ONEMCP_PIP_PYTHON");
  o.python = python_env ? python_env : ONEMCP_PYTHON_EXECUTABLE;
  std::error_code ec;
  if (::access(o.python.c_str(), X_OK) != 0) {
    setup->unavailable = "pip dependencies are not available on this server: " + o.python +
                         " was not found";
  } else if (fs::create_directories(o.cache_dir, ec); ec) {
    setup->unavailable = "pip dependencies are not available on this server: cannot create " +
                         o.cache_dir + ": " + ec.message();
  } else {
    // Searchable by the sandbox's unprivileged uid, which reaches a run's set through it.
    fs::permissions(o.cache_dir, fs::perms(0755), ec);
    *pip_root = o.cache_dir;
    *cache = std::make_shared<deps::PipCache>(std::move(o));
    setup->cache = cache->get();
    return {};
  }
  if (!setup->config_set.empty()) log::warn(setup->unavailable);
  return {};
}

// The directories of the dependency sets gc trims (deps/retention.h).
std::vector<deps::DepsRoot> dependency_roots(const deps::NpmCache* npm, const deps::PipCache* pip) {
  std::vector<deps::DepsRoot> roots;
  if (npm) roots.push_back({npm->options().cache_dir, ".npm-cache"});
  if (pip) roots.push_back({pip->options().cache_dir, ".cache"});
  return roots;
}

// The capsule cache every run executes from: the signing key of signingKeyPath (created when
// missing, as `1mcp init` does) and cacheDir, which must be writable. Fails with the reason.
Result<std::unique_ptr<capsule::CapsuleStore>> open_capsule_store(const policy::Config& config,
                                                                  const std::string& dir) {
  const std::string key_dir = resolve(dir, config.signing_key_path);
  auto key = capsule::signing_key_load_or_create(key_dir);
  if (!key) return make_error("capsule signing key: " + key.error().message);
  if (key->created) {
    log::info("generated the capsule signing key " +
              (fs::path(key_dir) / capsule::kSecretKeyFile).string() + " (public key " +
              capsule::public_key_hex(key->key.public_key()) + ")");
  }
  capsule::StoreOptions so;
  so.dir = fs::absolute(resolve(dir, config.cache_dir)).lexically_normal().string();
  // A run's new capsule costs no fsync (milliseconds on a busy disk): every read verifies, so a
  // capsule a crash tore is detected and stored again.
  so.sync = false;
  auto store = capsule::CapsuleStore::create(std::move(so), std::move(key->key));
  if (!store) return make_error("capsule cache: " + store.error().message);
  if (auto s = (*store)->check_writable(); !s) return make_error("capsule cache: " + s.error().message);
  return store;
}

// Builds one of the config's own dependency sets (npm's, pip's) in the background at start, with
// its progress in the log, so the first call that needs it does not wait. `build` holds what it
// needs (the cache) alive; a build still running at shutdown is left to finish with the process.
class Prebuild {
 public:
  // Prepares the set; says what it holds ("2 package(s)").
  using Build = std::function<Result<std::string>(const deps::BuildProgress&)>;
  Prebuild(std::string what, Build build) : done_(std::make_shared<std::atomic<bool>>(false)) {
    thread_ = std::thread([what = std::move(what), build = std::move(build), done = done_] {
      auto t0 = std::chrono::steady_clock::now();
      auto s = build([&what](double, const std::string& message) {
        log::info("config " + what + " dependencies: " + message);
      });
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::steady_clock::now() - t0)
                    .count();
      if (s) {
        log::info("config " + what + " dependencies ready (" + *s + ", " + std::to_string(ms) +
                  " ms)");
      } else {
        log::warn("config " + what + " dependencies could not be prepared: " + s.error().message);
      }
      *done = true;
    });
  }
  ~Prebuild() {
    if (*done_) {
      thread_.join();
    } else {
      thread_.detach();
    }
  }
  Prebuild(const Prebuild&) = delete;
  Prebuild& operator=(const Prebuild&) = delete;

 private:
  std::shared_ptr<std::atomic<bool>> done_;
  std::thread thread_;
};

// An address literal in 127.0.0.0/8 or ::1, or "localhost". A name that merely starts with
// "127." may resolve anywhere.
bool is_loopback_bind(const std::string& bind) {
  if (bind == "localhost") return true;
  in_addr v4{};
  if (::inet_pton(AF_INET, bind.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  return ::inet_pton(AF_INET6, bind.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

// Graceful shutdown after SIGTERM/SIGINT: new calls are refused, calls in flight get `grace` to
// finish, and what still runs then is cancelled and answered with a shutting-down error.
void drain(server::McpServer& mcp, int sig, std::chrono::milliseconds grace) {
  log::info(std::string("received ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") +
            ", shutting down: letting calls in flight finish for up to " +
            std::to_string(grace.count()) + " ms");
  mcp.begin_shutdown();
  if (!mcp.wait_calls(grace)) {
    log::warn("calls still running after the shutdown grace period: cancelling them");
    mcp.abort_calls();
    if (!mcp.wait_calls(std::chrono::seconds(5))) log::error("some calls did not end after cancel");
  }
  mcp.close_streams();
}

struct ServeFlags {
  std::string config = cli::kDefaultConfigName;
  bool config_given = false;  // -c on the command line
  std::string dir;
  uint16_t port = 7800;
  std::string bind = "127.0.0.1";
  bool no_ui = false;
  bool open = false;
  bool stdio = false;
  bool verbose = false;
  std::string log_format = "text";  // or "json": one JSON object per line
  bool insecure_no_sandbox = false;
  bool profile_runs = false;
  std::vector<std::string> resolve;
  std::string ca_file;
  std::string replica;  // this server's name among replicas behind one load balancer
};

// Open files beyond the usual soft limit of 1024: every connection, run (pipes, sockets,
// memfds) and cgroup scope (its control files stay open, see sandbox/cgroup.h) takes some. The
// server waits with poll and epoll only, never select(), so the hard limit is safe to use.
void raise_open_file_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)::setrlimit(RLIMIT_NOFILE, &rl);
  }
}

int cmd_serve(const ServeFlags& f) {
  auto t0 = std::chrono::steady_clock::now();
  raise_open_file_limit();
  if (f.verbose) log::set_level(log::Level::debug);
  if (f.log_format == "json") log::set_format(log::Format::json);
  if (!f.replica.empty() && !server::is_replica_name(f.replica)) {
    std::fprintf(stderr,
                 "1mcp serve: --replica '%s': a replica's name is 1 to 63 of a-z, 0-9 and '-', "
                 "not starting with '-'\n",
                 f.replica.c_str());
    return 2;
  }
  if (f.open && (f.no_ui || f.stdio)) {
    std::fprintf(stderr, "1mcp serve: --open opens the web page, which %s; leave out one of them\n",
                 f.no_ui ? "--no-ui turns off" : "--stdio does not serve");
    return 2;
  }
  // A desktop client starts `1mcp serve --stdio` wherever it likes (often in /): without a
  // config there, the built-in defaults, with their state (signing key, caches) in --dir or the
  // user's state directory. Over HTTP, and for a config named with -c, the file is required.
  std::string dir = cli::project_dir(f.dir, f.config);
  const std::string config_path = resolve(f.dir, f.config);
  const bool defaults = f.stdio && !f.config_given && cli::config_missing(config_path);
  if (defaults && dir.empty()) {
    auto state = cli::default_state_dir();
    if (!state) {
      std::fprintf(stderr, "1mcp serve: no %s here, and %s; create a config with `%s`\n",
                   config_path.c_str(), state.error().message.c_str(),
                   cli::init_command(f.dir, f.config).c_str());
      return 2;
    }
    dir = *state;
  }
  auto config = defaults ? Result<policy::Config>(cli::default_config())
                         : cli::load_project_config(f.dir, f.config);
  if (!config) {
    std::fprintf(stderr, "1mcp serve: %s\n", config.error().message.c_str());
    return 2;
  }
  if (defaults) {
    log::info("no " + fs::absolute(config_path).lexically_normal().string() +
              ": running on the built-in defaults, state in " + dir +
              " (`1mcp init` writes a config to change them; pass it with --config)");
  }
  const bool loopback = is_loopback_bind(f.bind);
  if (!f.stdio && !loopback && !config->auth.enabled()) {
    std::fprintf(stderr,
                 "1mcp serve: refusing to listen on %s without authentication: anyone who can "
                 "connect could run code here.\nCreate a token with `1mcp token create` (clients "
                 "then send \"Authorization: Bearer <token>\"), or configure auth.oauth in %s; or "
                 "bind to 127.0.0.1.\n",
                 f.bind.c_str(), config_path.c_str());
    return 2;
  }
  cli::ServeAuth serve_auth;  // outlives the server, which checks every HTTP request with it
  if (!f.stdio) {
    auto a = cli::setup_serve_auth(*config, dir);
    if (!a) {
      std::fprintf(stderr, "1mcp serve: %s\n", a.error().message.c_str());
      return 2;
    }
    serve_auth = std::move(*a);
  }

  // Signals are handled by one thread with sigwait; block them before any thread exists.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  server::WorkerPaths paths = locate_workers();
  log::info("workers " + paths.js_worker + ", " + paths.py_worker + "; esbuild " + paths.esbuild);
  paths.sandbox = !f.insecure_no_sandbox;
  paths.profile_runs = f.profile_runs;
  paths.writable_roots = config->policy.filesystem.writable;
  paths.python_preload = config->python.preload;
  for (const auto& m : config->mounts) {
    // Relative host paths are not accepted by the schema; the project dir anchors nothing here.
    paths.mounts.push_back({m.host, m.path, m.mode == "rw"});
  }
  if (!paths.sandbox) {
    log::warn("*** --insecure-no-sandbox: runs are NOT isolated by the kernel (no namespaces, no "
              "seccomp, no read-only root). Untrusted code can read and change this machine. "
              "Development only. ***");
  }
  std::unique_ptr<sandbox::CgroupManager> cgroups;
  if (auto made = sandbox::CgroupManager::create(); made) {
    cgroups = std::move(*made);
  } else if (paths.sandbox) {
    std::fprintf(stderr,
                 "1mcp serve: cgroups are required for per-run memory, process and CPU limits: "
                 "%s\n%s (--insecure-no-sandbox runs without them, for development only.)\n",
                 made.error().message.c_str(), kSeeDoctor);
    return 1;
  }
  if (cgroups && paths.sandbox && (!cgroups->has_memory() || !cgroups->has_pids())) {
    std::fprintf(stderr,
                 "1mcp serve: the memory and pids cgroup controllers are required (%s)\n%s\n",
                 cgroups->describe().c_str(), kSeeDoctor);
    return 1;
  }
  std::shared_ptr<broker::Resolver> resolver;  // shared with the pip prebuild
  if (f.resolve.empty()) {
    resolver = broker::system_resolver();
  } else {
    auto map = server::MapResolver::parse(f.resolve);
    if (!map) {
      std::fprintf(stderr, "1mcp serve: %s\n", map.error().message.c_str());
      return 2;
    }
    resolver = std::move(*map);
    log::warn("--resolve: names resolve from the given table only (" + std::to_string(f.resolve.size()) +
              " entries)");
  }
  // Runs must never reach this server itself: its listen address is refused on every port (for
  // a wildcard bind, the loopback addresses), whatever the network policy says.
  broker::FetchLimits fetch_limits;
  const bool wildcard = f.bind == "0.0.0.0" || f.bind == "::";
  for (const std::string& a : {wildcard ? std::string("127.0.0.1") : f.bind, std::string(wildcard ? "::1" : "")}) {
    if (auto addr = policy::parse_ip_address(a); addr) fetch_limits.denied_addresses.push_back(*addr);
  }
  if (!f.ca_file.empty()) {
    // Checked now: a missing file would otherwise only show as every HTTPS request failing.
    std::ifstream in(f.ca_file);
    std::stringstream pem;
    if (in.is_open()) pem << in.rdbuf();
    if (pem.str().find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
      std::fprintf(stderr, "1mcp serve: --ca-file %s: not a readable PEM file of certificates\n",
                   f.ca_file.c_str());
      return 2;
    }
    fetch_limits.ca_file = fs::absolute(f.ca_file).string();
    log::warn("--ca-file: runs' HTTPS servers are verified against " + fetch_limits.ca_file +
              " only, not the system's CA store");
  }
  // Upstream MCP servers connect in the background while the runtimes start; one that fails is
  // retried with backoff and never holds up the server.
  std::unique_ptr<upstream::Manager> manager;
  std::unique_ptr<server::Upstreams> upstreams;
  // The server to tell when upstream tools change; null while it does not exist. Each upstream
  // whose state changed is also told to clients that asked for log messages.
  struct Announce {
    std::mutex mu;
    server::McpServer* server = nullptr;
    std::map<std::string, std::pair<upstream::State, uint32_t>> last;  // state, restarts
    void set(server::McpServer* s) {
      std::lock_guard lk(mu);
      server = s;
    }
    void log(const std::string& level, const std::string& logger, const nlohmann::json& data) {
      std::lock_guard lk(mu);
      if (server) server->log_event(level, logger, data);
    }
    // After the lists are in place (`list_changed`: the tools clients see changed).
    void upstreams_changed(bool list_changed, const std::vector<upstream::UpstreamStatus>& now) {
      std::lock_guard lk(mu);
      if (!server) return;
      if (list_changed) server->notify_tools_changed();
      for (const auto& u : now) {
        if (u.state == upstream::State::kConnecting) continue;  // on its way to ready or backoff
        auto& [state, restarts] = last[u.name];
        if (state == u.state && restarts == u.restarts) continue;
        state = u.state;
        restarts = u.restarts;
        nlohmann::json data{{"upstream", u.name},
                            {"state", upstream::state_name(u.state)},
                            {"tools", u.tool_count},
                            {"restarts", u.restarts}};
        if (!u.error.empty()) data["error"] = u.error;
        server->log_event(u.state == upstream::State::kReady ? "info" : "warning", "upstream",
                          data);
      }
    }
  } announce;
  if (!config->mcps.empty()) {
    upstream::ManagerOptions uo;
    uo.client_version = kVersion;
    uo.stdio_cwd = dir;
    manager = std::make_unique<upstream::Manager>(config->mcps, uo);
    std::set<std::string> exposed;
    for (const auto& u : config->mcps)
      if (u.expose) exposed.insert(u.name);
    upstreams = std::make_unique<server::Upstreams>(*manager, std::move(exposed));
    manager->on_tools_changed([u = upstreams.get(), m = manager.get(), &announce] {
      announce.upstreams_changed(u->refresh(), m->status());
    });
    manager->start();
  }
  // Upstream callbacks use `upstreams`: the manager stops before it goes away.
  struct StopFirst {
    upstream::Manager* m;
    ~StopFirst() {
      if (m) m->stop();
    }
  } stop_upstreams{manager.get()};

  std::shared_ptr<deps::NpmCache> npm_cache;
  server::NpmSetup npm;
  if (auto s = setup_npm(*config, dir, paths.esbuild, &npm_cache, &npm); !s) {
    std::fprintf(stderr, "1mcp serve: %s\n", s.error().message.c_str());
    return 2;
  }
  std::shared_ptr<deps::PipCache> pip_cache;
  server::PipSetup pip;
  if (auto s = setup_pip(*config, dir, &pip_cache, &pip, &paths.pip_root); !s) {
    std::fprintf(stderr, "1mcp serve: %s\n", s.error().message.c_str());
    return 2;
  }
  if (upstreams && paths.sandbox) {
    // Runs that may call upstream tools read them as files at /mcps (server/mcps_tree.h).
    // Without the sandbox a run has no mount namespace to show them in.
    const std::string root = fs::absolute(fs::path(resolve(dir, config->cache_dir)) / "mcps")
                                 .lexically_normal()
                                 .string();
    auto trees = server::McpsTrees::open(root);
    if (trees) {
      upstreams->set_trees(std::move(*trees));
      paths.mcps_root = root;
    } else {
      log::warn("runs get no /mcps tree: " + trees.error().message);
    }
  }
  auto store = open_capsule_store(*config, dir);
  if (!store) {
    std::fprintf(stderr, "1mcp serve: every run executes from a signed capsule: %s\n",
                 store.error().message.c_str());
    return 1;
  }
  server::CapsulesOptions copts;
  copts.memory_bytes = config->capsules.memory_bytes;
  copts.max_total_bytes = config->capsules.max_total_bytes;
  copts.max_age = std::chrono::milliseconds(config->capsules.max_age_ms);
  copts.gc_interval = std::chrono::milliseconds(config->capsules.gc_interval_ms);
  copts.also_gc = [roots = dependency_roots(npm_cache.get(), pip_cache.get()),
                   deps = config->deps] {
    deps::DepsGcOptions o;
    o.max_total_bytes = deps.max_total_bytes;
    o.max_age = std::chrono::milliseconds(deps.max_age_ms);
    o.max_download_cache_bytes = deps.download_cache_bytes;
    auto stats = deps::gc_dependency_sets(roots, o);
    if (!stats) return log::warn("dependency cache gc failed: " + stats.error().message);
    if (stats->removed || stats->download_caches_wiped) {
      log::info("dependency cache: removed " + std::to_string(stats->removed) + " set(s), kept " +
                std::to_string(stats->kept) + " (" + std::to_string(stats->bytes_kept) +
                " bytes); wiped " + std::to_string(stats->download_caches_wiped) +
                " download cache(s)");
    }
  };
  server::Capsules capsules(**store, copts);
  auto backend = server::start_worker_backend(paths, cgroups.get(), *resolver, fetch_limits,
                                             capsules, npm, upstreams.get(), pip);
  if (!backend) {
    std::fprintf(stderr,
                 "1mcp serve: cannot start the sandboxed runtimes: %s\n"
                 "1mcp needs user, pid, mount, ipc, uts and net namespaces, seccomp and a "
                 "mountable /proc. %s (--insecure-no-sandbox runs without them, for development "
                 "only.)\n",
                 backend.error().message.c_str(), kSeeDoctor);
    return 1;
  }
  if (paths.sandbox) {
    int ll = sandbox::child::landlock_abi();
    log::info("sandbox active: user, pid, mount, ipc, uts and net namespaces; read-only root; "
              "uid 1000 without capabilities; no_new_privs; seccomp; " +
              (ll > 0 ? "landlock ABI " + std::to_string(ll) : std::string("landlock unavailable")) +
              "; " + cgroups->describe());
  }

  std::optional<Prebuild> npm_prebuild, pip_prebuild;
  if (npm_cache && !npm.config_dependencies.empty()) {
    npm_prebuild.emplace("npm", [cache = npm_cache, set = npm.config_dependencies](
                                    const deps::BuildProgress& progress) -> Result<std::string> {
      auto layer = cache->layer(set, progress);
      if (!layer) return layer.error();
      return std::to_string(set.size()) + " package(s)";
    });
  }
  if (pip_cache && !pip.config_set.empty()) {
    // Wheel URLs are fetched under the server's network policy, as a call's would be.
    pip_prebuild.emplace("pip", [cache = pip_cache, set = pip.config_set,
                                 network = config->policy.network, resolver,
                                 fetch_limits](const deps::BuildProgress& progress) -> Result<std::string> {
      auto fetch = [&](const std::string& url) {
        return server::fetch_wheel(url, network, *resolver, fetch_limits);
      };
      auto lease = cache->prepare(set, fetch, progress);
      if (!lease) return lease.error();
      return std::to_string(set.requirements.size() + set.wheel_urls.size()) + " requirement(s)";
    });
  }

  server::ServerOptions opts;
  opts.version = kVersion;
  opts.capsules = store->get();
  opts.capsule_cache = &capsules;
  opts.ui = !f.no_ui;
  opts.replica = f.replica;
  opts.upstreams = upstreams.get();
  // run_js/run_py descriptions tell of the upstream tools the server policy lets runs call.
  opts.tools = [u = upstreams.get(),
                describe = config->code_mode.describe](const policy::Policy& p) {
    return server::tool_list(p, u ? u->allowed(p) : std::vector<server::CodeModeServer>{},
                             describe);
  };
  const bool wildcard_bind = f.bind == "0.0.0.0" || f.bind == "::";
  opts.hosts.loopback_names = loopback || wildcard_bind;
  if (!wildcard_bind) {  // e.g. 127.0.0.2 or 192.0.2.7: the address clients connect to
    opts.hosts.bind_host = f.bind.find(':') != std::string::npos ? "[" + f.bind + "]" : f.bind;
  }
  opts.hosts.allowed_hosts = config->server.allowed_hosts;
  opts.hosts.allowed_origins = config->server.allowed_origins;
  opts.runs = {config->server.run_slots, config->server.max_runs_per_client,
               config->server.max_queued_runs, config->server.max_queued_runs_per_client};
  opts.max_sessions = config->server.max_sessions;
  opts.auth = serve_auth.http.get();
#ifdef ONEMCP_CONFORMANCE_FIXTURES
  std::unique_ptr<server::McpExtension> fixtures;
  if (const char* v = std::getenv("ONEMCP_CONFORMANCE_FIXTURES"); v && std::string(v) == "1") {
    fixtures = conformance::make_fixtures();
    opts.extension = fixtures.get();
    log::warn(
        "serving the MCP conformance suite's fixture tools, resources and prompts (tests only)");
  }
#endif
  (*backend)->set_event_sink(
      [&announce](const std::string& level, const std::string& logger, const nlohmann::json& data) {
        announce.log(level, logger, data);
      });
  server::McpServer mcp(opts, *config, **backend);
  policy::Config running = *config;
  // Waits for SIGINT or SIGTERM and returns it, reloading the config on every SIGHUP.
  auto wait_for_stop = [&] {
    for (;;) {
      int sig = 0;
      sigwait(&sigs, &sig);
      if (sig != SIGHUP) return sig;
      reload_config(config_path, mcp, running, serve_auth.http.get());
    }
  };
  announce.set(&mcp);
  struct Unannounce {
    Announce& a;
    ~Unannounce() { a.set(nullptr); }
  } unannounce{announce};

  const auto grace = std::chrono::milliseconds(config->server.shutdown_grace_ms);
  auto ready_ms = [&] {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  };

  if (f.stdio) {
    // The stdio transport blocks in a read of stdin, so a signal ends the process from here; the
    // upstream servers are stopped first (stdin closed, SIGTERM, SIGKILL of their process groups,
    // each step bounded by stop_grace), so none outlives the server.
    std::thread([&wait_for_stop, &mcp, m = manager.get(), grace] {
      const int sig = wait_for_stop();
      // Should anything block (a stuck stdout), the process still ends.
      std::thread([grace] {
        std::this_thread::sleep_for(grace + std::chrono::seconds(10));
        std::_Exit(0);
      }).detach();
      drain(mcp, sig, grace);  // every reply is written when this returns
      if (m) m->stop();
      std::_Exit(0);
    }).detach();
    char msg[128];
    std::snprintf(msg, sizeof msg, "1mcp %s ready in %.1f ms on stdio", kVersion, ready_ms());
    log::info(msg);
    int rc = transport::serve_stdio(mcp, 0, 1);
    return rc;
  }

  transport::HttpServerOptions hopts;
  hopts.bind = f.bind;
  hopts.port = f.port;
  hopts.max_connections = config->server.max_connections;
  hopts.max_connections_per_address = config->server.max_connections_per_address;
  hopts.read_timeout = std::chrono::milliseconds(config->server.read_timeout_ms);
  hopts.write_timeout = std::chrono::milliseconds(config->server.write_timeout_ms);
  auto http = transport::HttpServer::start(hopts, mcp);
  if (!http) {
    std::fprintf(stderr, "1mcp serve: %s\n", http.error().message.c_str());
    return 1;
  }
  mcp.set_listen_port((*http)->port());
  std::string host = f.bind.find(':') != std::string::npos ? "[" + f.bind + "]" : f.bind;
  std::string url = "http://" + host + ":" + std::to_string((*http)->port());
  if (opts.auth) {  // before "ready", which tells clients (and tests) that start-up is done
    log::info(
        "authentication on: clients send \"Authorization: Bearer <token>\"; open the web "
        "page as " +
        url + "/?token=<token>" +
        (opts.auth->resource_metadata_url().empty()
             ? std::string()
             : "; OAuth protected resource metadata at " + opts.auth->resource_metadata_url()));
  }
  char msg[256];
  std::snprintf(msg, sizeof msg, "1mcp %s ready in %.1f ms: MCP endpoint %s/mcp%s", kVersion,
                ready_ms(), url.c_str(), opts.ui ? (", UI " + url + "/").c_str() : "");
  log::info(msg);
  if (!loopback) {
    log::warn("listening on " + f.bind +
              ": reachable beyond this machine; every request needs a token");
  }
  if (f.open && opts.ui) open_browser(url + "/");

  int sig = wait_for_stop();
  (*http)->stop_accepting();
  drain(mcp, sig, grace);
  (*http)->wait_idle(std::chrono::seconds(2));  // the last answers leave
  (*http)->stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"1mcp — MCP server that runs JavaScript and Python in a kernel sandbox"};
  app.set_version_flag("--version", kVersion);
  app.require_subcommand(1);
  app.footer(
      "Examples:\n"
      "  1mcp init --dir ~/mcp                    make a project: config and signing key\n"
      "  1mcp serve --dir ~/mcp                   serve it on http://127.0.0.1:7800/mcp\n"
      "  1mcp serve --stdio --config ~/mcp/1mcp.config.json   for a desktop client\n"
      "  1mcp doctor                              check the kernel features the sandbox needs\n"
      "\n"
      "`1mcp <command> --help` tells more about each command. Documentation: README.md "
      "(installed in share/doc/1mcp).");

  std::string init_dir, init_config = cli::kDefaultConfigName;
  auto* init = app.add_subcommand("init", "Write a documented default 1mcp.config.json");
  init->add_option("--dir", init_dir, "Project directory (created if missing)");
  init->add_option("-c,--config", init_config, "Config file path, relative to --dir")
      ->capture_default_str();
  std::vector<std::string> init_import;
  init->add_option(
          "--import", init_import,
          "CLIENT [FILE]: add the MCP servers of claude-desktop, claude-code, cursor or vscode "
          "(FILE, else the client's own file) to mcps, also of an existing config")
      ->expected(1, 2);
  init->footer(
      "Examples:\n"
      "  1mcp init                                1mcp.config.json and .1mcp/keys/ here\n"
      "  1mcp init --dir /srv/mcp                 in /srv/mcp (created if missing)\n"
      "  1mcp init --import cursor                add the servers of ./.cursor/mcp.json (or\n"
      "                                           ~/.cursor/mcp.json) to mcps\n"
      "An existing config or key is never overwritten; --import adds servers to an existing\n"
      "config.");

  std::string cap_dir, cap_config = cli::kDefaultConfigName, cap_target;
  auto* cap = app.add_subcommand("capsule", "Work with stored capsules");
  cap->require_subcommand(1);
  auto* verify = cap->add_subcommand("verify", "Verify a capsule's id, signature and layers");
  verify
      ->add_option("capsule", cap_target,
                   "Capsule id (in the configured cacheDir) or capsule directory")
      ->required();
  verify->add_option("--dir", cap_dir, "Project directory holding the config");
  verify->add_option("-c,--config", cap_config, "Config file path, relative to --dir")
      ->capture_default_str();
  verify->footer(
      "Examples:\n"
      "  1mcp capsule verify 3f0c...e9 --dir ~/mcp   by the id a run result names (capsule)\n"
      "  1mcp capsule verify ~/mcp/.1mcp/capsules/3f0c...e9\n"
      "Exit status: 0 valid, 1 invalid, 2 no config or key.");

  std::string token_dir, token_config = cli::kDefaultConfigName, token_name;
  auto* token = app.add_subcommand("token", "Manage the static bearer tokens of auth.tokens");
  token->require_subcommand(1);
  auto* token_create = token->add_subcommand(
      "create", "Make a new token: printed once on stdout, its SHA-256 added to the config");
  token_create->add_option("--name", token_name, "Name of the token (default: token-N)");
  auto* token_list = token->add_subcommand("list", "List the tokens' names");
  auto* token_revoke = token->add_subcommand("revoke", "Remove a token from the config");
  token_revoke->add_option("name", token_name, "Name of the token")->required();
  for (auto* sub : {token_create, token_list, token_revoke}) {
    sub->add_option("--dir", token_dir, "Project directory holding the config");
    sub->add_option("-c,--config", token_config, "Config file path, relative to --dir")
        ->capture_default_str();
  }
  token->footer(
      "Examples:\n"
      "  1mcp token create --name ci --dir ~/mcp  prints the token once; clients send\n"
      "                                           Authorization: Bearer <token>\n"
      "  1mcp token list --dir ~/mcp\n"
      "  1mcp token revoke ci --dir ~/mcp         then `kill -HUP` the server to apply it");

  auto* doctor = app.add_subcommand(
      "doctor",
      "Check the kernel features the sandbox needs, and say what to change if one is missing");
  doctor->footer(
      "Example:\n"
      "  sudo 1mcp doctor                         one line per feature: OK, WARN or MISSING\n"
      "Exit status: 0 when serve can run, 1 when a feature is missing.");

  ServeFlags sf;
  auto* serve = app.add_subcommand("serve", "Run the MCP server");
  serve->footer(
      "Examples:\n"
      "  1mcp serve --dir ~/mcp                   HTTP on 127.0.0.1:7800 (POST /mcp)\n"
      "  1mcp serve --stdio --config ~/mcp/1mcp.config.json\n"
      "                                           MCP over stdin/stdout, for a desktop client\n"
      "  1mcp serve --dir ~/mcp --bind 0.0.0.0 -p 8080   beyond this machine (needs auth: see\n"
      "                                           `1mcp token --help`)\n"
      "  1mcp serve --dir ~/mcp --replica r1 -p 7801     one of several behind nginx\n"
      "SIGHUP re-reads the config; SIGTERM drains calls in flight, then exits.");
  auto* serve_config =
      serve->add_option("-c,--config", sf.config, "Config file path, relative to --dir")
          ->capture_default_str();
  serve->add_option("-p,--port", sf.port, "HTTP port (0 picks a free one)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  serve->add_option("--bind", sf.bind, "Address to listen on, used exactly as given")->capture_default_str();
  serve->add_option("--dir", sf.dir, "Project directory holding the config");
  serve->add_flag("--no-ui", sf.no_ui, "Headless: GET / answers a JSON status instead of the web UI");
  serve->add_flag("--open", sf.open, "Open the web UI in a browser");
  serve->add_flag("--stdio", sf.stdio, "Speak MCP over stdin/stdout instead of HTTP");
  serve->add_flag("-v,--verbose", sf.verbose, "Debug logging");
  serve
      ->add_option("--log-format", sf.log_format,
                   "text (UTC ISO 8601 timestamps) or json (one object per line: ts, level, "
                   "msg and the line's fields)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  serve->add_option("--resolve", sf.resolve,
                    "NAME=ADDR[,ADDR] answers names of runs' requests from this table only "
                    "(\"*.example.test\" matches subdomains); for tests and local development");
  serve->add_option("--ca-file", sf.ca_file,
                    "PEM file of the CA certificates runs' HTTPS servers are verified against, "
                    "instead of the system store; for tests and private CAs");
  serve->add_option("--replica", sf.replica,
                    "This server's name among replicas behind one load balancer: it leads the "
                    "MCP session ids and session handles it makes, so the balancer routes them "
                    "(README, Scale-out)");
  serve->add_flag("--insecure-no-sandbox", sf.insecure_no_sandbox,
                  "Development only: run code without the kernel sandbox (loudly logged)");
  serve->add_flag("--profile-runs", sf.profile_runs,
                  "Every run result carries when each step of the run ended and its page faults "
                  "(_meta \"io.1mcp/steps\"), for bench/steps.mjs");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // The deepest command given; where it has commands of its own and none was given (or an
    // unknown one), list them.
    const CLI::App* where = &app;
    while (!where->get_subcommands().empty()) where = where->get_subcommands().front();
    const bool has_commands = !where->get_subcommands([](const CLI::App*) { return true; }).empty();
    if (has_commands && (dynamic_cast<const CLI::RequiredError*>(&e) ||
                         dynamic_cast<const CLI::ExtrasError*>(&e))) {
      return command_usage(*where, where->remaining());
    }
    return app.exit(e);
  }
  if (*init) return cmd_init(init_dir, init_config, init_import);
  if (*doctor) return cmd_doctor();
  if (*cap) return cmd_capsule_verify(cap_dir, cap_config, cap_target);
  if (*token) {
    if (*token_create) return cli::token_create(token_dir, token_config, token_name);
    if (*token_list) return cli::token_list(token_dir, token_config);
    return cli::token_revoke(token_dir, token_config, token_name);
  }
  sf.config_given = serve_config->count() > 0;
  return cmd_serve(sf);
}
