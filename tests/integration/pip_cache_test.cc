// Integration tests of deps::PipCache: the host's real pip (Debian's python3.11) against the
// loopback package index of tests/fixtures/pip (never the public index), and an installed set
// imported by the real Python worker in its sandbox.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <sys/file.h>
#include <atomic>
#include <thread>

#include "deps/pip.h"
#include "deps/retention.h"
#include "node_fixture.h"
#include "sandbox/executor.h"

extern char** environ;

namespace onemcp::deps {
namespace {

namespace fs = std::filesystem;

constexpr char kPython[] = "/usr/bin/python3.11";

// `node tests/fixtures/pip/index.mjs`: a PEP 503 index of wheels built at start.
class FixtureIndex {
 public:
  FixtureIndex() {
    auto j = nlohmann::json::parse(node_.first_line(), nullptr, false);
    if (j.is_object()) {
      url_ = j.value("url", "");
      index_url_ = j.value("indexUrl", "");
      dir_ = j.value("dir", "");
    }
  }
  const std::string& url() const { return url_; }
  const std::string& index_url() const { return index_url_; }
  const std::string& dir() const { return dir_; }

 private:
  testing::NodeFixture node_{"tests/fixtures/pip/index.mjs"};
  std::string url_, index_url_, dir_;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Everything in `dir` but pip's download cache.
std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename() != ".cache" && e.path().filename() != kDownloadLock)
      out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

class PipCacheTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    index_ = new FixtureIndex();
    ASSERT_FALSE(index_->url().empty()) << "the fixture index did not start";
    ASSERT_EQ(::access(kPython, X_OK), 0) << kPython << " is needed (python3.11 and python3-pip)";
  }
  static void TearDownTestSuite() {
    delete index_;
    index_ = nullptr;
  }
  void SetUp() override {
    char tmpl[] = "/tmp/1mcp-pip-cache-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  PipOptions options() const {
    PipOptions o;
    o.cache_dir = (fs::path(dir_) / "pip").string();
    o.python = kPython;
    o.index_url = index_->index_url();
    o.install_timeout_ms = 120000;
    return o;
  }
  // Serves wheel URLs from the fixture's directory, as the server's broker would from the index.
  WheelFetch local_fetch(std::vector<std::string>* asked = nullptr) const {
    return [this, asked](const std::string& url) -> Result<std::string> {
      if (asked) asked->push_back(url);
      return slurp(fs::path(index_->dir()) / wheel_file_name(url));
    };
  }

  static FixtureIndex* index_;
  std::string dir_;
};

FixtureIndex* PipCacheTest::index_ = nullptr;

TEST_F(PipCacheTest, InstallsASetOnceWithItsDependenciesAndReusesIt) {
  PipCache cache(options());
  const PipSet set{{"onemcp-fixture==1.0.0"}, {}};
  auto key = cache.prepare(set, local_fetch());
  ASSERT_TRUE(key) << key.error().message;
  EXPECT_EQ(key->key.size(), 64u);
  fs::path site = cache.site_dir(key->key);
  EXPECT_EQ(site, fs::path(dir_) / "pip" / key->key / "site");
  EXPECT_NE(slurp(site / "onemcp_fixture" / "__init__.py").find("__version__ = '1.0.0'"), std::string::npos);
  EXPECT_TRUE(fs::exists(site / "onemcp_fixture_dep" / "__init__.py")) << "dependency from the index";
  auto manifest = nlohmann::json::parse(slurp(site.parent_path() / "manifest.json"));
  EXPECT_EQ(manifest["installed"], (nlohmann::json{"onemcp_fixture-1.0.0", "onemcp_fixture_dep-1.0.0"}));
  // Runs read it as another uid: world-readable, writable by the owner only.
  struct stat st;
  ASSERT_EQ(::stat((site / "onemcp_fixture" / "__init__.py").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  ASSERT_EQ(::stat(site.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  EXPECT_EQ(cache.installs(), 1u);
  // Only the finished set is left, and its lock (held shared by the lease): no temporary
  // directory.
  EXPECT_EQ(entries(fs::path(dir_) / "pip"), (std::vector<std::string>{key->key, key->key + ".lock"}));

  // Again, in this instance and in another one on the same directory: no pip at all.
  auto again = cache.prepare(set, local_fetch());
  ASSERT_TRUE(again);
  EXPECT_EQ(again->key, key->key);
  EXPECT_EQ(cache.installs(), 1u);
  PipCache other(options());
  auto reused = other.prepare(set, local_fetch());
  ASSERT_TRUE(reused);
  EXPECT_EQ(reused->key, key->key);
  EXPECT_EQ(other.installs(), 0u);

  // The key follows the set (order does not matter) and the index.
  EXPECT_EQ(*cache.key({{"b", "a"}, {}}), *cache.key({{"a", "b"}, {}}));
  EXPECT_NE(*cache.key({{"a"}, {}}), *cache.key({{"a==1"}, {}}));
  PipOptions elsewhere = options();
  elsewhere.index_url = index_->url() + "/other/";
  EXPECT_NE(*PipCache(elsewhere).key(set), key->key);
}

TEST_F(PipCacheTest, ConcurrentRequestsForOneSetInstallItOnce) {
  PipCache cache(options());
  const PipSet set{{"onemcp-fixture-other"}, {}};
  std::vector<std::thread> threads;
  std::vector<std::string> keys(4);
  for (size_t i = 0; i < keys.size(); ++i) {
    threads.emplace_back([&, i] {
      auto k = cache.prepare(set, local_fetch());
      keys[i] = k ? k->key : "error: " + k.error().message;
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& k : keys) EXPECT_EQ(k, keys[0]);
  EXPECT_EQ(keys[0].size(), 64u) << keys[0];
  EXPECT_EQ(cache.installs(), 1u);
}

TEST_F(PipCacheTest, WheelUrlsAreFetchedByTheCallerNeverByPip) {
  PipCache cache(options());
  std::vector<std::string> asked;
  const std::string url = index_->url() + "/files/onemcp_fixture_direct-0.1.0-py3-none-any.whl";
  auto key = cache.prepare({{}, {url}}, local_fetch(&asked));
  ASSERT_TRUE(key) << key.error().message;
  EXPECT_EQ(asked, std::vector<std::string>{url});
  fs::path site = cache.site_dir(key->key);
  EXPECT_TRUE(fs::exists(site / "onemcp_fixture_direct" / "__init__.py"));
  EXPECT_TRUE(fs::exists(site / "onemcp_fixture_dep" / "__init__.py")) << "its dependency, from the index";
  // pip's record of the host path it installed the wheel from is not kept.
  EXPECT_FALSE(fs::exists(site / "onemcp_fixture_direct-0.1.0.dist-info" / "direct_url.json"));

  // A refused download is the caller's error, and nothing is installed.
  const std::string other = index_->url() + "/files/onemcp_fixture_other-2.0.0-py3-none-any.whl";
  auto refused = cache.prepare({{}, {other}}, [](const std::string&) -> Result<std::string> {
    return make_error("blocked by network policy (denyIpLiterals)");
  });
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().message,
            "pip.wheelUrls: cannot download " + other + ": blocked by network policy (denyIpLiterals)");
  EXPECT_EQ(cache.installs(), 1u);
}

TEST_F(PipCacheTest, FailuresAreClearAndLeaveNothingBehind) {
  PipCache cache(options());
  auto missing = cache.prepare({{"onemcp-no-such-package"}, {}}, local_fetch());
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message.rfind("pip install failed (exit code 1):\n", 0), 0u) << missing.error().message;
  EXPECT_NE(missing.error().message.find("No matching distribution found for onemcp-no-such-package"),
            std::string::npos)
      << missing.error().message;

  // A project with only a source distribution is never built: its setup.py never runs here.
  auto sdist = cache.prepare({{"onemcp-fixture-sdist"}, {}}, local_fetch());
  ASSERT_FALSE(sdist);
  EXPECT_NE(sdist.error().message.find("No matching distribution found for onemcp-fixture-sdist"),
            std::string::npos)
      << sdist.error().message;
  EXPECT_FALSE(fs::exists(fs::path(index_->dir()) / "sdist-setup-ran"));

  // Refused before pip runs.
  auto bad = cache.prepare({{"x @ https://evil.test/x.whl"}, {}}, local_fetch());
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message.rfind("pip.requirements: unsupported requirement", 0), 0u);
  EXPECT_EQ(cache.installs(), 2u);
  EXPECT_TRUE(entries(fs::path(dir_) / "pip").empty());
}

TEST_F(PipCacheTest, TheWorkerShowsOnlyTheRunsSetReadOnlyFirstOnSysPath) {
  PipCache cache(options());
  auto fixture = cache.prepare({{"onemcp-fixture==1.1.0"}, {}}, local_fetch());
  ASSERT_TRUE(fixture) << fixture.error().message;
  auto other = cache.prepare({{"onemcp-fixture-other"}, {}}, local_fetch());
  ASSERT_TRUE(other) << other.error().message;

  auto z = sandbox::Zygote::start(sandbox::LaunchSpec{
      ONEMCP_PY_WORKER, {"--pip-root", cache.options().cache_dir}, {"PATH=/usr/bin:/bin", "LANG=C.UTF-8"}});
  ASSERT_TRUE(z) << z.error().message;
  ASSERT_TRUE((*z)->wait_ready(std::chrono::seconds(30)));
  auto run = [&](const std::string& key, const std::string& code) {
    ipc::RunRequest req;
    req.code = code;
    req.timeout_ms = 20000;
    req.mem_mb = 256;
    req.stdout_bytes = 1 << 20;
    req.pip_key = key;
    auto out = (*z)->run(req, "");
    EXPECT_TRUE(out) << out.error().message;
    return out ? std::move(*out) : sandbox::RunOutput{};
  };

  auto r = run(fixture->key, "import sys, onemcp_fixture\nprint(onemcp_fixture.hello())\nprint(sys.path[0])");
  EXPECT_EQ(r.outcome, sandbox::Outcome::ok) << r.err << r.report.error_message.value_or("");
  EXPECT_EQ(r.out, "hello from onemcp_fixture 1.1.0 (42)\n/deps/site\n");

  // Read-only, and nothing of the cache but the run's own set.
  r = run(fixture->key,
          "import os\n"
          "for p in ('/deps/site/x.py', '/deps/site/onemcp_fixture/__init__.py'):\n"
          "    try:\n"
          "        open(p, 'a').write('x')\n"
          "        print('wrote', p)\n"
          "    except OSError as e:\n"
          "        print('denied' if e.errno in (13, 30) else e)\n"
          "print(sorted(os.listdir('/deps')), os.listdir('/deps/sets'), sorted(os.listdir('/deps/site'))[:2])");
  EXPECT_EQ(r.out, "denied\ndenied\n['sets', 'site'] [] ['onemcp_fixture', 'onemcp_fixture-1.1.0.dist-info']\n") << r.err;
  r = run(other->key, "import onemcp_fixture_other\ntry:\n    import onemcp_fixture\nexcept ImportError as e:\n    print(e)\nprint(onemcp_fixture_other.NAME)");
  EXPECT_EQ(r.out, "No module named 'onemcp_fixture'\nother\n") << r.err;
  r = run("", "try:\n    import onemcp_fixture\nexcept ImportError as e:\n    print(e)\nimport os\nprint(os.listdir('/deps/site'))");
  EXPECT_EQ(r.out, "No module named 'onemcp_fixture'\n[]\n") << r.err;

  // The worker checks the key itself: no paths, only a set's 64 hex digits.
  for (std::string key : {std::string("../../etc"), std::string(64, 'A'), std::string(63, 'a') + "/",
                          std::string(64, '0')}) {
    r = run(key, "print('ran')");
    EXPECT_EQ(r.outcome, sandbox::Outcome::internal) << key << ": " << r.out;
    EXPECT_EQ(r.out, "") << key;
  }
}

// Retention (deps/retention.h) on real sets.
void make_old(const fs::path& dir, std::chrono::hours age) {
  fs::last_write_time(dir, fs::file_time_type::clock::now() - age);
}

TEST_F(PipCacheTest, GcRemovesOldSetsThenTheLeastRecentlyUsedBeyondTheBudget) {
  PipCache cache(options());
  const fs::path root = fs::path(dir_) / "pip";
  const std::vector<DepsRoot> roots{{root.string(), ".cache"}};
  std::vector<std::string> keys;
  for (const char* r : {"onemcp-fixture==1.0.0", "onemcp-fixture==1.1.0", "onemcp-fixture-other"}) {
    auto lease = cache.prepare({{r}, {}}, local_fetch());
    ASSERT_TRUE(lease) << lease.error().message;
    keys.push_back(lease->key);
  }  // leases released: nothing is in use
  make_old(root / keys[0], std::chrono::hours(50));  // unused for longer than max_age
  make_old(root / keys[1], std::chrono::hours(3));   // least recently used of the others
  make_old(root / keys[2], std::chrono::hours(2));
  DepsGcOptions o;
  o.max_age = std::chrono::hours(48);
  auto t0 = std::chrono::steady_clock::now();
  auto all = gc_dependency_sets(roots, o);
  std::printf("[ timing ] gc pass over 3 sets %.2f ms\n",
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  ASSERT_TRUE(all) << all.error().message;
  EXPECT_EQ(all->removed, 1u);
  EXPECT_FALSE(fs::exists(root / keys[0]));
  EXPECT_FALSE(fs::exists(root / (keys[0] + ".lock")));
  ASSERT_EQ(all->kept, 2u);

  o.max_total_bytes = all->bytes_kept - 1;  // one set too many
  auto lru = gc_dependency_sets(roots, o);
  ASSERT_TRUE(lru);
  EXPECT_EQ(lru->removed, 1u);
  EXPECT_FALSE(fs::exists(root / keys[1]));
  EXPECT_TRUE(fs::exists(root / keys[2] / "site" / "onemcp_fixture_other"));
  EXPECT_EQ(entries(root), (std::vector<std::string>{keys[2], keys[2] + ".lock"}));

  // A removed set is installed again on its next use.
  auto again = cache.prepare({{"onemcp-fixture==1.0.0"}, {}}, local_fetch());
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->key, keys[0]);
  EXPECT_EQ(cache.installs(), 4u);
  EXPECT_TRUE(fs::exists(cache.site_dir(keys[0]) + "/onemcp_fixture/__init__.py"));
}

TEST_F(PipCacheTest, GcNeverRemovesASetInUseBeingBuiltOrJustUsed) {
  PipCache cache(options());
  const fs::path root = fs::path(dir_) / "pip";
  const std::vector<DepsRoot> roots{{root.string(), ".cache"}};
  DepsGcOptions o;
  o.max_age = std::chrono::hours(1);
  o.max_total_bytes = 0;

  // Used within min_idle (a minute): kept although over the budget.
  auto lease = cache.prepare({{"onemcp-fixture==1.0.0"}, {}}, local_fetch());
  ASSERT_TRUE(lease) << lease.error().message;
  const std::string key = lease->key;
  auto r = gc_dependency_sets(roots, o);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->removed, 0u);

  // Leased (a run mounts it): kept, however old.
  make_old(root / key, std::chrono::hours(5));
  r = gc_dependency_sets(roots, o);
  EXPECT_EQ(r->removed, 0u);
  EXPECT_TRUE(fs::exists(cache.site_dir(key)));

  // Locked exclusively (being built, here by another holder of the lock): kept.
  lease->lock.reset();
  UniqueFd building = lock_file((root / (key + ".lock")).string(), LOCK_EX);
  ASSERT_TRUE(building.valid());
  r = gc_dependency_sets(roots, o);
  EXPECT_EQ(r->removed, 0u);
  EXPECT_TRUE(fs::exists(cache.site_dir(key)));
  building.reset();

  // Free and old: removed.
  r = gc_dependency_sets(roots, o);
  EXPECT_EQ(r->removed, 1u);
  EXPECT_FALSE(fs::exists(root / key));
  // The lock file of a set that is gone goes too, unless someone holds it.
  const fs::path orphan = root / (std::string(64, 'a') + ".lock");
  UniqueFd held = lock_file(orphan.string(), LOCK_SH);
  r = gc_dependency_sets(roots, o);
  EXPECT_TRUE(fs::exists(orphan));
  held.reset();
  r = gc_dependency_sets(roots, o);
  EXPECT_FALSE(fs::exists(orphan));
  EXPECT_EQ(entries(root), std::vector<std::string>{});

  // A download cache over its budget is kept while an install uses it, wiped otherwise.
  fs::create_directories(root / ".cache" / "http");
  { std::ofstream(root / ".cache" / "http" / "blob") << std::string(4096, 'x'); }
  o.max_download_cache_bytes = 1024;
  UniqueFd installing = lock_file((root / kDownloadLock).string(), LOCK_SH);
  r = gc_dependency_sets(roots, o);
  EXPECT_EQ(r->download_caches_wiped, 0u);
  EXPECT_EQ(r->download_bytes, 4096u);
  installing.reset();
  r = gc_dependency_sets(roots, o);
  EXPECT_EQ(r->download_caches_wiped, 1u);
  EXPECT_FALSE(fs::exists(root / ".cache"));
}

// gc removing everything it may, as fast as it can, while another thread uses the set: every use
// gets a complete set that stays whole while its lease is held.
TEST_F(PipCacheTest, ConcurrentGcAndUseNeverYieldABrokenSet) {
  PipCache cache(options());
  const fs::path root = fs::path(dir_) / "pip";
  DepsGcOptions o;
  o.max_total_bytes = 0;
  o.min_idle = std::chrono::milliseconds(0);
  std::atomic<bool> stop{false};
  std::atomic<size_t> removed{0};
  // gc passes every millisecond, and each use leaves the set unleased for 30 ms, so gc removes
  // it between uses. A pass spinning without a pause would also win, several times running, the
  // few microseconds between an install's end and its lease (with min_idle 0, which only this
  // test sets), and prepare gives up after four installs.
  std::thread gc([&] {
    while (!stop) {
      auto r = gc_dependency_sets({{root.string(), ".cache"}}, o);
      if (r) removed += r->removed;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  for (int i = 0; i < 6; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    auto lease = cache.prepare({{"onemcp-fixture-other"}, {}}, local_fetch());
    ASSERT_TRUE(lease) << lease.error().message;
    const fs::path init = fs::path(cache.site_dir(lease->key)) / "onemcp_fixture_other" / "__init__.py";
    for (int j = 0; j < 20; ++j) {
      ASSERT_NE(slurp(init).find("NAME"), std::string::npos) << "iteration " << i << "/" << j;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  stop = true;
  gc.join();
  EXPECT_GE(removed.load(), 1u) << "gc did remove the set between uses";
  // Each use after a removal installed the set again (gc may have removed it once more at the end).
  EXPECT_GE(cache.installs(), removed.load());
  EXPECT_LE(cache.installs(), removed.load() + 1);
}

}  // namespace
}  // namespace onemcp::deps
