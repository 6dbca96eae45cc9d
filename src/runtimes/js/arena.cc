#include "runtimes/js/arena.h"

#include <sys/mman.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace onemcp::js::arena {
namespace {

constexpr uint64_t kMagic = 0x314d4350'41524e41;  // "1MCPARNA"
constexpr size_t kClasses = 144;                  // see class_of: sizes up to 2^36
constexpr size_t kOverhead = 16;                  // the block header, counted as QuickJS does
constexpr size_t kPage = 4096;

struct Header {
  uint64_t magic;
  uint64_t anchor;  // where this process has its code (an arena made by another one is useless)
  uint64_t top;    // address of the next block never handed out
  uint64_t limit;  // end of the mapped range
  uint64_t roots[kRootCount];
  uint64_t free[kClasses];  // per size class, a list linked through the blocks' first word
};

// In front of every block: its capacity and class. 16 bytes keeps payloads 16-byte aligned.
struct Block {
  uint64_t cap;
  uint64_t cls;
};
static_assert(sizeof(Block) == kOverhead);

Header* g_heap = nullptr;

std::string why(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

// 16-byte steps up to 512 bytes, then four classes per power of two (at most 25% slack).
size_t class_of(size_t n, size_t* cap) {
  if (n == 0) n = 1;
  if (n <= 512) {
    size_t c = (n + 15) >> 4;
    *cap = c << 4;
    return c;
  }
  unsigned e = 63u - unsigned(__builtin_clzll(uint64_t(n - 1)));  // 2^e < n <= 2^(e+1)
  size_t step = size_t(1) << (e - 2);
  size_t k = (n - (size_t(1) << e) + step - 1) / step;  // 1..4
  *cap = (size_t(1) << e) + k * step;
  return 32 + (e - 9) * 4 + k;
}

Block* block_of(void* p) { return reinterpret_cast<Block*>(static_cast<char*>(p) - sizeof(Block)); }

void* take(size_t n) {
  Header* h = g_heap;
  size_t cap = 0;
  size_t c = class_of(n, &cap);
  if (c >= kClasses) return nullptr;
  if (uint64_t head = h->free[c]) {
    void* p = reinterpret_cast<void*>(head);
    std::memcpy(&h->free[c], p, sizeof(uint64_t));
    return p;
  }
  if (cap + sizeof(Block) > h->limit - h->top) return nullptr;
  auto* b = reinterpret_cast<Block*>(h->top);
  b->cap = cap;
  b->cls = c;
  h->top += sizeof(Block) + cap;
  return b + 1;
}

void give_back(void* p) {
  Header* h = g_heap;
  Block* b = block_of(p);
  std::memcpy(p, &h->free[b->cls], sizeof(uint64_t));
  h->free[b->cls] = reinterpret_cast<uint64_t>(p);
}

size_t usable(const void* p) {
  return p ? block_of(const_cast<void*>(p))->cap : 0;
}

// Whether a block for `size` more bytes (`old` of them already held) stays within the limit.
// The check uses the block's real capacity: checking the size asked for, as QuickJS's default
// functions do, would let the rounding carry the heap past its limit, and then not even the
// "out of memory" error could be made.
bool fits(const JSMallocState* s, size_t size, size_t old) {
  size_t cap = 0;
  class_of(size, &cap);
  size_t more = cap + (old ? 0 : kOverhead);
  if (more <= old) return true;
  more -= old;
  return s->malloc_size <= s->malloc_limit && more <= s->malloc_limit - s->malloc_size;
}

// QuickJS's accounting, as its default functions keep it: the limit is checked before each
// allocation, sizes include the per-block overhead.
void* js_arena_malloc(JSMallocState* s, size_t size) {
  if (!fits(s, size, 0)) return nullptr;
  void* p = take(size);
  if (!p) return nullptr;
  s->malloc_count++;
  s->malloc_size += usable(p) + kOverhead;
  return p;
}

void js_arena_free(JSMallocState* s, void* p) {
  if (!p) return;
  s->malloc_count--;
  s->malloc_size -= usable(p) + kOverhead;
  give_back(p);
}

void* js_arena_realloc(JSMallocState* s, void* p, size_t size) {
  if (!p) return size == 0 ? nullptr : js_arena_malloc(s, size);
  if (size == 0) {
    js_arena_free(s, p);
    return nullptr;
  }
  size_t old = usable(p);
  if (size <= old) return p;
  if (!fits(s, size, old)) return nullptr;
  void* q = take(size);
  if (!q) return nullptr;
  std::memcpy(q, p, old);
  give_back(p);
  s->malloc_size += usable(q) - old;
  return q;
}

size_t js_arena_usable_size(const void* p) { return usable(p); }

const JSMallocFunctions kFunctions = {js_arena_malloc, js_arena_free, js_arena_realloc,
                                      js_arena_usable_size};

void start(void* base, size_t bytes) {
  g_heap = static_cast<Header*>(base);
  std::memset(g_heap, 0, sizeof(Header));
  g_heap->magic = kMagic;
  g_heap->anchor = reinterpret_cast<uint64_t>(&js_arena_malloc);
  uint64_t first = (reinterpret_cast<uint64_t>(base) + sizeof(Header) + 63) & ~uint64_t(63);
  g_heap->top = first;
  g_heap->limit = reinterpret_cast<uint64_t>(base) + bytes;
}

}  // namespace

Status reserve() {
  void* p = ::mmap(reinterpret_cast<void*>(kBase), kSpan, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
  if (p == MAP_FAILED) return make_error(why("reserve the heap arena"));
  if (p != reinterpret_cast<void*>(kBase)) {
    ::munmap(p, kSpan);  // a kernel without MAP_FIXED_NOREPLACE took it as a hint
    return make_error("reserve the heap arena: its address range is taken");
  }
  return {};
}

Status create(int fd, size_t capacity) {
  if (capacity < kPage || capacity > kSpan) return make_error("heap arena: bad capacity");
  void* p = ::mmap(reinterpret_cast<void*>(kBase), capacity, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_FIXED, fd, 0);
  if (p == MAP_FAILED) return make_error(why("map the heap arena"));
  start(p, capacity);
  return {};
}

void release() {
  if (!g_heap) return;
  const size_t bytes = size_t(g_heap->limit - reinterpret_cast<uint64_t>(g_heap));
  ::munmap(g_heap, bytes);
  g_heap = nullptr;
}

Status adopt(int fd) {
  struct stat st{};
  if (::fstat(fd, &st) != 0) return make_error(why("heap snapshot"));
  const size_t size = size_t(st.st_size);
  if (size < sizeof(Header) || size % kPage != 0 || size >= kSpan)
    return make_error("heap snapshot: bad size");
  void* p = ::mmap(reinterpret_cast<void*>(kBase), size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_FIXED, fd, 0);
  if (p == MAP_FAILED) return make_error(why("map the heap snapshot"));
  void* rest = ::mmap(reinterpret_cast<char*>(kBase) + size, kSpan - size, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
  if (rest == MAP_FAILED) return make_error(why("map the heap arena"));
  auto* h = static_cast<Header*>(p);
  if (h->magic != kMagic || h->top < kBase + sizeof(Header) || h->top > kBase + size)
    return make_error("heap snapshot: not a heap");
  if (h->anchor != reinterpret_cast<uint64_t>(&js_arena_malloc))
    return make_error("heap snapshot: made by another worker process");
  h->limit = kBase + kSpan;
  g_heap = h;
  return {};
}

size_t used() {
  if (!g_heap) return 0;
  uint64_t end = (g_heap->top + kPage - 1) & ~uint64_t(kPage - 1);
  return size_t(end - reinterpret_cast<uint64_t>(g_heap));
}

const JSMallocFunctions* functions() { return &kFunctions; }

uint64_t* roots() { return g_heap->roots; }

void init_at(void* base, size_t bytes) { start(base, bytes); }

}  // namespace onemcp::js::arena
