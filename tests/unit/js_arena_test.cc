// The heap arena's allocator (runtimes/js/arena.h) on an ordinary mapping: sizes, reuse, the
// memory limit, and a whole QuickJS runtime living in it.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "runtimes/js/arena.h"

namespace onemcp::js {
namespace {

class Arena : public ::testing::Test {
 protected:
  static constexpr size_t kBytes = 64u << 20;
  void SetUp() override {
    base_ = ::mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(base_, MAP_FAILED);
    arena::init_at(base_, kBytes);
  }
  void TearDown() override { ::munmap(base_, kBytes); }
  bool inside(const void* p, size_t n) const {
    auto a = reinterpret_cast<uintptr_t>(p), b = reinterpret_cast<uintptr_t>(base_);
    return a >= b && a + n <= b + kBytes;
  }
  void* base_ = nullptr;
  const JSMallocFunctions& mf_ = *arena::functions();
  JSMallocState st_{0, 0, SIZE_MAX, nullptr};
};

TEST_F(Arena, BlocksAreAlignedDistinctAndReused) {
  std::mt19937 rng(7);
  std::vector<std::pair<unsigned char*, size_t>> blocks;
  for (int i = 0; i < 4000; ++i) {
    size_t n = rng() % 3 == 0 ? rng() % 70000 : rng() % 600;
    auto* p = static_cast<unsigned char*>(mf_.js_malloc(&st_, n));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 16, 0u);
    EXPECT_GE(mf_.js_malloc_usable_size(p), n);
    EXPECT_LE(mf_.js_malloc_usable_size(p), n + n / 4 + 16);
    ASSERT_TRUE(inside(p, n));
    std::memset(p, i & 0xff, n);
    blocks.push_back({p, n});
  }
  for (size_t i = 0; i < blocks.size(); ++i) {  // no block overlapped another
    for (size_t k = 0; k < blocks[i].second; ++k) ASSERT_EQ(blocks[i].first[k], i & 0xff);
  }
  const size_t used = arena::used();
  for (auto& [p, n] : blocks) mf_.js_free(&st_, p);
  EXPECT_EQ(st_.malloc_size, 0u);
  EXPECT_EQ(st_.malloc_count, 0u);
  for (auto& [p, n] : blocks) ASSERT_NE(mf_.js_malloc(&st_, n), nullptr);
  EXPECT_EQ(arena::used(), used) << "freed blocks are used again before the heap grows";
}

TEST_F(Arena, ReallocKeepsTheContents) {
  auto* p = static_cast<char*>(mf_.js_realloc(&st_, nullptr, 10));
  std::memcpy(p, "0123456789", 10);
  EXPECT_EQ(mf_.js_realloc(&st_, p, 16), p) << "growing within the block's capacity stays in place";
  p = static_cast<char*>(mf_.js_realloc(&st_, p, 100000));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(std::string(p, 10), "0123456789");
  EXPECT_EQ(mf_.js_realloc(&st_, p, 0), nullptr);
  EXPECT_EQ(st_.malloc_size, 0u);
}

TEST_F(Arena, TheLimitIsNeverPassedAndSmallBlocksStillFit) {
  st_.malloc_limit = 1u << 20;
  size_t failures = 0;
  void* grown = nullptr;
  for (size_t n = 1000; failures == 0; n += 1000) {
    void* q = mf_.js_realloc(&st_, grown, n * 3);
    if (!q) {
      ++failures;
      break;
    }
    grown = q;
    ASSERT_LE(st_.malloc_size, st_.malloc_limit);
  }
  // The failed allocation left room for what reporting "out of memory" needs.
  while (st_.malloc_size + 4096 < st_.malloc_limit) ASSERT_NE(mf_.js_malloc(&st_, 64), nullptr);
  EXPECT_LE(st_.malloc_size, st_.malloc_limit);
  // Past the end of the arena: nothing, never memory outside it.
  st_.malloc_limit = SIZE_MAX;
  EXPECT_EQ(mf_.js_malloc(&st_, kBytes), nullptr);
}

TEST_F(Arena, AQuickJsRuntimeLivesInIt) {
  JSRuntime* rt = JS_NewRuntime2(arena::functions(), nullptr);
  ASSERT_NE(rt, nullptr);
  ASSERT_TRUE(inside(rt, 64));
  JSContext* ctx = JS_NewContext(rt);
  ASSERT_NE(ctx, nullptr);
  const char* code =
      "const m = new Map(); for (let i = 0; i < 20000; i++) m.set('k' + i, { i, s: 'x'.repeat(i % "
      "50) });"
      "const r = /([a-z]+)(\\d+)/g; let n = 0; for (const k of m.keys()) if (r.test(k)) n++;"
      "JSON.stringify([m.size, n > 0, 2n ** 100n + 1n].map(String))";
  JSValue v = JS_Eval(ctx, code, std::strlen(code), "<test>", JS_EVAL_TYPE_GLOBAL);
  ASSERT_FALSE(JS_IsException(v));
  const char* s = JS_ToCString(ctx, v);
  EXPECT_STREQ(s, "[\"20000\",\"true\",\"1267650600228229401496703205377\"]");
  JS_FreeCString(ctx, s);
  JS_FreeValue(ctx, v);
  EXPECT_GT(arena::used(), 1u << 20);
  JS_FreeContext(ctx);
  JS_FreeRuntime(rt);  // QuickJS checks on the way out that every block came back
}

}  // namespace
}  // namespace onemcp::js
