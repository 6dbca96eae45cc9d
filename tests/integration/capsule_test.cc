// The capsule store, signing key files and HTTP view on real files in a temp dir: put/open,
// every kind of tampering, symlinks, concurrent writers (threads and processes), gc, limits,
// a full and a read-only disk (a private tmpfs), key file permissions, and the open+verify time
// of a small capsule.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <latch>
#include <set>
#include <sstream>
#include <thread>

#include "capsule/http.h"
#include "capsule/signing_key.h"
#include "capsule/store.h"
#include "tmpfs_fixture.h"

namespace onemcp::capsule {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void spit(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Sets a path's mtime to `ago` before now.
void age(const std::string& path, std::chrono::seconds ago) {
  auto t = std::chrono::system_clock::now() - ago;
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  timespec times[2] = {{0, UTIME_OMIT}, {time_t(ns / 1000000000), long(ns % 1000000000)}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW), 0) << path;
}

Manifest manifest_for(const std::string& tag) {
  Manifest m;
  m.language = "js";
  m.runtime = {"quickjs", "2021-03-27"};
  m.entry.argv = {"code.js", tag};
  m.entry.env = {{"MODE", "test"}};
  m.entry.cwd = "/tmp";
  m.layers = {{"code", "code", "code.js", "", 0}, {"deps", "deps", "deps.bin", "", 0}};
  m.policy = {{"limits", {{"timeoutMs", 1000}}}};
  return m;
}

class CapsuleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/1mcp-capsule-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    cache_ = root_ + "/cache";
    seed_.fill(7);
  }
  void TearDown() override { fs::remove_all(root_); }

  StoreOptions options() const {
    StoreOptions o;
    o.dir = cache_;
    return o;
  }
  std::unique_ptr<CapsuleStore> store(StoreOptions o) {
    auto s = CapsuleStore::create(std::move(o), SigningKey::from_seed(seed_));
    EXPECT_TRUE(s.ok()) << s.error().message;
    return s.ok() ? std::move(*s) : nullptr;
  }
  std::unique_ptr<CapsuleStore> store() { return store(options()); }

  Capsule put(CapsuleStore& s, const std::string& tag, std::string code = "console.log(42)\n",
              std::string deps = std::string("\0\1\2deps", 7)) {
    auto c = s.put(manifest_for(tag), {std::move(code), std::move(deps)});
    EXPECT_TRUE(c.ok()) << c.error().message;
    return c.ok() ? *c : Capsule{};
  }
  std::string path(const Capsule& c, const std::string& file = "") const {
    return cache_ + "/" + c.hash + (file.empty() ? "" : "/" + file);
  }
  std::set<std::string> entries() const {
    std::set<std::string> names;
    for (const auto& e : fs::directory_iterator(cache_)) names.insert(e.path().filename().string());
    return names;
  }
  // The error of opening `hash` with a fresh store (nothing cached in memory), "" when it opens.
  std::string open_error(const std::string& hash) {
    auto s = store();
    auto c = s->open(hash);
    return c.ok() ? "" : c.error().message;
  }

  std::string root_, cache_;
  Seed seed_{};
};

TEST_F(CapsuleTest, PutThenOpenReturnsTheVerifiedBytes) {
  auto s = store();
  Capsule c = put(*s, "a");
  ASSERT_TRUE(is_capsule_hash(c.hash));
  EXPECT_EQ(capsule_hash(c.manifest).value(), c.hash);
  EXPECT_EQ(c.manifest.layers[0].sha256, sha256_hex("console.log(42)\n"));
  EXPECT_EQ(c.manifest.layers[1].size, 7u);
  EXPECT_TRUE(is_rfc3339(c.manifest.created_at));
  EXPECT_EQ(c.manifest.signature.public_key, public_key_hex(s->public_key()));

  EXPECT_EQ(entries(), std::set<std::string>{c.hash});
  EXPECT_EQ(slurp(path(c, "code.js")), "console.log(42)\n");
  EXPECT_EQ(slurp(path(c, "manifest.json")), c.manifest_json);
  struct stat st;
  ASSERT_EQ(::stat(path(c).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(::stat(path(c, "code.js").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  // A verifier that knows only the public key, in a fresh object.
  auto v = CapsuleStore::create_verifier(options(), s->public_key());
  ASSERT_TRUE(v.ok());
  auto o = (*v)->open(c.hash);
  ASSERT_TRUE(o.ok()) << o.error().message;
  EXPECT_EQ(o->manifest, c.manifest);
  EXPECT_EQ(o->manifest_json, c.manifest_json);
  ASSERT_EQ(o->layers.size(), c.layers.size());
  for (size_t i = 0; i < c.layers.size(); ++i) EXPECT_EQ(*o->layers[i], *c.layers[i]);
  ASSERT_NE(o->layer("deps"), nullptr);
  EXPECT_EQ(*o->layer("deps"), std::string("\0\1\2deps", 7));
  EXPECT_EQ(o->layer("nope"), nullptr);
  EXPECT_FALSE((*v)->put(manifest_for("b"), {"x", "y"}).ok());  // no signing key
}

TEST_F(CapsuleTest, SameInputsSameCapsuleOtherInputsAnother) {
  auto s = store();
  Capsule a = put(*s, "a");
  Capsule again = put(*s, "a");
  EXPECT_EQ(again.hash, a.hash);
  EXPECT_EQ(again.manifest.created_at, a.manifest.created_at);  // the stored one is reused
  EXPECT_NE(put(*s, "b").hash, a.hash);
  EXPECT_NE(put(*s, "a", "console.log(43)\n").hash, a.hash);
  EXPECT_NE(put(*s, "a", "console.log(42)\n", "other").hash, a.hash);
  EXPECT_EQ(entries().size(), 4u);
}

TEST_F(CapsuleTest, PutRejectsBadInput) {
  auto s = store();
  EXPECT_FALSE(s->put(manifest_for("a"), {"only one"}).ok());
  Manifest m = manifest_for("a");
  m.layers[0].file = "../escape.js";
  auto r = s->put(m, {"x", "y"});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error().message, "layers[0].file")) << r.error().message;
  m = manifest_for("a");
  m.language = "rb";
  EXPECT_FALSE(s->put(m, {"x", "y"}).ok());
  EXPECT_TRUE(entries().empty());
}

TEST_F(CapsuleTest, TamperedLayerIsRefused) {
  auto s = store();
  Capsule c = put(*s, "a");
  spit(path(c, "code.js"), "console.log(66)\n");  // same length, other bytes
  std::string e = open_error(c.hash);
  EXPECT_TRUE(contains(e, "layer \"code\" (code.js): SHA-256 mismatch")) << e;

  spit(path(c, "code.js"), "console.log(42);\n");  // other length
  e = open_error(c.hash);
  EXPECT_TRUE(contains(e, "code.js: 17 bytes, the manifest says 16")) << e;

  ASSERT_EQ(::unlink(path(c, "code.js").c_str()), 0);
  e = open_error(c.hash);
  EXPECT_TRUE(contains(e, "code.js: missing")) << e;
}

TEST_F(CapsuleTest, TamperedManifestIsRefused) {
  auto s = store();
  Capsule c = put(*s, "a");
  std::string original = c.manifest_json;
  auto edit = [&](const std::string& from, const std::string& to) {
    std::string t = original;
    size_t at = t.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    t.replace(at, from.size(), to);
    spit(path(c, "manifest.json"), t);
  };
  edit("\"MODE\": \"test\"", "\"MODE\": \"prod\"");
  std::string e = open_error(c.hash);
  EXPECT_TRUE(contains(e, "does not match the capsule id")) << e;

  // Re-hashed and moved to the matching id: the signature no longer fits.
  Manifest m = c.manifest;
  m.entry.env["MODE"] = "prod";
  std::string forged = capsule_hash(m).value();
  spit(path(c, "manifest.json"), to_json(m).dump(2));
  fs::rename(path(c), cache_ + "/" + forged);
  e = open_error(forged);
  EXPECT_TRUE(contains(e, "signature: invalid")) << e;
  fs::rename(cache_ + "/" + forged, path(c));

  edit("\"version\": 1", "\"version\": 1, \"extra\": true");
  e = open_error(c.hash);
  EXPECT_TRUE(contains(e, "extra: unknown field")) << e;
  spit(path(c, "manifest.json"), "{ not json");
  e = open_error(c.hash);
  EXPECT_TRUE(contains(e, "not valid JSON")) << e;
  spit(path(c, "manifest.json"), original);
  EXPECT_EQ(open_error(c.hash), "");
}

TEST_F(CapsuleTest, AnotherKeyIsRefused) {
  auto s = store();
  Capsule c = put(*s, "a");
  SigningKey other = SigningKey::generate();
  auto v = CapsuleStore::create_verifier(options(), other.public_key());
  ASSERT_TRUE(v.ok());
  auto r = (*v)->open(c.hash);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error().message, "made with another key")) << r.error().message;

  // Claiming the other key in the manifest does not help: the signature is checked with it.
  Manifest m = c.manifest;
  m.signature.public_key = public_key_hex(other.public_key());
  spit(path(c, "manifest.json"), to_json(m).dump());
  r = (*v)->open(c.hash);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error().message, "signature: invalid")) << r.error().message;

  // A capsule signed by another key with a correct signature: refused by our store.
  m.signature.value = to_hex(other.sign(signed_message(c.hash)));
  spit(path(c, "manifest.json"), to_json(m).dump());
  EXPECT_TRUE((*v)->open(c.hash).ok());
  std::string e = open_error(c.hash);
  EXPECT_TRUE(contains(e, "made with another key")) << e;
  // put replaces a capsule it cannot verify.
  Capsule again = put(*s, "a");
  EXPECT_EQ(again.hash, c.hash);
  EXPECT_EQ(open_error(c.hash), "");
}

TEST_F(CapsuleTest, SymlinksAndSpecialFilesAreRefused) {
  auto s = store();
  Capsule c = put(*s, "a");
  // A symlinked layer pointing at the right bytes is still refused.
  std::string outside = root_ + "/code-copy.js";
  spit(outside, "console.log(42)\n");
  ASSERT_EQ(::unlink(path(c, "code.js").c_str()), 0);
  ASSERT_EQ(::symlink(outside.c_str(), path(c, "code.js").c_str()), 0);
  std::string e = open_error(c.hash);
  EXPECT_TRUE(contains(e, "code.js: is a symbolic link")) << e;

  ASSERT_EQ(::unlink(path(c, "code.js").c_str()), 0);
  ASSERT_EQ(::mkfifo(path(c, "code.js").c_str(), 0600), 0);  // opening must not hang
  e = open_error(c.hash);
  EXPECT_TRUE(contains(e, "code.js: not a regular file")) << e;
  ASSERT_EQ(::unlink(path(c, "code.js").c_str()), 0);
  spit(path(c, "code.js"), "console.log(42)\n");
  ::chmod(path(c, "code.js").c_str(), 0600);
  EXPECT_EQ(open_error(c.hash), "");

  std::string manifest_copy = root_ + "/manifest-copy.json";
  fs::rename(path(c, "manifest.json"), manifest_copy);
  ASSERT_EQ(::symlink(manifest_copy.c_str(), path(c, "manifest.json").c_str()), 0);
  e = open_error(c.hash);
  EXPECT_TRUE(contains(e, "manifest.json: is a symbolic link")) << e;
  ASSERT_EQ(::unlink(path(c, "manifest.json").c_str()), 0);
  fs::rename(manifest_copy, path(c, "manifest.json"));

  // The capsule directory itself as a symlink to a valid capsule elsewhere.
  std::string moved = root_ + "/moved";
  fs::rename(path(c), moved);
  ASSERT_EQ(::symlink(moved.c_str(), path(c).c_str()), 0);
  e = open_error(c.hash);
  EXPECT_TRUE(contains(e, "not a directory")) << e;
}

TEST_F(CapsuleTest, OpenValidatesTheIdStrictly) {
  auto s = store();
  Capsule c = put(*s, "a");
  std::string upper = c.hash;
  std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
  for (const std::string& bad : {std::string(".."), std::string("../cache/") + c.hash, upper,
                                 c.hash + "/", c.hash.substr(1), std::string("")}) {
    auto r = s->open(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_TRUE(contains(r.error().message, "not a capsule id")) << r.error().message;
  }
  EXPECT_TRUE(contains(open_error(std::string(64, '0')), "not found"));
}

TEST_F(CapsuleTest, SizeLimits) {
  StoreOptions o = options();
  o.limits.max_capsule_bytes = 4096;
  auto small = store(o);
  auto r = small->put(manifest_for("big"), {std::string(5000, 'x'), ""});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error().message, "over the limit of 4096")) << r.error().message;
  EXPECT_EQ(r.error().os_error, 0) << "the capsule's fault, not the disk's";
  EXPECT_TRUE(entries().empty());

  auto big = store();
  Capsule c = put(*big, "big", std::string(5000, 'x'));
  auto o2 = small->open(c.hash);
  ASSERT_FALSE(o2.ok());
  EXPECT_TRUE(contains(o2.error().message, "over the limit of 4096")) << o2.error().message;

  o = options();
  o.limits.max_manifest_bytes = 100;
  auto tiny = store(o);
  EXPECT_FALSE(tiny->put(manifest_for("a"), {"x", "y"}).ok());
  Capsule d = put(*big, "a");
  auto o3 = tiny->open(d.hash);
  ASSERT_FALSE(o3.ok());
  EXPECT_TRUE(contains(o3.error().message, "manifest.json")) << o3.error().message;
}

TEST_F(CapsuleTest, ConcurrentThreadsPutOneCapsule) {
  auto s = store();
  for (int round = 0; round < 5; ++round) {
    constexpr int kThreads = 8;
    std::latch start(kThreads);
    std::vector<std::string> hashes(kThreads);
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        start.arrive_and_wait();
        auto c = s->put(manifest_for("round" + std::to_string(round)), {"code", "deps"});
        hashes[i] = c.ok() ? c->hash : "error: " + c.error().message;
      });
    }
    for (auto& t : threads) t.join();
    for (const auto& h : hashes) EXPECT_EQ(h, hashes[0]);
    EXPECT_TRUE(is_capsule_hash(hashes[0])) << hashes[0];
  }
  EXPECT_EQ(entries().size(), 5u);  // one per round, no temporary directories left
  for (const auto& name : entries()) EXPECT_EQ(open_error(name), "") << name;
}

TEST_F(CapsuleTest, ConcurrentProcessesPutOneCapsule) {
  for (int round = 0; round < 5; ++round) {
    constexpr int kProcs = 6;
    int go[2];
    ASSERT_EQ(::pipe2(go, O_CLOEXEC), 0);
    std::vector<pid_t> pids;
    for (int i = 0; i < kProcs; ++i) {
      pid_t pid = ::fork();
      ASSERT_GE(pid, 0);
      if (pid == 0) {
        ::close(go[1]);
        char b;
        if (::read(go[0], &b, 1) != 0) ::_exit(3);  // wait until the parent closes its end
        StoreOptions o;
        o.dir = cache_;
        auto s = CapsuleStore::create(o, SigningKey::from_seed(seed_));
        if (!s) ::_exit(4);
        auto c = (*s)->put(manifest_for("round" + std::to_string(round)),
                           {std::string(100000, 'c'), "d"});
        if (!c) ::_exit(5);
        ::_exit((*s)->open(c->hash).ok() ? 0 : 6);
      }
      pids.push_back(pid);
    }
    ::close(go[0]);
    ::close(go[1]);  // all children start at once
    for (pid_t pid : pids) {
      int status = 0;
      ASSERT_EQ(::waitpid(pid, &status, 0), pid);
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
    }
  }
  EXPECT_EQ(entries().size(), 5u);
  for (const auto& name : entries()) EXPECT_EQ(open_error(name), "") << name;
}

TEST_F(CapsuleTest, GcRemovesCapsulesOlderThanMaxAge) {
  auto s = store();
  Capsule old = put(*s, "old"), fresh = put(*s, "fresh");
  age(path(old), 2h);
  auto st = s->gc(1h, UINT64_MAX);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->removed, 1u);
  EXPECT_EQ(st->kept, 1u);
  EXPECT_EQ(entries(), std::set<std::string>{fresh.hash});
  EXPECT_EQ(st->bytes_kept,
            fresh.manifest_json.size() + fresh.layers[0]->size() + fresh.layers[1]->size());
}

TEST_F(CapsuleTest, GcByTotalSizeRemovesLeastRecentlyUsed) {
  auto s = store();
  Capsule a = put(*s, "a", std::string(1000, 'a')), b = put(*s, "b", std::string(1000, 'b')),
          c = put(*s, "c", std::string(1000, 'c'));
  age(path(a), 3h);
  age(path(b), 2h);
  age(path(c), 1h);
  ASSERT_TRUE(s->open(a.hash).ok());  // a is now the most recently used
  uint64_t each = a.manifest_json.size() + 1000 + a.layers[1]->size();
  auto st = s->gc(24h, 2 * each + 10);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->removed, 1u);
  EXPECT_EQ(entries(), (std::set<std::string>{a.hash, c.hash}));
  st = s->gc(24h, 0);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->removed, 2u);
  EXPECT_TRUE(entries().empty());
}

TEST_F(CapsuleTest, GcRemovesStaleTemporaryDirectoriesOnly) {
  auto s = store();
  Capsule c = put(*s, "a");
  for (const char* d : {".tmp-stale", ".tmp-fresh", ".del-leftover", "notes"}) {
    fs::create_directories(cache_ + "/" + d + "/sub");
    spit(cache_ + "/" + d + "/sub/file", "x");
  }
  age(cache_ + "/.tmp-stale", 24h);
  auto st = s->gc(24h, UINT64_MAX);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->temp_removed, 2u);
  EXPECT_EQ(st->removed, 0u);
  EXPECT_EQ(entries(), (std::set<std::string>{c.hash, ".tmp-fresh", "notes"}));
}

// gc running flat out beside put+open of one capsule: an open may find the capsule gone (gc
// removed it between two calls) but never half-removed under it, and put always succeeds.
TEST_F(CapsuleTest, GcNeverRemovesACapsuleBeingOpenedOrPut) {
  auto s = store();
  Manifest m = manifest_for("busy");
  std::atomic<bool> done{false};
  std::atomic<int> gc_removed{0};
  std::thread collector([&] {
    while (!done) {
      auto st = s->gc(0s, 0);
      if (st.ok()) gc_removed += int(st->removed);
    }
  });
  int opened = 0;
  for (int i = 0; i < 300; ++i) {
    auto c = s->put(m, {std::string(20000, 'x'), "d"});
    ASSERT_TRUE(c.ok()) << c.error().message;
    auto o = s->open(c->hash);
    if (o.ok()) {
      ++opened;
    } else {
      EXPECT_TRUE(contains(o.error().message, ": not found")) << o.error().message;
    }
  }
  done = true;
  collector.join();
  std::printf("gc removed the capsule %d times; %d of 300 opens found it\n", gc_removed.load(),
              opened);
  EXPECT_GT(gc_removed.load(), 0);
  ASSERT_TRUE(s->gc(0s, 0).ok());
  EXPECT_TRUE(entries().empty());
}

TEST_F(CapsuleTest, OpenAndVerifyOfASmallCapsuleTakesWellUnderAMillisecond) {
  auto s = store();
  Capsule c = put(*s, "fast", std::string(2000, 'x'), std::string(2000, 'y'));
  std::vector<double> us;
  for (int i = 0; i < 2000; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    auto o = s->open(c.hash);
    auto t1 = std::chrono::steady_clock::now();
    ASSERT_TRUE(o.ok());
    us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  std::sort(us.begin(), us.end());
  double p50 = us[us.size() / 2], p99 = us[us.size() * 99 / 100];
  std::printf("open+verify of a 4 KB capsule: p50 %.1f us, p99 %.1f us\n", p50, p99);
  RecordProperty("open_p50_us", std::to_string(p50));
  EXPECT_LT(p50, 500.0);
}

TEST_F(CapsuleTest, HttpView) {
  auto s = store();
  Capsule c = put(*s, "a");
  HttpReply r = capsule_http_get(*s, c.hash);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body, c.manifest_json);
  r = capsule_http_get(*s, c.hash + "/manifest.json");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body, c.manifest_json);
  r = capsule_http_get(*s, c.hash + "/code.js");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/plain; charset=utf-8");
  EXPECT_EQ(r.body, "console.log(42)\n");
  r = capsule_http_get(*s, c.hash + "/deps.bin");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/octet-stream");
  EXPECT_EQ(r.body, *c.layers[1]);

  for (const std::string& bad :
       {std::string("abc"), c.hash + "/", c.hash + "/../" + c.hash, c.hash + "/code.js/x",
        c.hash + "/.hidden", c.hash + "/manifest.json/x", std::string("../etc/passwd"),
        c.hash + "%2f..", std::string("")}) {
    r = capsule_http_get(*s, bad);
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_EQ(r.content_type, "application/json");
    EXPECT_TRUE(contains(r.body, "\"error\"")) << r.body;
  }
  EXPECT_EQ(capsule_http_get(*s, c.hash + "/other.js").status, 404);
  EXPECT_EQ(capsule_http_get(*s, std::string(64, 'e')).status, 404);
  EXPECT_EQ(capsule_http_get(*s, std::string(64, 'e') + "/code.js").status, 404);

  spit(path(c, "code.js"), "console.log(66)\n");
  r = capsule_http_get(*s, c.hash + "/deps.bin");  // any tampering fails the whole capsule
  EXPECT_EQ(r.status, 500);
  EXPECT_TRUE(contains(r.body, "SHA-256 mismatch")) << r.body;
}

// The cache directory on a small tmpfs of its own (tmpfs_fixture.h).
class CapsuleDiskTest : public CapsuleTest {
 protected:
  void SetUp() override {
    CapsuleTest::SetUp();
    fs::create_directories(cache_);
  }
  void TearDown() override {
    ::umount2(cache_.c_str(), MNT_DETACH);
    CapsuleTest::TearDown();
  }
  // Mounts the tmpfs; false when it cannot (a failure with ONEMCP_REQUIRE_KERNEL_FEATURES=1).
  bool mount(uint64_t bytes, const std::string& options = "") {
    auto s = test_tmpfs::mount_private(cache_, bytes, options);
    if (!s && test_tmpfs::required()) ADD_FAILURE() << s.error().message;
    return s.ok();
  }
};

TEST_F(CapsuleDiskTest, AFullDiskIsNotWritableAndPutFailsWithItsErrno) {
  if (!mount(256 << 10)) GTEST_SKIP() << "no private tmpfs";
  auto s = store();
  ASSERT_TRUE(s->check_writable().ok());
  Capsule before = put(*s, "before");
  test_tmpfs::fill(cache_ + "/filler");
  // A directory or an empty file can still be made: only writing bytes shows the disk is full.
  ASSERT_EQ(::mkdir((cache_ + "/still-possible").c_str(), 0700), 0);
  ASSERT_EQ(::rmdir((cache_ + "/still-possible").c_str()), 0);
  auto w = s->check_writable();
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.error().os_error, ENOSPC);
  EXPECT_TRUE(contains(
      w.error().message,
      cache_ + ": cannot write capsules here: probe: cannot write: No space left on device"))
      << w.error().message;

  auto r = s->put(manifest_for("after"), {std::string(8192, 'x'), "d"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().os_error, ENOSPC) << r.error().message;
  EXPECT_TRUE(contains(r.error().message, "No space left on device")) << r.error().message;
  EXPECT_EQ(entries(), (std::set<std::string>{before.hash, "filler"})) << "no temporary left";
  EXPECT_EQ(put(*s, "before").hash, before.hash) << "a stored capsule needs no room";

  fs::remove(cache_ + "/filler");
  EXPECT_TRUE(s->check_writable().ok());
  EXPECT_TRUE(s->put(manifest_for("after"), {std::string(8192, 'x'), "d"}).ok());
}

TEST_F(CapsuleDiskTest, AReadOnlyDiskIsNotWritable) {
  if (!mount(256 << 10, "ro")) GTEST_SKIP() << "no private tmpfs";
  auto s = store();
  ASSERT_NE(s, nullptr);
  auto w = s->check_writable();
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.error().os_error, EROFS) << w.error().message;
  auto r = s->put(manifest_for("a"), {"x", "y"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().os_error, EROFS) << r.error().message;
}

class CapsuleKeyTest : public CapsuleTest {
 protected:
  std::string keys() const { return root_ + "/project/.1mcp/keys"; }
  std::string key_file() const { return keys() + "/capsule.key"; }
  std::string load_error() {
    auto k = signing_key_load_or_create(keys());
    return k.ok() ? "" : k.error().message;
  }
};

TEST_F(CapsuleKeyTest, CreatedOnceWithPrivateModesAndNeverReplaced) {
  auto k = signing_key_load_or_create(keys());
  ASSERT_TRUE(k.ok()) << k.error().message;
  EXPECT_TRUE(k->created);
  struct stat st;
  ASSERT_EQ(::stat(keys().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(::stat(key_file().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  std::string secret = slurp(key_file());
  EXPECT_EQ(secret.size(), 65u);
  EXPECT_EQ(slurp(keys() + "/capsule.pub"), public_key_hex(k->key.public_key()) + "\n");

  auto again = signing_key_load_or_create(keys());
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_FALSE(again->created);
  EXPECT_EQ(again->key.public_key(), k->key.public_key());
  EXPECT_EQ(slurp(key_file()), secret);
  auto pub = public_key_load(keys());
  ASSERT_TRUE(pub.ok());
  EXPECT_EQ(*pub, k->key.public_key());
  EXPECT_EQ(to_hex(again->key.sign("m")), to_hex(k->key.sign("m")));

  // A missing capsule.pub is written again from the secret key.
  ASSERT_EQ(::unlink((keys() + "/capsule.pub").c_str()), 0);
  EXPECT_EQ(load_error(), "");
  EXPECT_EQ(public_key_load(keys()).value(), k->key.public_key());
  EXPECT_EQ(std::distance(fs::directory_iterator(keys()), fs::directory_iterator()),
            2);  // no temp files
}

TEST_F(CapsuleKeyTest, RefusesAKeyOthersCanAccess) {
  ASSERT_EQ(load_error(), "");
  for (mode_t mode : {0640, 0604, 0620, 0660}) {
    ASSERT_EQ(::chmod(key_file().c_str(), mode), 0);
    std::string e = load_error();
    EXPECT_TRUE(contains(e, "accessible to group or others")) << std::oct << mode << ": " << e;
  }
  ASSERT_EQ(::chmod(key_file().c_str(), 0400), 0);
  EXPECT_EQ(load_error(), "");
}

TEST_F(CapsuleKeyTest, RefusesSymlinksAndNonRegularFiles) {
  ASSERT_EQ(load_error(), "");
  std::string real = root_ + "/real.key";
  fs::rename(key_file(), real);
  ASSERT_EQ(::symlink(real.c_str(), key_file().c_str()), 0);
  std::string e = load_error();
  EXPECT_TRUE(contains(e, "symbolic link")) << e;
  ASSERT_EQ(::unlink(key_file().c_str()), 0);
  ASSERT_EQ(::mkdir(key_file().c_str(), 0700), 0);
  e = load_error();
  EXPECT_TRUE(contains(e, "not a regular file")) << e;
  ASSERT_EQ(::rmdir(key_file().c_str()), 0);
  ASSERT_EQ(::mkfifo(key_file().c_str(), 0600), 0);
  e = load_error();
  EXPECT_TRUE(contains(e, "not a regular file")) << e;
}

TEST_F(CapsuleKeyTest, RefusesGarbageAndAMismatchedPublicKey) {
  ASSERT_EQ(load_error(), "");
  std::string secret = slurp(key_file());
  spit(key_file(), "not a key\n");
  std::string e = load_error();
  EXPECT_TRUE(contains(e, "expected 64 lowercase hex digits")) << e;
  spit(key_file(), secret);
  spit(keys() + "/capsule.pub", public_key_hex(SigningKey::generate().public_key()) + "\n");
  e = load_error();
  EXPECT_TRUE(contains(e, "is not the public key of")) << e;
  EXPECT_FALSE(public_key_load(root_ + "/nowhere").ok());
}

TEST_F(CapsuleKeyTest, ConcurrentCreatorsAgreeOnOneKey) {
  constexpr int kThreads = 8;
  std::latch start(kThreads);
  std::vector<std::string> pubs(kThreads);
  std::atomic<int> created{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      auto k = signing_key_load_or_create(keys());
      if (!k.ok()) {
        pubs[i] = "error: " + k.error().message;
        return;
      }
      pubs[i] = public_key_hex(k->key.public_key());
      if (k->created) ++created;
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& p : pubs) EXPECT_EQ(p, pubs[0]);
  EXPECT_EQ(created.load(), 1);
  EXPECT_EQ(slurp(keys() + "/capsule.pub"), pubs[0] + "\n");
}

}  // namespace
}  // namespace onemcp::capsule
