// The capsules runs execute from (server/capsules.h) on real files: identical inputs give one
// capsule, the memory cache serves repeats without reading the disk, tampered files never come
// back as a capsule's bytes (the capsule is replaced), a capsule gc removed is stored again, a
// given layer hash is used as is, concurrent identical runs share one capsule, and the
// background gc keeps the cache within its size.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "capsule/crypto.h"
#include "server/capsules.h"

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
  EXPECT_EQ(a->manifest.layers[1].sha256, capsule::sha256_hex(deps));
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
    EXPECT_EQ(b->manifest.policy, a->manifest.policy) << target;
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

}  // namespace
}  // namespace onemcp::server
