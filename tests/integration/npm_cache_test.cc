// Integration tests of deps::NpmCache: real npm and esbuild against the loopback fixture
// registry of tests/fixtures/npm (never the public registry), and the built layer run in the
// real JS worker.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "deps/imports.h"
#include "deps/npm.h"
#include "deps/process.h"
#include "deps/retention.h"
#include "node_fixture.h"
#include "sandbox/executor.h"

extern char** environ;

namespace onemcp::deps {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// `node tests/fixtures/npm/registry.mjs`: a registry of the fixture packages.
class FixtureRegistry {
 public:
  FixtureRegistry() {
    const std::string& line = node_.first_line();
    size_t a = line.find("http://"), b = line.rfind('"');
    if (a != std::string::npos && b != std::string::npos && b > a) url_ = line.substr(a, b - a);
  }
  const std::string& url() const { return url_; }

 private:
  testing::NodeFixture node_{"tests/fixtures/npm/registry.mjs"};
  std::string url_;
};

class NpmCacheTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    registry_ = new FixtureRegistry();
    ASSERT_FALSE(registry_->url().empty()) << "the fixture registry did not start";
    npm_ = find_in_path("npm", std::getenv("PATH") ? std::getenv("PATH") : "/usr/bin:/bin");
    ASSERT_FALSE(npm_.empty()) << "npm not found on PATH";
  }
  static void TearDownTestSuite() {
    delete registry_;
    registry_ = nullptr;
  }

  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("1mcp-npm-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  NpmOptions options() {
    NpmOptions o;
    o.cache_dir = (dir_ / "npm").string();
    o.npm = npm_;
    o.esbuild = ONEMCP_ESBUILD;
    o.registry = registry_->url();
    return o;
  }

  // Entries of the cache directory other than npm's own cache.
  std::vector<std::string> cache_entries() {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir_ / "npm", ec)) {
      std::string n = e.path().filename().string();
      if (n != ".npm-cache" && n != kDownloadLock) names.push_back(n);
    }
    return names;
  }

  static FixtureRegistry* registry_;
  static std::string npm_;
  fs::path dir_;
};

FixtureRegistry* NpmCacheTest::registry_ = nullptr;
std::string NpmCacheTest::npm_;

const Dependencies kSet = {{"onemcp-fixture-pad", "^1.0.0"},
                           {"onemcp-fixture-esm", "*"},
                           {"onemcp-fixture-user", "latest"}};

TEST_F(NpmCacheTest, BuildsOnceThenReusesFromMemoryAndDisk) {
  NpmCache cache(options());
  auto t0 = Clock::now();
  auto layer = cache.layer(kSet);
  double first = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  ASSERT_TRUE(layer.ok()) << layer.error().message;
  EXPECT_EQ(cache.installs(), 1u);
  EXPECT_EQ((*layer)->modules,
            (std::set<std::string>{"onemcp-fixture-esm", "onemcp-fixture-esm/extra",
                                   "onemcp-fixture-pad", "onemcp-fixture-user"}));
  EXPECT_EQ((*layer)->versions.at("onemcp-fixture-pad"), "1.2.3");
  EXPECT_NE(
      (*layer)->code.find("__onemcp_commonjs = [\"onemcp-fixture-pad\",\"onemcp-fixture-user\"]"),
      std::string::npos);
  // Only the result is left: <key>/ with deps.js, manifest.json, package.json, package-lock.json.
  EXPECT_EQ(cache_entries(), std::vector<std::string>{(*layer)->key});
  for (const char* f : {"deps.js", "manifest.json", "package.json", "package-lock.json"}) {
    EXPECT_TRUE(fs::exists(dir_ / "npm" / (*layer)->key / f)) << f;
  }

  t0 = Clock::now();
  auto again = cache.layer(kSet);
  double hit = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->get(), layer->get());  // the same object: from memory
  EXPECT_EQ(cache.installs(), 1u);

  NpmCache restarted(options());  // a new server process: from the cache directory
  auto from_disk = restarted.layer(kSet);
  ASSERT_TRUE(from_disk.ok()) << from_disk.error().message;
  EXPECT_EQ(restarted.installs(), 0u);
  EXPECT_EQ((*from_disk)->code, (*layer)->code);
  std::printf("[ timing ] first build %.0f ms, memory hit %.3f ms\n", first, hit);
}

// Retention: a layer kept in memory is not returned once gc removed its set; it is built again,
// with npm's download cache (warm) or after gc wiped it (cold).
TEST_F(NpmCacheTest, GcRemovesUnusedSetsAndMemoryDoesNotOutliveThem) {
  NpmOptions o = options();
  o.touch_interval = std::chrono::milliseconds(0);  // every hit checks the directory
  NpmCache cache(o);
  auto layer = cache.layer(kSet);
  ASSERT_TRUE(layer.ok()) << layer.error().message;
  const fs::path set = dir_ / "npm" / (*layer)->key;
  const std::vector<DepsRoot> roots{{o.cache_dir, ".npm-cache"}};
  // Used just now: kept even over any budget.
  DepsGcOptions gc;
  gc.max_total_bytes = 0;
  auto kept = gc_dependency_sets(roots, gc);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->removed, 0u);
  EXPECT_TRUE(fs::exists(set / "deps.js"));

  auto remove_and_rebuild = [&](uint64_t download_budget) {
    fs::last_write_time(set, fs::file_time_type::clock::now() - std::chrono::hours(2));
    DepsGcOptions old;
    old.max_age = std::chrono::hours(1);
    old.max_download_cache_bytes = download_budget;
    auto removed = gc_dependency_sets(roots, old);
    EXPECT_TRUE(removed.ok());
    EXPECT_EQ(removed->removed, 1u);
    EXPECT_EQ(cache_entries(), std::vector<std::string>{}) << "no set, no lock, no .gc-* left";
    auto t0 = Clock::now();
    auto again = cache.layer(kSet);
    double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    EXPECT_TRUE(again.ok()) << again.error().message;
    EXPECT_NE(again->get(), layer->get()) << "not the removed set from memory";
    EXPECT_EQ((*again)->code, (*layer)->code);
    EXPECT_TRUE(fs::exists(set / "deps.js"));
    return std::pair{ms, removed->download_caches_wiped};
  };
  auto [warm_ms, kept_downloads] = remove_and_rebuild(1u << 30);
  EXPECT_EQ(kept_downloads, 0u);
  EXPECT_EQ(cache.installs(), 2u);
  auto [cold_ms, wiped] = remove_and_rebuild(0);  // no install runs: the download cache goes
  EXPECT_EQ(wiped, 1u);
  EXPECT_EQ(cache.installs(), 3u);
  std::printf("[ timing ] set %llu bytes; rebuilt with npm's download cache %.0f ms, after it was "
              "wiped %.0f ms\n",
              static_cast<unsigned long long>(kept->bytes_kept), warm_ms, cold_ms);
}

TEST_F(NpmCacheTest, ConcurrentRequestsForOneSetBuildOnce) {
  NpmCache cache(options());
  std::vector<std::thread> threads;
  std::vector<std::string> keys(4);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      auto l = cache.layer({{"onemcp-fixture-pad", "1.x"}});
      keys[i] = l.ok() ? (*l)->key : "error: " + l.error().message;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(cache.installs(), 1u);
  for (const auto& k : keys) EXPECT_EQ(k, keys[0]);
  EXPECT_EQ(keys[0].size(), 64u) << keys[0];
}

TEST_F(NpmCacheTest, MissingPackageIsAClearErrorAndLeavesNothing) {
  NpmCache cache(options());
  auto l = cache.layer({{"onemcp-no-such-package", "^1.0.0"}});
  ASSERT_FALSE(l.ok());
  EXPECT_NE(l.error().message.find("npm install failed (exit code 1):"), std::string::npos)
      << l.error().message;
  EXPECT_NE(l.error().message.find("404 Not Found"), std::string::npos) << l.error().message;
  EXPECT_EQ(cache_entries(), std::vector<std::string>{});
  // Not cached: asking again runs npm again.
  EXPECT_FALSE(cache.layer({{"onemcp-no-such-package", "^1.0.0"}}).ok());
  EXPECT_EQ(cache.installs(), 2u);
}

TEST_F(NpmCacheTest, PackagesReachingOutsideTheRegistryAreRefused) {
  // onemcp-fixture-evil depends on "file:/etc": npm would link node_modules/host-files to /etc.
  NpmCache cache(options());
  auto l = cache.layer({{"onemcp-fixture-evil", "1.0.0"}});
  ASSERT_FALSE(l.ok());
  EXPECT_NE(l.error().message.find("does not come from the registry"), std::string::npos)
      << l.error().message;
  EXPECT_EQ(cache_entries(), std::vector<std::string>{});
}

TEST_F(NpmCacheTest, InvalidSpecsNeverReachNpm) {
  NpmCache cache(options());
  for (const Dependencies& d : std::vector<Dependencies>{{{"x", "file:../../etc"}},
                                                         {{"x", "git+https://example.com/r.git"}},
                                                         {{"../evil", "1"}},
                                                         {{"x", "http://127.0.0.1:1/x.tgz"}}}) {
    auto l = cache.layer(d);
    ASSERT_FALSE(l.ok());
    EXPECT_EQ(l.error().message.rfind("npm.dependencies: ", 0), 0u) << l.error().message;
  }
  EXPECT_EQ(cache.installs(), 0u);
}

TEST_F(NpmCacheTest, InstallTimeoutKillsNpm) {
  NpmOptions o = options();
  o.install_timeout_ms = 2000;
  NpmCache cache(o);
  auto t0 = Clock::now();
  auto l = cache.layer({{"onemcp-fixture-hang", "1"}});  // the registry never answers for it
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  ASSERT_FALSE(l.ok());
  EXPECT_NE(l.error().message.find("npm install did not finish within 2000 ms"), std::string::npos)
      << l.error().message;
  EXPECT_LT(ms, 8000);
  EXPECT_EQ(cache_entries(), std::vector<std::string>{});
}

TEST_F(NpmCacheTest, LockfilePinsTheConfigSet) {
  // A lockfile as npm wrote it for the set, then used by a server whose config pins that set.
  std::string lock;
  {
    NpmCache cache(options());
    auto l = cache.layer(kSet);
    ASSERT_TRUE(l.ok()) << l.error().message;
    std::ifstream in(dir_ / "npm" / (*l)->key / "package-lock.json");
    std::stringstream text;
    text << in.rdbuf();
    lock = text.str();
  }
  ASSERT_NE(lock.find("onemcp-fixture-pad"), std::string::npos);
  fs::remove_all(dir_);
  NpmOptions o = options();
  o.lockfile = lock;
  o.locked = kSet;
  NpmCache cache(o);
  auto pinned = cache.layer(kSet);  // npm ci
  ASSERT_TRUE(pinned.ok()) << pinned.error().message;
  EXPECT_EQ((*pinned)->versions.at("onemcp-fixture-user"), "0.1.0");
  Dependencies more = kSet;
  more["onemcp-fixture-evil"] = "1.0.0";  // npm install from the lockfile: the tree is checked too
  auto refused = cache.layer(more);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("does not come from the registry"), std::string::npos);
  EXPECT_EQ(cache.installs(), 2u);

  // A lockfile that is out of step with the set makes npm ci fail, with npm's reason.
  NpmOptions stale = options();
  stale.lockfile = lock;
  stale.locked = {{"onemcp-fixture-pad", "^2.0.0"}};
  NpmCache stale_cache(stale);
  auto l = stale_cache.layer(stale.locked);
  ASSERT_FALSE(l.ok());
  EXPECT_NE(l.error().message.find("npm ci failed"), std::string::npos) << l.error().message;
}

TEST_F(NpmCacheTest, LayerRunsInTheSandboxedWorker) {
  NpmCache cache(options());
  auto layer = cache.layer(kSet);
  ASSERT_TRUE(layer.ok()) << layer.error().message;
  auto code = rewrite_imports(
      "import pad from 'onemcp-fixture-pad';\n"
      "import greet, { shout } from 'onemcp-fixture-esm';\n"
      "import { extra } from 'onemcp-fixture-esm/extra';\n"
      "const user = require('onemcp-fixture-user');\n"
      "const n = await Promise.resolve(4);\n"
      "[pad('x', n), greet('you'), shout('hi'), extra, user.table(['a', 'bb'], 3), "
      "require('onemcp-fixture-pad').VERSION]",
      (*layer)->modules);
  ASSERT_TRUE(code.ok()) << code.error().message;
  auto z = sandbox::Zygote::start({ONEMCP_JS_WORKER, {}, {"PATH=/usr/bin:/bin", "LANG=C.UTF-8"}});
  ASSERT_TRUE(z.ok()) << z.error().message;
  ipc::RunRequest req;
  req.code = *code;
  req.deps_code = (*layer)->code;
  req.timeout_ms = 5000;
  req.mem_mb = 128;
  req.stdout_bytes = 1 << 16;
  auto out = (*z)->run(req, "");
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(out->outcome, sandbox::Outcome::ok) << out->err;
  EXPECT_EQ(out->report.value,
            "[ '   x', 'hello, you', 'HI!', 'extra subpath', '..a\\n.bb', '1.2.3' ]");
}

}  // namespace
}  // namespace onemcp::deps
