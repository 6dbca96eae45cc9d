// The capsules runs execute from (server/capsules.h) on real files: identical inputs give one
// capsule, the memory cache serves repeats without reading the disk, tampered files never come
// back as a capsule's bytes (the capsule is replaced), a capsule gc removed is stored again, a
// given layer hash is used as is, concurrent identical runs share one capsule, the background gc
// keeps the cache within its size, memory_bytes bounds the process's real memory, and a full
// disk (a private tmpfs) makes gc remove capsules at once, at most once per interval, with no
// failure remembered once there is room.
#include <gtest/gtest.h>
#include <sys/mount.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "capsule/crypto.h"
#include "policy/config.h"
#include "server/capsules.h"
#include "tmpfs_fixture.h"

namespace onemcp::server {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using capsule::Manifest;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void spit(const fs::path& p, const std::string& data) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << data;
}

Manifest manifest(bool with_deps, const std::string& deps_sha = "") {
  Manifest m;
  m.language = "js";
  m.runtime = {"quickjs", "2021-03-27"};
  m.entry = {{"a"}, {{"K", "v"}}, "/tmp"};
  m.policy = {{"limits", {{"timeoutMs", 1000}}}};
  m.layers = {{"code", "code", "code.js", "", 0}};
  if (with_deps) m.layers.push_back({"deps", "deps", "deps.js", deps_sha, 0});
  return m;
}

// Bytes of the files in the capsule directories of `dir` (gc may remove them meanwhile).
uint64_t cache_bytes(const fs::path& dir) {
  uint64_t n = 0;
  std::error_code ec;
  for (const auto& capsule : fs::directory_iterator(dir, ec)) {
    std::error_code ec2;
    for (const auto& f : fs::directory_iterator(capsule.path(), ec2)) {
      std::error_code ec3;
      uint64_t size = f.file_size(ec3);
      if (!ec3) n += size;
    }
  }
  return n;
}

class CapsuleRunsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/1mcp-capsule-runs-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    capsule::Seed seed;
    seed.fill(9);
    auto s = capsule::CapsuleStore::create({.dir = root_ + "/cache"},
                                           capsule::SigningKey::from_seed(seed));
    ASSERT_TRUE(s.ok()) << s.error().message;
    store_ = std::move(*s);
  }
  void TearDown() override { fs::remove_all(root_); }

  Capsules::Shared get(Capsules& caps, const std::string& code, const std::string* deps = nullptr,
                       const std::string& deps_sha = "") {
    std::vector<std::string_view> bytes{code};
    if (deps) bytes.push_back(*deps);
    auto c = caps.get(manifest(deps != nullptr, deps_sha), bytes);
    EXPECT_TRUE(c.ok()) << c.error().message;
    return c.ok() ? *c : nullptr;
  }
  fs::path dir(const Capsules::Shared& c) const { return fs::path(root_) / "cache" / c->hash; }

  std::string root_;
  std::unique_ptr<capsule::CapsuleStore> store_;
};

TEST_F(CapsuleRunsTest, IdenticalInputsOneCapsuleServedFromMemory) {
  Capsules caps(*store_, {});
  const std::string deps = "globalThis.x = 1;\n";
  auto a = get(caps, "console.log(1)", &deps);
  ASSERT_TRUE(a);
  EXPECT_EQ(*a->layer("code"), "console.log(1)");
  EXPECT_EQ(*a->layer("deps"), deps);
  EXPECT_EQ(a->layers[1].sha256, capsule::sha256_hex(deps));
  // Nothing is read for a repeat: the same object comes back, even with the file changed.
  spit(dir(a) / "code.js", "console.log('TAMPERED')");
  auto b = get(caps, "console.log(1)", &deps);
  ASSERT_TRUE(b);
  EXPECT_EQ(a.get(), b.get());
  EXPECT_EQ(*b->layer("code"), "console.log(1)");
  // Other code: another capsule.
  auto c = get(caps, "console.log(2)", &deps);
  ASSERT_TRUE(c);
  EXPECT_NE(c->hash, a->hash);
}

TEST_F(CapsuleRunsTest, ALayerSeveralCapsulesUseIsHeldOnce) {
  Capsules caps(*store_, {});
  const auto bundle = std::make_shared<const std::string>(64 << 10, 'b');  // the caller keeps it
  auto with_bundle = [&](const std::string& code) {
    auto c = caps.get(manifest(true), {code, *bundle}, {nullptr, bundle});
    EXPECT_TRUE(c.ok()) << c.error().message;
    return c.ok() ? (*c)->layer("deps") : nullptr;
  };
  EXPECT_EQ(with_bundle("1"), bundle.get()) << "the caller's buffer, not a copy";
  EXPECT_EQ(with_bundle("2"), bundle.get());
  caps.clear_memory();  // as after a restart: "1" comes back from the disk, verified
  EXPECT_EQ(with_bundle("1"), bundle.get()) << "the bytes read are dropped for the caller's";

  // Without an owner: one copy, counted once, for every capsule in memory.
  Capsules other(*store_, {});
  const std::string deps(64 << 10, 'd');
  auto a = get(other, "1", &deps), b = get(other, "2", &deps), c = get(other, "3", &deps);
  ASSERT_TRUE(a && b && c);
  EXPECT_NE(a->layer("deps"), &deps);
  EXPECT_EQ(a->layer("deps"), b->layer("deps"));
  EXPECT_EQ(a->layer("deps"), c->layer("deps"));
  EXPECT_LT(other.memory_used(), 2 * deps.size());
  EXPECT_EQ(other.memory_entries(), 3u);
}

TEST_F(CapsuleRunsTest, TamperedCapsuleIsNeverReturnedAndIsReplaced) {
  for (const char* target : {"code.js", "manifest.json"}) {
    Capsules caps(*store_, {});
    auto a = get(caps, std::string("console.log('") + target + "')");
    ASSERT_TRUE(a);
    const fs::path file = dir(a) / target;
    const std::string good = slurp(file);
    std::string bad = good;
    if (std::string(target) == "code.js") {
      bad = "console.log('TAMPERED')";
    } else {
      bad.replace(bad.find("\"timeoutMs\": 1000"), 17, "\"timeoutMs\": 9000");
    }
    spit(file, bad);
    ASSERT_FALSE(store_->open(a->hash).ok());
    caps.clear_memory();  // as after a restart: the next get reads the disk
    auto b = get(caps, std::string("console.log('") + target + "')");
    ASSERT_TRUE(b);
    EXPECT_EQ(b->hash, a->hash);
    EXPECT_EQ(*b->layer("code"), *a->layer("code")) << target;
    EXPECT_EQ(b->entry, a->entry) << target;
    EXPECT_TRUE(store_->open(a->hash).ok()) << "replaced by a valid capsule: " << target;
  }
}

TEST_F(CapsuleRunsTest, WithoutMemoryEveryGetVerifiesTheDisk) {
  Capsules caps(*store_, {.memory_bytes = 0});
  auto a = get(caps, "1");
  ASSERT_TRUE(a);
  spit(dir(a) / "code.js", "2");
  auto b = get(caps, "1");
  ASSERT_TRUE(b);
  EXPECT_NE(a.get(), b.get());
  EXPECT_EQ(*b->layer("code"), "1");
  EXPECT_EQ(slurp(dir(a) / "code.js"), "1");
}

TEST_F(CapsuleRunsTest, CapsuleRemovedFromDiskIsStoredAgain) {
  Capsules caps(*store_, {});
  auto a = get(caps, "console.log('gc')");
  ASSERT_TRUE(a);
  fs::remove_all(dir(a));
  auto b = get(caps, "console.log('gc')");
  ASSERT_TRUE(b);
  EXPECT_TRUE(store_->open(a->hash).ok());
}

TEST_F(CapsuleRunsTest, GivenLayerHashIsUsedAsIs) {
  Capsules caps(*store_, {});
  const std::string deps = "globalThis.y = 2;\n";
  auto right = get(caps, "1", &deps, capsule::sha256_hex(deps));
  ASSERT_TRUE(right);
  EXPECT_EQ(right->hash, get(caps, "1", &deps)->hash);
  // A wrong hash (a caller's bug) makes a capsule that fails verification: it is never reused.
  Capsules fresh(*store_, {.memory_bytes = 0});
  std::vector<std::string_view> bytes{"2", deps};
  ASSERT_TRUE(fresh.get(manifest(true, std::string(64, '0')), bytes).ok());
  auto reread = fresh.get(manifest(true, std::string(64, '0')), bytes);
  ASSERT_TRUE(reread.ok());  // the store logged the failure and stored it again
}

TEST_F(CapsuleRunsTest, BackgroundGcKeepsTheCacheWithinItsSize) {
  const uint64_t limit = 64 << 10;
  std::atomic<int> also{0};  // the dependency caches' gc: at start, then once per interval
  Capsules caps(*store_, {.memory_bytes = 0,
                          .max_total_bytes = limit,
                          .gc_interval = 1h,
                          .also_gc = [&also] { ++also; }});
  const std::string pad(2000, 'x');
  std::string last;
  for (int i = 0; i < 100; ++i) {
    auto c = get(caps, "// " + std::to_string(i) + pad);
    ASSERT_TRUE(c);
    last = c->hash;
  }
  EXPECT_GT(100u * 2000, limit);
  // gc runs at start and again once the stored capsules may exceed the limit.
  for (int i = 0; i < 200 && cache_bytes(fs::path(root_) / "cache") > limit; ++i) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_LE(cache_bytes(fs::path(root_) / "cache"), limit);
  EXPECT_GE(caps.gc_runs(), 2u);
  EXPECT_EQ(also.load(), 1) << "not again on the passes new capsules asked for";
  EXPECT_TRUE(store_->contains(last)) << "the most recently used capsule is kept";
}

TEST_F(CapsuleRunsTest, ConcurrentIdenticalRunsShareOneValidCapsule) {
  Capsules caps(*store_, {});
  const std::string deps(256 << 10, 'd');
  std::vector<std::string> ids(8);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < ids.size(); ++i) {
    threads.emplace_back([&, i] {
      std::vector<std::string_view> bytes{"console.log('same')", deps};
      auto c = caps.get(manifest(true), bytes);
      if (c.ok() && *(*c)->layer("deps") == deps) ids[i] = (*c)->hash;
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& id : ids) EXPECT_EQ(id, ids[0]);
  ASSERT_FALSE(ids[0].empty());
  EXPECT_TRUE(store_->open(ids[0]).ok());
  size_t dirs = 0;
  for (const auto& e : fs::directory_iterator(fs::path(root_) / "cache")) {
    (void)e;
    ++dirs;
  }
  EXPECT_EQ(dirs, 1u) << "one capsule, no temporary directory left";
}

TEST_F(CapsuleRunsTest, DestructionStopsTheGcThreadPromptly) {
  auto t0 = std::chrono::steady_clock::now();
  { Capsules caps(*store_, {.gc_interval = 1h}); }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
}

// Resident anonymous memory of this process (its heaps), in bytes.
uint64_t rss_anon() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("RssAnon:", 0) == 0) return std::stoull(line.substr(8)) << 10;
  }
  return 0;
}

// memory_bytes bounds what the process really holds for the cache, not a count of some of it:
// thousands of distinct small capsules stored from several threads (an entry is mostly strings
// and nodes, not code), then capsules sharing a dependency layer: one the caller keeps anyway
// (the npm cache's bundle: shared, no copy) and one it does not (copied once). kSlack is what
// glibc keeps in the threads' arenas around live blocks (free space between them, the part of
// the top below the trim threshold): measured up to 0.45 MiB here.
TEST_F(CapsuleRunsTest, MemoryBytesBoundsTheRealMemoryOfTheCache) {
  constexpr uint64_t kMemory = 2 << 20, kSlack = 1 << 20;
  capsule::Seed seed;
  seed.fill(9);
  auto store = capsule::CapsuleStore::create({.dir = root_ + "/rss", .sync = false},
                                             capsule::SigningKey::from_seed(seed));
  ASSERT_TRUE(store.ok()) << store.error().message;
  Capsules caps(**store, {.memory_bytes = kMemory, .gc_interval = 1h});
  Manifest m = manifest(false);
  m.policy = policy::to_json(policy::Policy{});  // a whole effective policy, as runs have
  auto run = [&](const std::string& code, const capsule::LayerBytes& deps = nullptr,
                 bool owned = false) {
    Manifest mm = m;
    std::vector<std::string_view> bytes{code};
    std::vector<capsule::LayerBytes> owners{nullptr};
    if (deps) {
      mm.layers.push_back({"deps", "deps", "deps.js", capsule::sha256_hex(*deps), 0});
      bytes.push_back(*deps);
      owners.push_back(owned ? deps : nullptr);
    }
    auto c = caps.get(std::move(mm), bytes, owners);
    EXPECT_TRUE(c.ok()) << c.error().message;
    return c.ok() ? *c : nullptr;
  };
  const auto bundle = std::make_shared<const std::string>(1 << 20, 'b');  // the npm cache's
  for (int i = 0; i < 200; ++i) run("warm-up " + std::to_string(i));
  const uint64_t before = rss_anon();
  auto within_bound = [&] {
    EXPECT_LE(caps.memory_used(), kMemory);
    EXPECT_LE(rss_anon() - before, kMemory + kSlack)
        << caps.memory_entries() << " capsules in memory, counted " << caps.memory_used();
  };

  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i) {
        run("console.log(" + std::to_string(t * 100000 + i) + ")" + std::string(i % 7 * 40, ' '));
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LT(caps.memory_entries(), 4000u) << "the cache is full: entries were evicted";
  within_bound();

  auto a = run("import 0", bundle, true), b = a;
  for (int i = 1; i < 20; ++i) b = run("import " + std::to_string(i), bundle, true);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->layer("deps"), bundle.get()) << "the caller's buffer, not a copy";
  EXPECT_EQ(b->layer("deps"), bundle.get());
  within_bound();

  const auto other = std::make_shared<const std::string>(128 << 10, 'o');
  auto c = run("require 0", other), d = c;
  for (int i = 1; i < 20; ++i) d = run("require " + std::to_string(i), other);
  ASSERT_TRUE(c && d);
  EXPECT_NE(c->layer("deps"), other.get()) << "not the caller's: copied";
  EXPECT_EQ(c->layer("deps"), d->layer("deps")) << "once";
  within_bound();
}

// The cache directory on a small tmpfs in a mount namespace of the test's own (tmpfs_fixture.h).
class CapsuleFullDiskTest : public CapsuleRunsTest {
 protected:
  // Mounts a tmpfs of `bytes` on the cache and opens the store there; false when it cannot be
  // mounted (a failure with ONEMCP_REQUIRE_KERNEL_FEATURES=1).
  bool mount(uint64_t bytes) {
    store_.reset();
    auto s = test_tmpfs::mount_private(cache(), bytes);
    if (!s && test_tmpfs::required()) ADD_FAILURE() << s.error().message;
    if (!s) return false;
    mounted_ = true;
    capsule::Seed seed;
    seed.fill(9);
    auto made = capsule::CapsuleStore::create({.dir = cache(), .sync = false},
                                              capsule::SigningKey::from_seed(seed));
    EXPECT_TRUE(made.ok()) << made.error().message;
    if (made.ok()) store_ = std::move(*made);
    return made.ok();
  }
  void TearDown() override {
    if (mounted_) ::umount2(cache().c_str(), MNT_DETACH);
    CapsuleRunsTest::TearDown();
  }
  std::string cache() const { return root_ + "/cache"; }
  static void wait_for_first_gc(const Capsules& caps) {
    for (int i = 0; i < 500 && caps.gc_runs() == 0; ++i) std::this_thread::sleep_for(10ms);
    ASSERT_GE(caps.gc_runs(), 1u);
  }
  bool mounted_ = false;
};

TEST_F(CapsuleFullDiskTest, GcMakesRoomAtOnceAndTheStoreIsRetried) {
  if (!mount(512 << 10)) GTEST_SKIP() << "no private tmpfs";
  // Far below max_total_bytes and max_age: only a full disk makes gc remove anything.
  Capsules caps(*store_, {.memory_bytes = 0, .gc_interval = 1h});
  wait_for_first_gc(caps);
  const std::string pad(16 << 10, 'x');
  std::vector<std::string> ids;
  for (int i = 0; i < 8; ++i) {
    auto c = get(caps, "// " + std::to_string(i) + pad);
    ASSERT_TRUE(c);
    ids.push_back(c->hash);
    std::this_thread::sleep_for(2ms);  // distinct last uses: the oldest are known
  }
  test_tmpfs::fill(cache() + "/filler");
  auto c = get(caps, "// new" + pad);
  ASSERT_TRUE(c) << "stored after gc made room";
  EXPECT_TRUE(store_->open(c->hash).ok());
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(store_->contains(ids[i]), i >= 4) << "the least recently used half goes: " << i;
  }
}

TEST_F(CapsuleFullDiskTest, NothingToRemoveFailsWithTheOsErrorAtMostOneGcPerIntervalThenRecovers) {
  if (!mount(256 << 10)) GTEST_SKIP() << "no private tmpfs";
  Capsules caps(*store_, {.memory_bytes = 0, .gc_interval = 1h, .full_disk_gc_interval = 1h});
  wait_for_first_gc(caps);
  test_tmpfs::fill(cache() + "/filler");
  const std::string code = "console.log('full')";
  auto fail = [&] {
    auto c = caps.get(manifest(false), {code});
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.error().os_error, ENOSPC) << c.error().message;
    EXPECT_NE(c.error().message.find(cache()), std::string::npos) << c.error().message;
  };
  const uint64_t passes = caps.gc_runs();
  fail();
  EXPECT_EQ(caps.gc_runs(), passes + 1) << "one gc pass at once";
  for (int i = 0; i < 5; ++i) fail();
  EXPECT_EQ(caps.gc_runs(), passes + 1) << "no more within full_disk_gc_interval";

  // Nothing of the failure is remembered: with room again, the next get stores.
  fs::remove(cache() + "/filler");
  auto c = caps.get(manifest(false), {code});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_TRUE(store_->open((*c)->hash).ok());

  // Without the interval, every get that finds the disk full asks for a pass.
  fs::remove_all(fs::path(cache()) / (*c)->hash);  // nothing gc could remove
  Capsules eager(*store_, {.memory_bytes = 0, .gc_interval = 1h, .full_disk_gc_interval = 0ms});
  wait_for_first_gc(eager);
  test_tmpfs::fill(cache() + "/filler");
  const uint64_t eager_passes = eager.gc_runs();
  for (int i = 0; i < 3; ++i) {
    auto r = eager.get(manifest(false), {"console.log(" + std::to_string(i) + ")"});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().os_error, ENOSPC);
  }
  EXPECT_EQ(eager.gc_runs(), eager_passes + 3);
}

}  // namespace
}  // namespace onemcp::server
